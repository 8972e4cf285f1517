#[cfg(feature = "ssr")]
use leptos::prelude::*;

use super::*;

fn text(s: &str) -> Inline {
    Inline::Text(s.into())
}

/// Rendering to a string needs the server's renderer.
#[cfg(feature = "ssr")]
fn html(markdown: &str) -> String {
    let owner = Owner::new();
    owner.with(|| render(&parse(markdown)).to_html())
}

#[test]
fn headings_and_paragraphs() {
    assert_eq!(
        parse("# Title ##\n\nOne\ntwo\n\n###### six\n####### seven"),
        vec![
            Block::Heading(1, vec![text("Title")]),
            Block::Paragraph(vec![text("One\ntwo")]),
            Block::Heading(6, vec![text("six")]),
            Block::Paragraph(vec![text("####### seven")]),
        ]
    );
    assert_eq!(
        parse("#hashtag"),
        vec![Block::Paragraph(vec![text("#hashtag")])]
    );
}

#[test]
fn emphasis_and_strong() {
    assert_eq!(
        parse_inline("a *b* **c** _d_ __e__"),
        vec![
            text("a "),
            Inline::Emphasis(vec![text("b")]),
            text(" "),
            Inline::Strong(vec![text("c")]),
            text(" "),
            Inline::Emphasis(vec![text("d")]),
            text(" "),
            Inline::Strong(vec![text("e")]),
        ]
    );
    assert_eq!(
        parse_inline("**bold *and italic***"),
        vec![Inline::Strong(vec![
            text("bold "),
            Inline::Emphasis(vec![text("and italic")])
        ])]
    );
    assert_eq!(
        parse_inline("snake_case_name"),
        vec![text("snake_case_name")]
    );
    assert_eq!(parse_inline("2 * 3 * 4"), vec![text("2 * 3 * 4")]);
    assert_eq!(parse_inline("\\*not\\*"), vec![text("*not*")]);
}

#[test]
fn inline_code_keeps_its_text_verbatim() {
    assert_eq!(
        parse_inline("run `cargo *test*` now"),
        vec![
            text("run "),
            Inline::Code("cargo *test*".into()),
            text(" now")
        ]
    );
    assert_eq!(parse_inline("`` a`b ``"), vec![Inline::Code("a`b".into())]);
    assert_eq!(parse_inline("`unclosed"), vec![text("`unclosed")]);
}

#[test]
fn fenced_code_blocks_and_an_unclosed_fence_mid_stream() {
    assert_eq!(
        parse("```rust\nfn main() {}\n\n  x\n```\nafter"),
        vec![
            Block::Code {
                lang: "rust".into(),
                text: "fn main() {}\n\n  x".into()
            },
            Block::Paragraph(vec![text("after")]),
        ]
    );
    assert_eq!(
        parse("text\n~~~\nstill streaming"),
        vec![
            Block::Paragraph(vec![text("text")]),
            Block::Code {
                lang: String::new(),
                text: "still streaming".into()
            },
        ]
    );
}

#[test]
fn bullet_and_numbered_lists_nest() {
    assert_eq!(
        parse("- one\n- two\n  - inner\n* three"),
        vec![Block::List {
            start: None,
            items: vec![
                vec![Block::Paragraph(vec![text("one")])],
                vec![
                    Block::Paragraph(vec![text("two")]),
                    Block::List {
                        start: None,
                        items: vec![vec![Block::Paragraph(vec![text("inner")])]]
                    },
                ],
                vec![Block::Paragraph(vec![text("three")])],
            ]
        }]
    );
    assert_eq!(
        parse("3. c\n\n4. d\ncontinued\n\nafter"),
        vec![
            Block::List {
                start: Some(3),
                items: vec![
                    vec![Block::Paragraph(vec![text("c")])],
                    vec![Block::Paragraph(vec![text("d\ncontinued")])],
                ]
            },
            Block::Paragraph(vec![text("after")]),
        ]
    );
    assert_eq!(
        parse("- a\n1. b"),
        vec![
            Block::List {
                start: None,
                items: vec![vec![Block::Paragraph(vec![text("a")])]]
            },
            Block::List {
                start: Some(1),
                items: vec![vec![Block::Paragraph(vec![text("b")])]]
            },
        ]
    );
}

#[test]
fn block_quotes_and_rules() {
    assert_eq!(
        parse("> quoted\n> # head\n\n---"),
        vec![
            Block::Quote(vec![
                Block::Paragraph(vec![text("quoted")]),
                Block::Heading(1, vec![text("head")]),
            ]),
            Block::Rule,
        ]
    );
}

