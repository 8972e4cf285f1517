//! Unit tests of the terminal: its output, and the bounds on its parser state.

use super::parser::{MAX_CSI_LEN, MAX_STRING_LEN};
use super::*;

fn term(input: &str) -> Terminal {
    let mut t = Terminal::new();
    t.feed(input);
    t
}

fn texts(t: &Terminal) -> Vec<String> {
    t.lines().iter().map(Line::text).collect()
}

fn single_run(input: &str) -> Run {
    let t = term(input);
    assert_eq!(t.line_count(), 1, "{input:?}");
    let runs = &t.lines()[0].runs;
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn plain_lines() {
    let t = term("hello\nworld");
    assert_eq!(texts(&t), ["hello", "world"]);
    assert_eq!(t.plain_text(), "hello\nworld");
    let t = term("a\n\nb\n");
    assert_eq!(texts(&t), ["a", "", "b"]);
    assert_eq!(t.plain_text(), "a\n\nb\n");
    assert_eq!(term("").line_count(), 0);
}

#[test]
fn sgr_basic_colors_and_reset() {
    let t = term("\x1b[31mred\x1b[0m plain \x1b[1;42mbold\x1b[m");
    let runs = &t.lines()[0].runs;
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].text, "red");
    assert_eq!(runs[0].style.fg, Some(Color::Indexed(1)));
    assert_eq!(runs[1].text, " plain ");
    assert_eq!(runs[1].style, Style::default());
    assert_eq!(runs[2].style.bg, Some(Color::Indexed(2)));
    assert!(runs[2].style.bold);
    assert_eq!(t.current_style(), Style::default());
}

#[test]
fn sgr_bright_and_default_colors() {
    let r = single_run("\x1b[91;103mx");
    assert_eq!(r.style.fg, Some(Color::Indexed(9)));
    assert_eq!(r.style.bg, Some(Color::Indexed(11)));
    let r = single_run("\x1b[91;103;39;49mx");
    assert_eq!(r.style, Style::default());
}

#[test]
fn sgr_256_and_truecolor() {
    let r = single_run("\x1b[38;5;208;48;5;17mx");
    assert_eq!(r.style.fg, Some(Color::Indexed(208)));
    assert_eq!(r.style.bg, Some(Color::Indexed(17)));
    let r = single_run("\x1b[38;2;10;20;30;48;2;1;2;3;1mx");
    assert_eq!(r.style.fg, Some(Color::Rgb(10, 20, 30)));
    assert_eq!(r.style.bg, Some(Color::Rgb(1, 2, 3)));
    assert!(r.style.bold, "params after a truecolor group still apply");
}

#[test]
fn sgr_colon_forms() {
    let r = single_run("\x1b[38:5:196mx");
    assert_eq!(r.style.fg, Some(Color::Indexed(196)));
    let r = single_run("\x1b[38:2::1:2:3;48:2:4:5:6mx");
    assert_eq!(r.style.fg, Some(Color::Rgb(1, 2, 3)));
    assert_eq!(r.style.bg, Some(Color::Rgb(4, 5, 6)));
    let r = single_run("\x1b[4:3mx");
    assert!(r.style.underline);
    let r = single_run("\x1b[4m\x1b[4:0mx");
    assert!(!r.style.underline);
}

#[test]
fn sgr_malformed_is_harmless() {
    // Out-of-range colours are ignored; truncated forms don't leak
    // their arguments as attributes (5 would be blink, 2 dim).
    let r = single_run("\x1b[38;5;300mx");
    assert_eq!(r.style.fg, None);
    let r = single_run("\x1b[38;2;1;2mx");
    assert_eq!(r.style, Style::default());
    let r = single_run("\x1b[38;5mx");
    assert_eq!(r.style, Style::default());
    let r = single_run("\x1b[99999999999999999999mx");
    assert_eq!(r.style, Style::default());
    // Private-marker SGR lookalike (xterm modifyOtherKeys) is not SGR.
    let r = single_run("\x1b[>4;2mx");
    assert_eq!(r.style, Style::default());
}

#[test]
fn attributes_and_their_resets() {
    let r = single_run("\x1b[1;2;3;4;7;9mx");
    let s = r.style;
    assert!(s.bold && s.dim && s.italic && s.underline && s.inverse && s.strike);
    assert_eq!(s.css_classes(), "b d i u s");
    let r = single_run("\x1b[1;2;3;4;7;9m\x1b[22;23;24;27;29mx");
    assert_eq!(r.style, Style::default());
    assert_eq!(r.style.css_classes(), "");
    // Empty parameter means 0 (reset).
    let r = single_run("\x1b[1m\x1b[;mx");
    assert_eq!(r.style, Style::default());
}

