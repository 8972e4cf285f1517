//! Keys a phone's keyboard does not have, for a running command's terminal: each
//! button writes its bytes as if typed (`POST …/input`).

use leptos::prelude::*;

use crate::client::http::post_json;
use crate::protocol::InputRequest;

/// Label, `data-key` and the bytes the terminal gets.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("Ctrl-C", "ctrl-c", "\u{3}"),
    ("Tab", "tab", "\t"),
    ("Esc", "esc", "\u{1b}"),
    ("↑", "up", "\u{1b}[A"),
    ("↓", "down", "\u{1b}[B"),
    ("←", "left", "\u{1b}[D"),
    ("→", "right", "\u{1b}[C"),
    ("Enter", "enter", "\r"),
    ("Ctrl-D", "ctrl-d", "\u{4}"),
];

#[component]
pub fn KeyBar(
    /// The conversation's API base.
    base: String,
    tool_call_id: String,
    /// Where a refused write is reported.
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let url = StoredValue::new(format!("{base}input"));
    let id = StoredValue::new(tool_call_id);
    let send = move |data: &'static str| {
        let body = InputRequest {
            tool_call_id: id.get_value(),
            data: data.to_string(),
        };
        let url = url.get_value();
        leptos::task::spawn_local(async move {
            if let Err(e) = post_json::<_, serde_json::Value>(&url, &body).await {
                error.set(Some(e));
            }
        });
    };
    view! {
        <div class="key-bar" role="group" aria-label="Terminal keys" data-testid="key-bar">
            {KEYS.iter().map(|&(label, key, data)| view! {
                <button type="button" class="btn key" data-key=key aria-label=key
                    on:click=move |_| send(data)>{label}</button>
            }).collect_view()}
        </div>
    }
}
