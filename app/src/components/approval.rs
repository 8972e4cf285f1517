//! A permission request: what the agent wants to do and the agent's own options
//! as buttons. Once answered (here, in another browser, or withdrawn when the
//! turn stopped) it says how, instead.

use leptos::prelude::*;

use crate::client::http::post_json_status;
use crate::protocol::{
    PermissionAnswer, PermissionRequest, PermissionResponseAck, PermissionResponseRequest,
};

/// How an answered request reads; `outcome` is an option kind or `cancelled`.
pub fn outcome_label(outcome: &str) -> String {
    match outcome {
        "allow_once" => "Allowed once".into(),
        "allow_always" => "Always allowed".into(),
        "reject_once" => "Rejected".into(),
        "reject_always" => "Always rejected".into(),
        "cancelled" => "Withdrawn".into(),
        other => other.replace('_', " "),
    }
}

/// What the agent wants to run or touch, in one readable block.
fn describe_input(input: &serde_json::Value) -> String {
    match input.get("command").and_then(|c| c.as_str()) {
        Some(command) => command.to_string(),
        None => serde_json::to_string_pretty(input).unwrap_or_default(),
    }
}

#[component]
pub fn ApprovalCard(
    request: PermissionRequest,
    /// Filled by the request's `permission_answer`, or by this browser's answer.
    answer: RwSignal<Option<PermissionAnswer>>,
    /// The conversation's API base.
    base: String,
) -> impl IntoView {
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let input = request
        .input
        .as_ref()
        .filter(|i| !i.is_null())
        .map(describe_input);
    let options = StoredValue::new(request.options.clone());
    let request_id = StoredValue::new(request.request_id.clone());
    let url = StoredValue::new(format!("{base}permission"));
    let choose = move |option_id: String| {
        busy.set(true);
        error.set(None);
        let body = PermissionResponseRequest {
            request_id: request_id.get_value(),
            option_id,
        };
        let url = url.get_value();
        leptos::task::spawn_local(async move {
            match post_json_status::<_, PermissionResponseAck>(&url, &body).await {
                Ok(ack) => answer.set(Some(ack.answer)),
                // The state update that follows removes or resolves the card.
                Err((409, _)) => note.set(Some("Already answered.".into())),
                Err((404, _)) => note.set(Some("This request is no longer waiting.".into())),
                Err((_, e)) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let buttons = move || {
        options.with_value(|options| {
            options
                .iter()
                .map(|option| {
                    let kind = option.kind.clone();
                    let id = option.option_id.clone();
                    view! {
                        <button type="button" class=format!("btn approve {kind}") data-testid="approval-option"
                            data-kind=kind.clone() data-option-id=id.clone()
                            disabled=move || busy.get() || note.with(Option::is_some)
                            on:click=move |_| choose(id.clone())>
                            {option.name.clone()}
                        </button>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <article class="card approval" class:answered=move || answer.with(Option::is_some)
            data-testid="approval" data-request-id=request.request_id.clone()
            data-tool-call-id=request.tool_call_id.clone()
            data-state=move || if answer.with(Option::is_some) { "answered" } else { "pending" }>
            <header class="card-head">
                <span class="approval-label">"Approval needed"</span>
                <strong class="approval-title">{request.title.clone()}</strong>
            </header>
            {input.map(|i| view! { <pre class="approval-input">{i}</pre> })}
            <Show
                when=move || answer.with(Option::is_none)
                fallback=move || {
                    let outcome = answer.get().map(|a| a.outcome).unwrap_or_default();
                    view! {
                        <p class="approval-outcome" data-testid="approval-outcome" data-outcome=outcome.clone()>
                            {outcome_label(&outcome)}
                        </p>
                    }
                }
            >
                <div class="approval-options" role="group" aria-label="Answer">{buttons}</div>
            </Show>
            {move || note.get().map(|n| view! { <p class="muted approval-note" data-testid="approval-note">{n}</p> })}
            {move || error.get().map(|e| view! { <p class="error-text" role="alert">{e}</p> })}
        </article>
    }
}