#[test]
fn runs_merge_per_style() {
    let t = term("ab\x1b[1mcd\x1b[1mef\x1b[0mgh");
    let runs = &t.lines()[0].runs;
    let texts: Vec<&str> = runs.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["ab", "cdef", "gh"]);
}

#[test]
fn carriage_return_collapses_progress() {
    let t = term("10%\r20%\r30%\n");
    assert_eq!(texts(&t), ["30%"]);
    assert_eq!(t.plain_text(), "30%\n");
    let t = term("a\r\nb\r\n");
    assert_eq!(texts(&t), ["a", "b"]);
    // Overwrite is per character, like a real terminal.
    assert_eq!(texts(&term("100%\r50%")), ["50%%"]);
    // The usual erase idiom clears the tail.
    assert_eq!(texts(&term("100%\r\x1b[K50%")), ["50%"]);
    assert_eq!(texts(&term("100%\x1b[2K\r50%")), ["50%"]);
}

#[test]
fn overwrite_keeps_per_char_style() {
    let t = term("\x1b[31mabcd\r\x1b[32mXY");
    let runs = &t.lines()[0].runs;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].text, "XY");
    assert_eq!(runs[0].style.fg, Some(Color::Indexed(2)));
    assert_eq!(runs[1].text, "cd");
    assert_eq!(runs[1].style.fg, Some(Color::Indexed(1)));
}

#[test]
fn backspace() {
    assert_eq!(texts(&term("abc\x08d")), ["abd"]);
    assert_eq!(texts(&term("\x08\x08x")), ["x"]);
    assert_eq!(texts(&term("ab\x08\x08\x08cd")), ["cd"]);
}

#[test]
fn tabs() {
    assert_eq!(texts(&term("a\tb")), ["a       b"]);
    assert_eq!(texts(&term("12345678\tb")), ["12345678        b"]);
    assert_eq!(texts(&term("\tx")), ["        x"]);
}

#[test]
fn horizontal_cursor_movement() {
    assert_eq!(texts(&term("abcdef\x1b[3Dx")), ["abcxef"]);
    assert_eq!(texts(&term("abcdef\x1b[1Gx")), ["xbcdef"]);
    assert_eq!(texts(&term("a\x1b[3Cb")), ["a   b"]);
    assert_eq!(texts(&term("abcdef\x1b[3G\x1b[1K")), ["   def"]);
}

#[test]
fn unknown_sequences_dropped() {
    let input = concat!(
        "\x1b[2J\x1b[H\x1b[?25l\x1b[3A\x1b[1;5H",
        "\x1b]0;title\x07",
        "\x1b]8;;http://example.com\x1b\\link\x1b]8;;\x1b\\",
        "\x1bPdcs payload\x1b\\",
        "\x1b(B\x1b7\x1b8\x1b=",
        "ok\x07\x00\x0b\x0c\x7f\u{9b}!",
    );
    assert_eq!(texts(&term(input)), ["linkok!"]);
}

#[test]
fn html_is_kept_verbatim() {
    let s = "<img src=x onerror=alert(1)> &amp; <script>\"'</script>";
    let r = single_run(s);
    assert_eq!(r.text, s);
}

#[test]
fn unicode_text() {
    assert_eq!(texts(&term("héllo ✓ 漢字\n")), ["héllo ✓ 漢字"]);
}

#[test]
fn max_lines_eviction() {
    let mut t = Terminal::with_max_lines(3);
    t.feed("1\n2\n3\n4\n5\n");
    assert_eq!(texts(&t), ["3", "4", "5"]);
    assert_eq!(t.dropped_lines(), 2);
    t.feed("6");
    assert_eq!(texts(&t), ["4", "5", "6"]);
    assert_eq!(t.dropped_lines(), 3);
    assert_eq!(t.plain_text(), "4\n5\n6");
    // Many evictions exercise batch compaction.
    for i in 0..1000 {
        t.feed(&format!("{i}\n"));
    }
    assert_eq!(texts(&t), ["997", "998", "999"]);
    // "6" was unterminated, so "0\n" extends it to "60".
    assert_eq!(t.dropped_lines(), 1002);
    assert!(t.store.len() <= 3 + 64 + 1);
}

