//! The scrolling list of messages: follows new ones while the reader is at the
//! bottom, and counts them while they are not.

use leptos::prelude::*;

use super::item::ItemView;
use super::review_panel::ReviewTurn;
use crate::components::approval::ApprovalCard;
use crate::timeline::{Item, Timeline};

/// Where the scroll position counts as "at the bottom".
const PIN_SLACK_PX: i32 = 48;

#[component]
pub(super) fn TimelineView(
    timeline: Timeline,
    base: String,
    now: RwSignal<f64>,
    query: Signal<String>,
    hits: Memo<Vec<u64>>,
    /// The turn the review panel shows; a changes line opens it.
    review: RwSignal<Option<ReviewTurn>>,
) -> impl IntoView {
    let scroller: NodeRef<leptos::html::Div> = NodeRef::new();
    let pinned = RwSignal::new(true);
    let unseen = RwSignal::new(0u64);
    let seen_at = StoredValue::new(timeline.applied.get_untracked());
    let outstanding = Memo::new(move |_| {
        timeline.state.with(|s| {
            s.as_ref()
                .map(|s| s.outstanding_tool_calls.clone())
                .unwrap_or_default()
        })
    });
    // Waiting requests whose message is before the loaded window still need an answer.
    let unseen_requests = Memo::new(move |_| {
        timeline.items.track();
        timeline.state.with(|s| {
            s.as_ref()
                .map(|s| s.pending_permissions.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|r| !timeline.has_permission(&r.request_id))
                .collect::<Vec<_>>()
        })
    });

    let scroll_to_bottom = move || {
        if let Some(el) = scroller.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
    };
    // New messages: follow them while pinned, count them otherwise.
    Effect::new(move |_| {
        let applied = timeline.applied.get();
        if pinned.get_untracked() {
            // Checked again in the frame: a scroll up that landed in between wins,
            // rather than being yanked back to the bottom.
            request_animation_frame(move || {
                if pinned.get_untracked() {
                    seen_at.set_value(timeline.applied.get_untracked());
                    scroll_to_bottom();
                }
            });
        } else {
            unseen.set(applied.saturating_sub(seen_at.get_value()));
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = scroller.get_untracked() {
            let at_bottom =
                el.scroll_height() - el.scroll_top() - el.client_height() <= PIN_SLACK_PX;
            pinned.set(at_bottom);
            if at_bottom {
                seen_at.set_value(timeline.applied.get_untracked());
                unseen.set(0);
            }
        }
    };
    let jump = move |_| {
        pinned.set(true);
        unseen.set(0);
        seen_at.set_value(timeline.applied.get_untracked());
        scroll_to_bottom();
    };

    let approval_base = base.clone();
    view! {
        <div class="timeline" node_ref=scroller on:scroll=on_scroll data-testid="timeline" tabindex="0" aria-label="Conversation">
            {(timeline.base > 0).then(|| view! {
                <p class="muted note">{timeline.base} " earlier messages are not shown here; the download has the full history."</p>
            })}
            <For
                each=move || timeline.items.get()
                key=item_key
                children=move |item| {
                    let idx = item.idx();
                    let hit = Signal::derive(move || hits.with(|h| h.contains(&idx)));
                    view! { <ItemView item base=base.clone() now query hit outstanding review/> }
                }
            />
            <For
                each=move || unseen_requests.get()
                key=|r| r.request_id.clone()
                children=move |request| {
                    let answer = RwSignal::new(None);
                    view! { <div class="item"><ApprovalCard request answer base=approval_base.clone()/></div> }
                }
            />
        </div>
        <Show when=move || { !pinned.get() && unseen.get() > 0 }>
            <button class="jump" data-testid="jump-latest" on:click=jump>
                {move || format!("↓ {} new", unseen.get())}
            </button>
        </Show>
    }
}

fn item_key(item: &Item) -> String {
    match item {
        Item::Tool { card, .. } => card.id.get_value(),
        other => other.idx().to_string(),
    }
}
