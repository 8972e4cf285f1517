//! `/c/:id`: one conversation — header, live timeline, chat box, find, restart.

use std::rc::Rc;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::client::frames::FrameQueue;
use crate::client::http::get_json;
use crate::client::stream::{self, Conn, StreamSpec};
use crate::data::{Snapshot, conversation_base, load_snapshot};
use crate::protocol::{Message, ReviewComment, RunStatus, event};
use crate::sync_view::erase;
use crate::timeline::{Item, Timeline};

mod changes_line;
mod chat_box;
mod choices;
mod find_bar;
mod header;
mod item;
mod restart_dialog;
mod revert_control;
mod review_diff;
mod review_draft;
mod review_panel;
mod share_dialog;
mod silence;
mod timeline_view;

use chat_box::ChatBox;
use find_bar::FindBar;
use header::Header;
use restart_dialog::RestartDialog;
use review_panel::{ReviewPanel, ReviewTurn};
use share_dialog::ShareDialog;
use timeline_view::TimelineView;

#[component]
pub fn ConversationPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let snapshot = Resource::new(id, load_snapshot);
    view! {
        <Suspense fallback=|| view! { <p class="muted pad">"Loading…"</p> }>
            {move || snapshot.get().map(|result| match result {
                Ok(snapshot) => erase(view! { <ConversationView snapshot/> }),
                Err(error) => erase(view! {
                    <div class="page pad">
                        <p class="error-text" role="alert">{error}</p>
                        <a href="/">"All conversations"</a>
                    </div>
                }),
            })}
        </Suspense>
    }
}

#[component]
fn ConversationView(snapshot: Snapshot) -> impl IntoView {
    let id = snapshot.state.conversation_id.clone();
    let base = conversation_base(&id);
    let timeline = Timeline::new(snapshot.base);
    timeline.state.set(Some(snapshot.state.clone()));
    timeline.push_all(snapshot.messages);

    let status = RwSignal::new(Conn::Connecting);
    let reconnects = RwSignal::new(0u32);
    let now = RwSignal::new(0.0);
    let settings = crate::settings();
    let query = RwSignal::new(String::new());

    // The stream: resumes from whatever the timeline has applied.
    {
        let base = base.clone();
        Effect::new(move |_| {
            let url_base = base.clone();
            let gap_base = base.clone();
            let fetching_gap = Rc::new(std::cell::Cell::new(false));
            // Events are applied once per animation frame, in arrival order, so a flood
            // cannot starve painting.
            let inbox = FrameQueue::new(move |(name, data): (&'static str, String)| match name {
                event::MESSAGE => {
                    if let Ok(message) = serde_json::from_str::<Message>(&data) {
                        timeline.push(message);
                    }
                    fill_gap(timeline, &gap_base, &fetching_gap);
                }
                event::STATE => {
                    if let Ok(state) = serde_json::from_str(&data) {
                        timeline.state.set(Some(state));
                    }
                }
                _ => {}
            });
            stream::open_scoped(StreamSpec {
                url: Rc::new(move || format!("{url_base}stream?from={}", timeline.next_idx())),
                events: &[event::MESSAGE, event::STATE, event::HEARTBEAT],
                on_event: Rc::new(move |name, data| {
                    if name != event::HEARTBEAT {
                        inbox.push((name, data));
                    }
                }),
                probe_url: Some(format!("{base}state")),
                settings,
                status,
                reconnects,
                // A command's output can flood; the page must keep painting meanwhile.
                worker: true,
            });
            crate::tick(now);
        });
    }

    // While shown, this conversation is what the reader looks at: its activity is
    // seen, its own notifications are not needed, and the tab carries its title.
    let attention = crate::attention::use_attention();
    attention.view_conversation(id.clone());
    Effect::new(move |_| {
        let title = timeline
            .state
            .with(|s| s.as_ref().map(|s| s.title.clone()).unwrap_or_default());
        attention.page_title.set(if title.is_empty() {
            "Tether".into()
        } else {
            title
        });
    });

    let state = move || timeline.state.get().unwrap_or_default();
    let running = move || state().status == RunStatus::Running;
    // Rows matching the find query, in order; shared by the find bar and the timeline.
    let hits = Memo::new(move |_| {
        let q = query.get().to_lowercase();
        if q.is_empty() {
            return Vec::new();
        }
        timeline.applied.track();
        timeline.items.with(|items| {
            items
                .iter()
                .filter(|i| i.matches(&q))
                .map(Item::idx)
                .collect::<Vec<_>>()
        })
    });
    let restart_open = RwSignal::new(false);
    let find_open = RwSignal::new(false);
    let share_open = RwSignal::new(false);
    // Opened through a share link: watch only (the server refuses anything else).
    let read_only = crate::access().read_only;
    let share_base = base.clone();
    // The turn the review panel shows, if open.
    let review = RwSignal::new(None::<ReviewTurn>);
    // Review comments not sent yet; kept while the panel is closed and reopened.
    let draft = RwSignal::new(Vec::<ReviewComment>::new());
    let review_base = base.clone();

    view! {
        // `read-only` also hides the buttons inside cards (approvals, Cancel) by CSS.
        <div class="page conversation-page" class:read-only=read_only>
            <Header state=Signal::derive(state) base=base.clone() status now reconnects find_open restart_open
                share_open read_only usage=timeline.usage_total.into()/>
            <Show when=move || find_open.get()>
                <FindBar query matches=hits/>
            </Show>
            <TimelineView timeline base=base.clone() now query=query.into() hits review/>
            {(!read_only).then(|| view! {
                <ChatBox base=base.clone() status running=Signal::derive(running) queued=Signal::derive(move || state().queued_messages)
                    agent=Signal::derive(move || { let a = state().agent; !a.is_empty() && a != "shell" })/>
            })}
            <Show when=move || restart_open.get()>
                <RestartDialog base=base.clone() open=restart_open/>
            </Show>
            <Show when=move || share_open.get()>
                <ShareDialog base=share_base.clone() open=share_open/>
            </Show>
            {move || review.get().map(|turn| view! {
                <ReviewPanel base=review_base.clone() turn open=review draft read_only/>
            })}
        </div>
    }
}

/// Fetches a missing range once messages arrived past a gap.
fn fill_gap(timeline: Timeline, base: &str, busy: &Rc<std::cell::Cell<bool>>) {
    let Some(gap) = timeline.gap() else { return };
    if busy.replace(true) {
        return;
    }
    let url = format!("{base}messages?start={}&end={}", gap.start, gap.end);
    let busy = busy.clone();
    leptos::task::spawn_local(async move {
        if let Ok(messages) = get_json::<Vec<Message>>(&url).await {
            timeline.push_all(messages);
        }
        busy.set(false);
    });
}