#[test]
fn eviction_is_chunking_independent() {
    let whole = {
        let mut t = Terminal::with_max_lines(1);
        t.feed("a\nb\r\x1b[K");
        t
    };
    let mut split = Terminal::with_max_lines(1);
    split.feed("a\nb");
    assert_eq!(texts(&split), ["b"]);
    assert_eq!(split.dropped_lines(), 1);
    split.feed("\r\x1b[K");
    assert_eq!(texts(&split), ["a"]);
    assert_eq!(split.dropped_lines(), 0);
    assert_eq!(split.lines(), whole.lines());
    assert_eq!(split.plain_text(), whole.plain_text());
    assert_eq!(split.plain_text(), "a\n");
}

#[test]
fn long_lines_soft_wrap() {
    let mut t = Terminal::with_limits(100, 4);
    t.feed("abcdefghij");
    assert_eq!(texts(&t), ["abcd", "efgh", "ij"]);
    let mut t = Terminal::with_limits(100, 4);
    t.feed("\t\t\tx");
    // Tabs move the cursor without painting cells.
    assert_eq!(texts(&t), ["", "x"]);
}

#[test]
fn runaway_sequences_are_abandoned() {
    // An unterminated CSI must not buffer without bound nor swallow
    // output forever.
    let mut t = Terminal::new();
    t.feed("\x1b[");
    for _ in 0..100 {
        t.feed("1;1;1;1;1;");
    }
    assert!(t.params.len() <= MAX_CSI_LEN);
    t.feed("visible");
    assert!(t.plain_text().ends_with("visible"), "{}", t.plain_text());

    let mut t = Terminal::new();
    t.feed("\x1b]0;");
    t.feed(&"x".repeat(MAX_STRING_LEN * 2));
    t.feed("\ntail");
    assert!(t.plain_text().ends_with("\ntail"));
    // Long but terminated OSC 8 URLs are still consumed whole.
    let url = "u".repeat(1000);
    assert_eq!(
        texts(&term(&format!("\x1b]8;;{url}\x1b\\t\x1b]8;;\x1b\\"))),
        ["t"]
    );
}

#[test]
fn split_at_every_offset_matches_unsplit() {
    let input = concat!(
        "\x1b[1;38;2;10;20;30mbold\x1b[0m \x1b]0;t\x07x\x1b]8;;u\x1b\\y",
        "\x1b[38:5:9m1%\r2%\r\x1b[K3%\n\x1b[?25lab\x08c\td\x1b[2Ge\x1b(Bé✓\r\n",
    );
    let whole = term(input);
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    for &(i, _) in &chars {
        let mut t = Terminal::new();
        t.feed(&input[..i]);
        t.feed(&input[i..]);
        assert_eq!(t.lines(), whole.lines(), "split at {i}");
    }
    let mut t = Terminal::new();
    for (_, c) in chars {
        t.feed(c.encode_utf8(&mut [0; 4]));
    }
    assert_eq!(t.lines(), whole.lines());
    assert_eq!(t.plain_text(), whole.plain_text());
}

#[test]
fn css_output() {
    assert_eq!(color_css(Color::Indexed(1)), "var(--ansi-1)");
    assert_eq!(color_css(Color::Indexed(15)), "var(--ansi-15)");
    assert_eq!(color_css(Color::Indexed(16)), "rgb(0,0,0)");
    assert_eq!(color_css(Color::Indexed(196)), "rgb(255,0,0)");
    assert_eq!(color_css(Color::Indexed(231)), "rgb(255,255,255)");
    assert_eq!(color_css(Color::Indexed(232)), "rgb(8,8,8)");
    assert_eq!(color_css(Color::Indexed(255)), "rgb(238,238,238)");
    assert_eq!(color_css(Color::Rgb(1, 2, 3)), "rgb(1,2,3)");

    let s = Style {
        fg: Some(Color::Indexed(1)),
        bg: Some(Color::Rgb(1, 2, 3)),
        ..Style::default()
    };
    assert_eq!(
        s.inline_style(),
        "color:var(--ansi-1);background:rgb(1,2,3)"
    );
    let inv = Style { inverse: true, ..s };
    assert_eq!(
        inv.inline_style(),
        "color:rgb(1,2,3);background:var(--ansi-1)"
    );
    let inv_default = Style {
        inverse: true,
        ..Style::default()
    };
    assert_eq!(
        inv_default.inline_style(),
        "color:var(--term-bg);background:var(--term-fg)"
    );
    assert_eq!(Style::default().inline_style(), "");
    let bold = Style {
        bold: true,
        underline: true,
        ..Style::default()
    };
    assert_eq!(bold.css_classes(), "b u");
}
