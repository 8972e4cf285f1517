//! One row of the timeline: a message, a tool call, an error or a restart marker.

use leptos::prelude::*;

use crate::components::tool_card::ToolCardView;
use crate::sync_view::erase;
use crate::timeline::Item;

#[component]
pub(super) fn ItemView(
    item: Item,
    base: String,
    now: RwSignal<f64>,
    query: Signal<String>,
    hit: Signal<bool>,
) -> impl IntoView {
    let idx = item.idx();
    // `erase`, not `into_any()`: the latter keeps the async hydration of each kind of
    // row in the bundle, used or not.
    let body = match item {
        Item::User { text, time, .. } => erase(view! {
            <div class="msg user" data-testid="user-message">
                <pre class="text">{text}</pre>
                <time class="muted" datetime=time.clone()>{crate::pages::list::short_time(&time)}</time>
            </div>
        }),
        Item::Agent {
            text, end_of_turn, ..
        } => erase(view! {
            <div class="msg agent" class:end=end_of_turn data-testid="agent-message">
                <p class="text">{text}</p>
            </div>
        }),
        Item::Tool { card, .. } => {
            erase(view! { <ToolCardView card base now query force_expanded=hit/> })
        }
        Item::Error { text, .. } => erase(view! {
            <div class="msg error" role="alert" data-testid="error-message"><p class="text">{text}</p></div>
        }),
        Item::Restart { text, .. } => erase(view! {
            <div class="msg restart" data-testid="restart-marker"><span>{text}</span></div>
        }),
    };
    view! { <div class="item" class:hit=move || hit.get() id=format!("m{idx}") data-idx=idx>{body}</div> }
}
