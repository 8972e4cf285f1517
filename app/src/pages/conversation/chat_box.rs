//! The chat box: sends a message (only while connected, so nothing is lost), and
//! stops the running turn.

use leptos::prelude::*;

use crate::client::http::post_json;
use crate::client::stream::Conn;
use crate::protocol::{CancelRequest, ChatRequest, ChatResponse};

#[component]
pub(super) fn ChatBox(
    base: String,
    status: RwSignal<Conn>,
    running: Signal<bool>,
    queued: Signal<u64>,
    /// Whether a coding agent (not `shell`) reads the messages.
    agent: Signal<bool>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let sending = RwSignal::new(false);
    let connected = move || status.get() == Conn::Connected;
    let send = {
        let base = base.clone();
        move || {
            let message = text.get_untracked();
            if message.trim().is_empty() || sending.get_untracked() {
                return;
            }
            if status.get_untracked() != Conn::Connected {
                // Refused, not lost: the text stays in the box.
                error.set(Some("Not connected: your message is kept here; send it once the connection is back.".into()));
                return;
            }
            sending.set(true);
            error.set(None);
            let url = format!("{base}chat");
            leptos::task::spawn_local(async move {
                match post_json::<_, ChatResponse>(&url, &ChatRequest { message }).await {
                    Ok(response) => {
                        text.set(String::new());
                        notice.set(
                            response
                                .queued
                                .then(|| "Queued: it runs when the current turn ends.".to_string()),
                        );
                    }
                    Err(e) => error.set(Some(format!("Not sent: {e}"))),
                }
                sending.set(false);
            });
        }
    };
    let send_click = send.clone();
    let stop = move |_| {
        let url = format!("{base}cancel");
        leptos::task::spawn_local(async move {
            let body = CancelRequest {
                reason: Some("stopped by the user".into()),
                tool_call_id: None,
            };
            if let Err(e) = post_json::<_, serde_json::Value>(&url, &body).await {
                error.set(Some(e));
            }
        });
    };
    view! {
        <form class="chatbox" on:submit=move |ev| ev.prevent_default() data-testid="chatbox">
            <textarea
                rows="2"
                placeholder=move || match (connected(), agent.get()) {
                    (false, _) => "Disconnected — waiting for the connection…",
                    (true, true) => "Message to the agent — Enter sends, Shift+Enter for a new line",
                    (true, false) => "Command to run — Enter sends, Shift+Enter for a new line",
                }
                aria-label="Chat message"
                data-testid="chat-input"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        send();
                    }
                }
            ></textarea>
            <div class="chat-actions">
                <button class="btn primary" type="button" data-testid="send" on:click=move |_| send_click()
                    disabled=move || !connected() || sending.get()>"Send"</button>
                <Show when=move || running.get()>
                    <button class="btn danger" type="button" data-testid="stop" on:click=stop.clone()>"Stop"</button>
                </Show>
            </div>
            <div class="chat-status" aria-live="polite">
                {move || (!connected()).then(|| view! { <span class="warn" data-testid="chat-offline">"Offline: sending is paused until the connection is back."</span> })}
                {move || { queued.get() > 0 }.then(|| view! { <span class="muted" data-testid="queued">{queued.get()} " queued"</span> })}
                {move || notice.get().map(|n| view! { <span class="muted">{n}</span> })}
                {move || error.get().map(|e| view! { <span class="error-text" role="alert" data-testid="chat-error">{e}</span> })}
            </div>
        </form>
    }
}
