//! An agent's tool call: its kind, title and progress as the agent reports them,
//! what it attached (text, file changes, a terminal), and how it ended. Cancel
//! is offered only for calls running in Tether's own terminals (the server can
//! stop those alone); any other open call offers to stop the whole turn.

use leptos::either::Either;
use leptos::prelude::*;

use crate::client::http::post_json;
use crate::client::parse_time_ms;
use crate::components::diff::DiffView;
use crate::components::terminal::{CollapsedOutput, ExpandedOutput};
use crate::components::tool_card::format_duration;
use crate::markdown::Markdown;
use crate::protocol::{CancelRequest, ToolContent, ToolProgress, ToolStatus};
use crate::timeline::AgentCall;

/// An icon and a label for ACP's tool kinds.
pub fn kind_label(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "read" => ("📖", "Read"),
        "edit" => ("✏️", "Edit"),
        "delete" => ("🗑️", "Delete"),
        "move" => ("↔️", "Move"),
        "search" => ("🔍", "Search"),
        "execute" => ("▶️", "Run"),
        "think" => ("💭", "Think"),
        "fetch" => ("🌐", "Fetch"),
        _ => ("⚙️", "Tool"),
    }
}

fn progress_text(progress: Option<ToolProgress>) -> &'static str {
    match progress {
        None | Some(ToolProgress::Pending) => "pending",
        Some(ToolProgress::InProgress) => "running",
        Some(ToolProgress::Completed) => "finishing",
        Some(ToolProgress::Failed) => "failing",
    }
}

#[component]
pub fn AgentCardView(
    call: AgentCall,
    base: String,
    now: RwSignal<f64>,
    query: Signal<String>,
    /// Tool calls the server can cancel one by one (`state.outstanding_tool_calls`).
    outstanding: Memo<Vec<String>>,
    #[prop(into)] force_expanded: Signal<bool>,
) -> impl IntoView {
    let card = call.card;
    let id = card.id.get_value();
    let expanded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let started_ms = parse_time_ms(&card.started.get_value());
    let open = move || card.status.get().is_none();
    let cancellable = {
        let id = id.clone();
        move || outstanding.with(|o| o.contains(&id))
    };
    let status_text = move || match card.status.get() {
        Some(s) => s.as_str(),
        None if card.stopping.get() => "stopping…",
        None => progress_text(call.progress.get()),
    };
    let elapsed = move || match card.elapsed.get() {
        Some(ns) => format_duration(ns as f64 / 1e6),
        None => match (started_ms, now.get()) {
            (Some(start), now) if now > 0.0 => format_duration(now - start),
            _ => String::new(),
        },
    };
    let stop = {
        let id = id.clone();
        move |one: bool| {
            card.stopping.set(true);
            let url = format!("{base}cancel");
            let body = CancelRequest {
                reason: Some(
                    if one {
                        "cancelled from its card"
                    } else {
                        "stopped by the user"
                    }
                    .into(),
                ),
                tool_call_id: one.then(|| id.clone()),
            };
            leptos::task::spawn_local(async move {
                if let Err(e) = post_json::<_, serde_json::Value>(&url, &body).await
                    && card.status.get_untracked().is_none()
                {
                    card.stopping.set(false);
                    error.set(Some(e));
                }
            });
        }
    };
    // The terminal shows when the agent attached one or output arrived anyway.
    let has_terminal = move || {
        card.version.track();
        call.content
            .with(|c| c.iter().any(|c| matches!(c, ToolContent::Terminal { .. })))
            || card.term.with_value(|t| t.line_count() > 0)
    };
    let command = move || {
        let command = card.command.get();
        // An input without a command shows as JSON; an empty one says nothing.
        (!command.is_empty() && command != call.title.get() && command != "null" && command != "{}")
            .then_some(command)
    };

    view! {
        <article class="card tool agent-tool" class:running=open data-testid="tool-card"
            data-kind=move || call.kind.get() data-tool-call-id=id.clone()
            data-status=move || card.status.get().map_or("running", ToolStatus::as_str)>
            <header class="card-head">
                <span class="kind" data-testid="tool-kind">
                    <span aria-hidden="true">{move || kind_label(&call.kind.get()).0}</span>
                    " " {move || kind_label(&call.kind.get()).1}
                </span>
                <span class="tool-title" data-testid="tool-title">{move || call.title.get()}</span>
                <span class=move || format!("badge badge-{}", status_text().replace('…', "")) data-testid="status">
                    {status_text}
                </span>
                <span class="elapsed" data-testid="elapsed">{elapsed}</span>
                {move || open().then(|| {
                    let stop = stop.clone();
                    if cancellable() {
                        Either::Left(view! {
                            <button class="btn big danger" data-testid="cancel-tool" on:click=move |_| stop(true)
                                disabled=move || card.stopping.get()>
                                {move || if card.stopping.get() { "Stopping…" } else { "Cancel" }}
                            </button>
                        })
                    } else {
                        Either::Right(view! {
                            <button class="btn big danger" data-testid="stop-turn" on:click=move |_| stop(false)
                                disabled=move || card.stopping.get()
                                title="This call runs inside the agent; only the whole turn can be stopped">
                                {move || if card.stopping.get() { "Stopping…" } else { "Stop turn" }}
                            </button>
                        })
                    }
                })}
            </header>
            {move || command().map(|c| view! { <pre class="tool-command" data-testid="command">{c}</pre> })}
            {move || {
                let locations = call.locations.get();
                (!locations.is_empty()).then(|| view! {
                    <ul class="locations" data-testid="locations">
                        {locations.into_iter().map(|l| view! { <li><code>{l}</code></li> }).collect_view()}
                    </ul>
                })
            }}
            {move || call.content.get().into_iter().filter_map(|c| match c {
                ToolContent::Text { text } => Some(Either::Left(view! {
                    <div class="tool-text" data-testid="tool-text"><Markdown text=Signal::stored(text)/></div>
                })),
                ToolContent::Diff { path, old_text, new_text } => Some(Either::Right(view! {
                    <DiffView path old_text new_text/>
                })),
                ToolContent::Terminal { .. } => None,
            }).collect_view()}
            {move || has_terminal().then(|| view! {
                {move || if expanded.get() || force_expanded.get() {
                    Either::Left(view! { <ExpandedOutput card query/> })
                } else {
                    Either::Right(view! { <CollapsedOutput card query/> })
                }}
                <footer class="card-foot">
                    <button class="btn link" data-testid="expand" aria-expanded=move || expanded.get().to_string()
                        on:click=move |_| expanded.update(|e| *e = !*e)>
                        {move || if expanded.get() { "Collapse" } else { "Show all output" }}
                    </button>
                </footer>
            })}
            {move || {
                let summary = card.summary.get();
                (!summary.is_empty() && card.status.get().is_some_and(|s| s != ToolStatus::Completed))
                    .then(|| view! { <p class="muted summary" data-testid="summary">{summary}</p> })
            }}
            {move || error.get().map(|e| view! { <p class="error-text" role="alert">{e}</p> })}
        </article>
    }
}
