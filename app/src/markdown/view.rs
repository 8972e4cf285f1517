//! The markdown tree as Leptos nodes. Text only ever becomes text nodes and
//! attribute values (which Leptos escapes); nothing here sets raw HTML.

use leptos::prelude::*;

use super::{Block, Inline, parse};
use crate::sync_view::erase;

/// Renders `text` as markdown, again whenever it changes (a reply grows while the
/// agent streams it).
#[component]
pub fn Markdown(#[prop(into)] text: Signal<String>) -> impl IntoView {
    view! { <div class="md">{move || render(&parse(&text.get()))}</div> }
}

pub fn render(blocks: &[Block]) -> AnyView {
    erase(blocks.iter().map(block).collect_view())
}

fn inlines(nodes: &[Inline]) -> AnyView {
    erase(nodes.iter().map(inline).collect_view())
}

fn block(b: &Block) -> AnyView {
    match b {
        Block::Heading(level, text) => {
            let body = inlines(text);
            match level {
                1 => erase(view! { <h1>{body}</h1> }),
                2 => erase(view! { <h2>{body}</h2> }),
                3 => erase(view! { <h3>{body}</h3> }),
                4 => erase(view! { <h4>{body}</h4> }),
                5 => erase(view! { <h5>{body}</h5> }),
                _ => erase(view! { <h6>{body}</h6> }),
            }
        }
        Block::Paragraph(text) => erase(view! { <p>{inlines(text)}</p> }),
        Block::Code { lang, text } => {
            let lang = (!lang.is_empty()).then(|| lang.clone());
            erase(view! { <pre class="code" data-lang=lang><code>{text.clone()}</code></pre> })
        }
        Block::Quote(inner) => erase(view! { <blockquote>{render(inner)}</blockquote> }),
        Block::List { start, items } => {
            let items = items
                .iter()
                .map(|item| view! { <li>{render(item)}</li> })
                .collect_view();
            match start {
                Some(n) => erase(view! { <ol start=n.to_string()>{items}</ol> }),
                None => erase(view! { <ul>{items}</ul> }),
            }
        }
        Block::Rule => erase(view! { <hr/> }),
    }
}

fn inline(node: &Inline) -> AnyView {
    match node {
        Inline::Text(text) => erase(text.clone()),
        Inline::Code(code) => erase(view! { <code>{code.clone()}</code> }),
        Inline::Emphasis(inner) => erase(view! { <em>{inlines(inner)}</em> }),
        Inline::Strong(inner) => erase(view! { <strong>{inlines(inner)}</strong> }),
        Inline::Link { href, children } => erase(view! {
            <a href=href.clone() rel="noopener noreferrer" target="_blank">{inlines(children)}</a>
        }),
    }
}
