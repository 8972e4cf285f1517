//! One row of the timeline: a message, a tool call, an agent's reply, thought,
//! plan or approval request, a notice, an error, a restart marker, or what a turn
//! changed.

use leptos::prelude::*;

use super::changes_line::ChangesLine;
use super::review_panel::ReviewTurn;
use crate::components::agent_card::AgentCardView;
use crate::components::approval::ApprovalCard;
use crate::components::plan::PlanView;
use crate::components::tool_card::ToolCardView;
use crate::markdown::Markdown;
use crate::sync_view::erase;
use crate::timeline::Item;

#[component]
pub(super) fn ItemView(
    item: Item,
    base: String,
    now: RwSignal<f64>,
    query: Signal<String>,
    hit: Signal<bool>,
    outstanding: Memo<Vec<String>>,
    review: RwSignal<Option<ReviewTurn>>,
) -> impl IntoView {
    let idx = item.idx();
    let folded = match &item {
        Item::User { folded, .. } => Some(*folded),
        _ => None,
    };
    let folded = move || folded.is_some_and(|f| f.get());
    // `erase`, not `into_any()`: the latter keeps the async hydration of each kind of
    // row in the bundle, used or not.
    let body = match item {
        // Not shown once its shell card shows the command (and the time) instead.
        Item::User {
            text, time, folded, ..
        } => erase(view! {
            <Show when=move || !folded.get()>
                <div class="msg user" data-testid="user-message">
                    <pre class="text">{text.clone()}</pre>
                    <time class="muted" datetime=time.clone()>{crate::pages::list::short_time(&time)}</time>
                </div>
            </Show>
        }),
        Item::Agent {
            text,
            end_of_turn,
            usage,
            ..
        } => erase(view! {
            <div class="msg agent" class:end=end_of_turn data-testid="agent-message">
                <p class="text">{text}</p>
                {usage.map(|u| view! { <p class="usage muted" data-testid="usage">{u.describe()}</p> })}
            </div>
        }),
        Item::Tool { card, .. } => {
            erase(view! { <ToolCardView card base now query force_expanded=hit/> })
        }
        Item::AgentTool { call, .. } => erase(view! {
            <AgentCardView call base now query outstanding force_expanded=hit/>
        }),
        Item::Reply { text, .. } => erase(view! {
            <div class="msg reply" data-testid="agent-reply"><Markdown text/></div>
        }),
        Item::Thought { text, .. } => erase(view! {
            <details class="msg thought" data-testid="thought">
                <summary>"Thinking…"</summary>
                <Markdown text/>
            </details>
        }),
        Item::Plan { entries, .. } => erase(view! { <PlanView entries/> }),
        Item::Approval {
            request, answer, ..
        } => erase(view! { <ApprovalCard request answer base/> }),
        Item::Notice { text, .. } => erase(view! {
            <div class="msg notice" role="status" data-testid="notice"><span>{text}</span></div>
        }),
        Item::Error { text, .. } => erase(view! {
            <div class="msg error" role="alert" data-testid="error-message"><p class="text">{text}</p></div>
        }),
        Item::Restart { text, .. } => erase(view! {
            <div class="msg restart" data-testid="restart-marker"><span>{text}</span></div>
        }),
        Item::Changes {
            idx,
            changes,
            reverted_by,
        } => erase(view! { <ChangesLine idx changes reverted_by review/> }),
    };
    view! { <div class="item" class:hit=move || hit.get() class:folded=folded id=format!("m{idx}") data-idx=idx>{body}</div> }
}
