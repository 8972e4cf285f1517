//! One conversation in the inbox: status, title, agent, why it is where it is,
//! where it runs, how much happened and how long ago.

use leptos::prelude::*;

use crate::attention::rules::{ago, reason};
use crate::pages::list::short_time;
use crate::protocol::{ConversationSummary, RunStatus};

#[component]
pub(super) fn InboxRow(
    summary: ConversationSummary,
    unread: bool,
    selected: Signal<bool>,
    now: RwSignal<f64>,
) -> impl IntoView {
    let (dot, label) = match (summary.status, summary.last_error) {
        (RunStatus::Running, _) => ("running", "running"),
        (RunStatus::Idle, true) => ("error", "last command failed"),
        (RunStatus::Idle, false) => ("idle", "idle"),
    };
    let title = if summary.title.is_empty() {
        "Untitled".to_string()
    } else {
        summary.title.clone()
    };
    let why = reason(&summary, unread);
    let updated_ms = crate::client::parse_time_ms(&summary.updated_at);
    let updated = summary.updated_at.clone();
    // The server (and the first browser render) has no clock: the date, then ages.
    let when = move || match (updated_ms, now.get()) {
        (Some(then), now) if now > 0.0 => ago(now, then),
        _ => short_time(&updated),
    };
    view! {
        <li class="conversation" class:unread=unread data-testid="conversation-row" data-id=summary.id.clone()
            data-status=dot data-reason=why role="option" aria-selected=move || selected.get().to_string()>
            <span class=format!("status-dot {dot}") title=label aria-label=label></span>
            <span class="row-main">
                <a class="title" href=format!("/c/{}", summary.id)>{title}</a>
                {unread.then(|| view! { <span class="unread" data-testid="unread" title="New since you last looked">"new"</span> })}
                <span class="cwd" title=summary.cwd.clone()>{summary.cwd.clone()}</span>
            </span>
            <span class="agent">
                <span class="muted" data-testid="row-agent">{summary.agent.clone()}</span>
                {(summary.pending_permissions > 0).then(|| view! {
                    " " <span class="needs-approval" data-testid="row-approvals">
                        {summary.pending_permissions} " awaiting approval"
                    </span>
                })}
            </span>
            <span class=format!("reason reason-{}", why.replace(' ', "-")) data-testid="row-reason">{why}</span>
            <span class="muted count">{summary.message_count} " messages"</span>
            <time class="muted" datetime=summary.updated_at.clone() title=short_time(&summary.updated_at)>{when}</time>
        </li>
    }
}