#[test]
fn links_keep_only_web_and_mail_targets() {
    let link = |href: &str, label: &str| Inline::Link {
        href: href.into(),
        children: vec![text(label)],
    };
    assert_eq!(
        parse_inline("[docs](https://example.com/a_(b))"),
        vec![link("https://example.com/a_(b)", "docs")]
    );
    assert_eq!(
        parse_inline("[m](mailto:a@b.c \"title\")"),
        vec![link("mailto:a@b.c", "m")]
    );
    assert_eq!(
        parse_inline("<http://x.y/z>"),
        vec![link("http://x.y/z", "http://x.y/z")]
    );
    assert_eq!(
        parse_inline("see https://x.y/z."),
        vec![
            text("see "),
            link("https://x.y/z", "https://x.y/z"),
            text(".")
        ]
    );
    assert_eq!(parse_inline("[x](javascript:alert(1))"), vec![text("x")]);
    assert_eq!(parse_inline("[x](/api/conversations)"), vec![text("x")]);
    assert_eq!(parse_inline("[x](JAVASCRIPT:alert(1))"), vec![text("x")]);
    assert_eq!(
        parse_inline("![alt](data:image/png;base64,AAAA)"),
        vec![text("alt")]
    );
    assert_eq!(
        parse_inline("![alt](https://x.y/i.png)"),
        vec![link("https://x.y/i.png", "alt")]
    );
    assert_eq!(parse_inline("[no target]"), vec![text("[no target]")]);
    assert_eq!(safe_href("https://"), None);
    assert_eq!(safe_href("https://a b"), None);
}

#[cfg(feature = "ssr")]
#[test]
fn rendered_links_open_apart() {
    let out = html("[a](https://e.x)");
    assert!(out.contains(r#"href="https://e.x""#), "{out}");
    assert!(out.contains(r#"rel="noopener noreferrer""#), "{out}");
    assert!(out.contains(r#"target="_blank""#), "{out}");
}

#[cfg(feature = "ssr")]
#[test]
fn html_in_the_input_is_shown_as_text() {
    for hostile in [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "# <b>head</b>",
        "- <iframe src=x>",
        "> <style>*{}</style>",
        "`<script>`",
        "```\n<script>alert(1)</script>\n```",
        "*<svg onload=alert(1)>*",
    ] {
        let out = html(hostile);
        for tag in ["<script", "<img", "<b>", "<iframe", "<style", "<svg"] {
            assert!(!out.contains(tag), "{hostile:?} rendered {out}");
        }
        assert!(out.contains("&lt;"), "{hostile:?} rendered {out}");
    }
}

#[cfg(feature = "ssr")]
#[test]
fn attribute_values_cannot_break_out() {
    let out = html(r#"[x](https://e.x/"onmouseover="alert(1))"#);
    assert!(
        !out.contains(r#"" onmouseover"#) && !out.contains(r#""onmouseover="alert"#),
        "{out}"
    );
}

#[cfg(feature = "ssr")]
#[test]
fn rendering_produces_the_expected_elements() {
    let out = html("# T\n\n*e* **s** `c`\n\n- a\n\n1. b\n\n> q\n\n```sh\nls\n```");
    for tag in [
        "<h1>",
        "<em>",
        "<strong>",
        "<code>",
        "<ul>",
        "<ol start=\"1\">",
        "<li>",
        "<blockquote>",
        "<pre data-lang=\"sh\" class=\"code\">",
    ] {
        assert!(out.contains(tag), "missing {tag} in {out}");
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    let deep = ">".repeat(10_000) + " x";
    assert!(!parse(&deep).is_empty());
    let list = (0..500)
        .map(|i| format!("{}- x", "  ".repeat(i)))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!parse(&list).is_empty());
    let stars = "*".repeat(5_000) + "x" + &"*".repeat(5_000);
    assert!(!parse_inline(&stars).is_empty());
}

/// Whatever the input, markup characters end up inside text or code nodes: the
/// tree has no node that could carry raw HTML.
#[test]
fn hostile_input_parses_to_text() {
    fn texts(nodes: &[Inline], out: &mut String) {
        for n in nodes {
            match n {
                Inline::Text(t) | Inline::Code(t) => out.push_str(t),
                Inline::Emphasis(c) | Inline::Strong(c) | Inline::Link { children: c, .. } => {
                    texts(c, out)
                }
            }
        }
    }
    let mut all = String::new();
    for block in parse("<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>") {
        if let Block::Paragraph(nodes) = block {
            texts(&nodes, &mut all);
        }
    }
    assert_eq!(all, "<script>alert(1)</script><img src=x onerror=alert(1)>");
}

/// The renderer must never hand text to the DOM as markup.
#[test]
fn the_view_never_sets_inner_html() {
    let source = include_str!("view.rs");
    assert!(!source.contains(concat!("inner", "_html")));
}
