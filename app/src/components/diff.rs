//! A file change as a unified diff: the path, "+A −D", hunks with their headers,
//! and the unchanged stretches between them folded into one line each.

use leptos::prelude::*;

use crate::line_diff::{Change, Diff, diff};
use crate::sync_view::erase;

#[component]
pub fn DiffView(path: String, old_text: Option<String>, new_text: String) -> impl IntoView {
    let new_file = old_text.is_none();
    let result = diff(old_text.as_deref(), &new_text);
    let (counts, body) = match result {
        Diff::TooLarge { changed } => (
            None,
            erase(
                view! { <p class="diff-note muted">{format!("diff too large: {changed} lines changed")}</p> },
            ),
        ),
        Diff::Hunks {
            hunks,
            added,
            removed,
            skipped_after,
        } => {
            let rows = hunks
                .into_iter()
                .map(|h| {
                    let skipped = (h.skipped_before > 0).then(|| folded(h.skipped_before));
                    let header = h.header();
                    let lines = h
                        .lines
                        .into_iter()
                        .map(|l| {
                            let (class, sign) = match l.change {
                                Change::Same => ("dl same", " "),
                                Change::Removed => ("dl del", "-"),
                                Change::Added => ("dl add", "+"),
                            };
                            view! { <div class=class><span class="sign" aria-hidden="true">{sign}</span>{l.text}</div> }
                        })
                        .collect_view();
                    view! { {skipped} <div class="dl hunk">{header}</div> {lines} }
                })
                .collect_view();
            let tail = (skipped_after > 0 && added + removed > 0).then(|| folded(skipped_after));
            let body = if added + removed == 0 {
                erase(view! { <p class="diff-note muted">"no changes"</p> })
            } else {
                erase(view! { <div class="diff-lines">{rows} {tail}</div> })
            };
            (Some((added, removed)), body)
        }
    };
    let shown = path.clone();
    view! {
        <div class="diff" data-testid="diff" data-path=path>
            <div class="diff-head">
                <code class="path">{shown}</code>
                {new_file.then(|| view! { <span class="badge">"new file"</span> })}
                {counts.map(|(a, d)| view! {
                    <span class="counts" data-testid="diff-counts">
                        <span class="add">{format!("+{a}")}</span> " " <span class="del">{format!("−{d}")}</span>
                    </span>
                })}
            </div>
            {body}
        </div>
    }
}

fn folded(n: usize) -> impl IntoView + use<> {
    view! {
        <div class="dl fold">{format!("⋯ {n} unchanged line{}", if n == 1 { "" } else { "s" })}</div>
    }
}
