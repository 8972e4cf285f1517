//! One tool call: the command, its live output, a ticking clock, a status badge,
//! the exit code, and on running calls Cancel and a small input for the terminal.

use leptos::either::Either;
use leptos::prelude::*;

use crate::client::http::post_json;
use crate::client::parse_time_ms;
use crate::components::key_bar::KeyBar;
use crate::components::terminal::{COLLAPSED_LINES, CollapsedOutput, ExpandedOutput};
use crate::progress::detect_progress;
use crate::protocol::{CancelRequest, InputRequest, ToolStatus};
use crate::timeline::ToolCard;

pub fn format_duration(ms: f64) -> String {
    let secs = (ms / 1000.0).max(0.0);
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = secs as u64;
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

#[component]
pub fn ToolCardView(
    card: ToolCard,
    /// The conversation's API base (`/api/conversations/{id}/`).
    base: String,
    now: RwSignal<f64>,
    query: Signal<String>,
    /// Set by find-in-page to open this card.
    #[prop(into)]
    force_expanded: Signal<bool>,
) -> impl IntoView {
    let expanded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let input_text = RwSignal::new(String::new());
    let id = card.id.get_value();
    let started_ms = parse_time_ms(&card.started.get_value());

    let status_text = move || match card.status.get() {
        None if card.stopping.get() => "stopping…",
        None => "running",
        Some(s) => s.as_str(),
    };
    let elapsed = move || match card.elapsed.get() {
        Some(ns) => format_duration(ns as f64 / 1e6),
        None => match (started_ms, now.get()) {
            (Some(start), now) if now > 0.0 => format_duration(now - start),
            _ => String::new(),
        },
    };
    let line_count = move || {
        card.version.track();
        card.term
            .with_value(|t| (t.line_count(), t.dropped_lines()))
    };
    let progress = move || {
        card.version.track();
        if card.status.get().is_some() {
            return None;
        }
        card.term
            .with_value(|t| t.lines().last().and_then(|l| detect_progress(&l.text())))
    };

    let cancel = {
        let base = base.clone();
        let id = id.clone();
        move |_| {
            card.stopping.set(true);
            let url = format!("{base}cancel");
            let body = CancelRequest {
                reason: Some("cancelled from its card".into()),
                tool_call_id: Some(id.clone()),
            };
            leptos::task::spawn_local(async move {
                if let Err(e) = post_json::<_, serde_json::Value>(&url, &body).await {
                    // Finished in the meantime: the result message will say so.
                    if card.status.get_untracked().is_none() {
                        card.stopping.set(false);
                        error.set(Some(e));
                    }
                }
            });
        }
    };
    let send_input = {
        let base = base.clone();
        let id = id.clone();
        move || {
            let data = format!("{}\r", input_text.get_untracked());
            let url = format!("{base}input");
            let body = InputRequest {
                tool_call_id: id.clone(),
                data,
            };
            input_text.set(String::new());
            leptos::task::spawn_local(async move {
                if let Err(e) = post_json::<_, serde_json::Value>(&url, &body).await {
                    error.set(Some(e));
                }
            });
        }
    };
    let send_input_key = send_input.clone();
    let key_base = StoredValue::new(base.clone());
    let key_id = StoredValue::new(id.clone());

    view! {
        <article
            class="card tool"
            class:running=move || card.status.get().is_none()
            data-testid="tool-card"
            data-tool-call-id=id.clone()
            data-status=move || card.status.get().map_or("running", ToolStatus::as_str)
        >
            <header class="card-head">
                // A shell card is the user's message too: it carries that role here.
                <span class="prompt" data-testid=move || card.prompt.with(|p| p.as_ref().map(|_| "user-message"))>
                    <code class="command" data-testid="command">{move || card.command.get()}</code>
                </span>
                <span class=move || format!("badge badge-{}", status_text().replace('…', "")) data-testid="status">
                    {status_text}
                </span>
                <span class="elapsed" data-testid="elapsed">{elapsed}</span>
                {move || card.exit_code.get().map(|c| view! { <span class="exit" data-testid="exit-code">"exit " {c}</span> })}
                {move || (card.status.get().is_none()).then(|| {
                    let cancel = cancel.clone();
                    view! {
                        <button class="btn small danger" data-testid="cancel-tool" on:click=cancel disabled=move || card.stopping.get()>
                            {move || if card.stopping.get() { "Stopping…" } else { "Cancel" }}
                        </button>
                    }
                })}
            </header>
            {move || progress().map(|p| view! {
                <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{:.0}", p * 100.0) data-testid="progress">
                    <div class="bar" style:width=format!("{:.1}%", p * 100.0)></div>
                </div>
            })}
            {move || if expanded.get() || force_expanded.get() {
                Either::Left(view! { <ExpandedOutput card query/> })
            } else {
                Either::Right(view! { <CollapsedOutput card query/> })
            }}
            <footer class="card-foot">
                {move || {
                    let (lines, dropped) = line_count();
                    let hidden = lines.saturating_sub(COLLAPSED_LINES);
                    view! {
                        <span class="muted">{lines} {if lines == 1 { " line" } else { " lines" }}
                            {(dropped > 0).then(|| format!(" ({dropped} earlier lines not kept here; download has all)"))}
                        </span>
                        {(hidden > 0 || expanded.get()).then(|| view! {
                            <button class="btn link" data-testid="expand" aria-expanded=move || expanded.get().to_string()
                                on:click=move |_| expanded.update(|e| *e = !*e)>
                                {move || if expanded.get() { "Collapse".to_string() } else { format!("Show all {lines} lines") }}
                            </button>
                        })}
                    }
                }}
                // "exit code 0" would only repeat the header; other endings explain themselves.
                {move || {
                    let summary = card.summary.get();
                    (!summary.is_empty() && card.status.get() != Some(ToolStatus::Completed))
                        .then(|| view! { <span class="muted summary" data-testid="summary">{summary}</span> })
                }}
            </footer>
            {move || (card.status.get().is_none()).then(|| {
                let send = send_input.clone();
                let send_key = send_input_key.clone();
                view! {
                    <form class="tool-input" on:submit=move |ev| { ev.prevent_default(); send(); }>
                        <input
                            type="text"
                            placeholder="Type to the terminal, Enter sends"
                            aria-label="Input for this command"
                            data-testid="tool-input"
                            prop:value=move || input_text.get()
                            on:input=move |ev| input_text.set(event_target_value(&ev))
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                if ev.key() == "Enter" { ev.prevent_default(); send_key(); }
                            }
                        />
                    </form>
                    <KeyBar base=key_base.get_value() tool_call_id=key_id.get_value() error/>
                }
            })}
            {move || error.get().map(|e| view! { <p class="error-text" role="alert">{e}</p> })}
        </article>
    }
}
