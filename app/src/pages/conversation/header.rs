//! The conversation's top bar: title, where it runs, run state, connection, and
//! the actions (find, restart, downloads).

use leptos::prelude::*;

use super::choices::ChoicePicker;
use super::silence::Silence;
use crate::client::stream::Conn;
use crate::components::indicator::ConnectionIndicator;
use crate::components::notify_toggle::NotifyToggle;
use crate::protocol::{ConversationState, RunStatus};
use crate::usage::Usage;

#[component]
pub(super) fn Header(
    state: Signal<ConversationState>,
    base: String,
    status: RwSignal<Conn>,
    now: RwSignal<f64>,
    reconnects: RwSignal<u32>,
    find_open: RwSignal<bool>,
    restart_open: RwSignal<bool>,
    share_open: RwSignal<bool>,
    /// Opened through a share link: no actions that change anything.
    read_only: bool,
    /// Token counts over the loaded turns, once any turn reported some.
    usage: Signal<Option<Usage>>,
) -> impl IntoView {
    let running = move || state.get().status == RunStatus::Running;
    let title = move || {
        let t = state.get().title;
        if t.is_empty() {
            "Untitled".to_string()
        } else {
            t
        }
    };
    let modes = Memo::new(move |_| state.with(|s| s.modes.clone()));
    let models = Memo::new(move |_| state.with(|s| s.models.clone()));
    let last_activity = Signal::derive(move || state.with(|s| s.last_activity.clone()));
    view! {
        <header class="topbar">
            <a class="back" href="/" aria-label="All conversations">"←"</a>
            <div class="heading">
                <h1 data-testid="title">{title}</h1>
                <p class="cwd muted">
                    {move || {
                        let agent = state.with(|s| s.agent.clone());
                        (!agent.is_empty()).then(|| view! { <span class="agent-name" data-testid="agent-name">{agent}</span> " " })
                    }}
                    <span data-testid="cwd">{move || { let s = state.get(); format!("{} · {}", s.working_dir, s.hostname) }}</span>
                </p>
            </div>
            <span class=move || format!("pill {}", if running() { "running" } else { "idle" }) data-testid="run-state">
                {move || {
                    let s = state.get();
                    match (s.status, s.outstanding_tool_calls.len()) {
                        (RunStatus::Running, 0) => "running".to_string(),
                        (RunStatus::Running, n) => format!("running · {n} tool call{}", if n == 1 { "" } else { "s" }),
                        (RunStatus::Idle, _) => "idle".to_string(),
                    }
                }}
            </span>
            {move || state.with(|s| s.stopping).then(|| view! {
                <span class="pill stopping" data-testid="stopping" role="status">"stopping…"</span>
            })}
            <Show when=running>
                <Silence last_activity/>
            </Show>
            {move || usage.get().map(|u| view! {
                <span class="total-usage muted" data-testid="usage-total" title="Tokens over the turns shown here">
                    {u.describe()}
                </span>
            })}
            <ConnectionIndicator status now reconnects/>
            {read_only.then(|| view! {
                <span class="pill read-only" data-testid="read-only" title="Opened through a share link: you can watch, not change anything">
                    "Read-only view"
                </span>
            })}
            <nav class="actions" aria-label="Conversation actions">
                <NotifyToggle/>
                <button class="btn" data-testid="find-toggle" on:click=move |_| find_open.update(|o| *o = !*o)>"Find"</button>
                {(!read_only).then(|| view! {
                    <button class="btn" data-testid="restart-open" on:click=move |_| restart_open.set(true)>"Restart…"</button>
                    <button class="btn" data-testid="share-open" on:click=move |_| share_open.set(true)>"Share…"</button>
                })}
                <a class="btn" href=format!("{base}download") download="" data-testid="download-json">"JSON"</a>
                <a class="btn" href=format!("{base}download?format=text") download="" data-testid="download-text">"Text"</a>
            </nav>
            {(!read_only).then(|| view! {
                <div class="choices">
                    <ChoicePicker label="Mode" testid="mode-picker" url=format!("{base}mode") choices=modes/>
                    <ChoicePicker label="Model" testid="model-picker" url=format!("{base}model") choices=models/>
                </div>
            })}
        </header>
    }
}
