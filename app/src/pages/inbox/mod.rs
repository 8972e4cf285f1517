//! The list page's inbox: what needs you first (waiting for approval, failed or
//! finished since you last looked), then what runs, then the rest, each newest
//! first. A filter by title (`/` focuses it), `j`/`k` to move, `Enter` to open.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::attention::rules::{Group, group_of, matches};
use crate::attention::use_attention;
use crate::protocol::ConversationSummary;

mod row;

use row::InboxRow;

#[derive(Clone, PartialEq)]
struct Entry {
    summary: ConversationSummary,
    unread: bool,
}

#[component]
pub fn Inbox() -> impl IntoView {
    let a = use_attention();
    let filter = RwSignal::new(String::new());
    let selected = RwSignal::new(None::<String>);
    let filter_box: NodeRef<leptos::html::Input> = NodeRef::new();
    let groups = Memo::new(move |_| {
        let f = filter.get();
        let mut out: Vec<(Group, Vec<Entry>)> =
            Group::ALL.iter().map(|g| (*g, Vec::new())).collect();
        a.summaries.with(|list| {
            for s in list.iter().filter(|s| matches(s, &f)) {
                let unread = a.unread(s);
                let group = group_of(s, unread);
                if let Some((_, entries)) = out.iter_mut().find(|(g, _)| *g == group) {
                    entries.push(Entry {
                        summary: s.clone(),
                        unread,
                    });
                }
            }
        });
        out
    });
    // The rows in screen order, for j/k.
    let order = move || {
        groups.with(|g| {
            g.iter()
                .flat_map(|(_, entries)| entries.iter().map(|e| e.summary.id.clone()))
                .collect::<Vec<_>>()
        })
    };
    let navigate = use_navigate();
    let open = move |id: &str| navigate(&format!("/c/{id}"), Default::default());
    let step = move |forward: bool| {
        let order = order();
        if order.is_empty() {
            return;
        }
        let at = selected
            .with_untracked(|s| s.as_ref().and_then(|id| order.iter().position(|o| o == id)));
        let next = match (at, forward) {
            (None, _) => 0,
            (Some(i), true) => (i + 1).min(order.len() - 1),
            (Some(i), false) => i.saturating_sub(1),
        };
        selected.set(order.get(next).cloned());
        if let Some(id) = order.get(next) {
            scroll_to_row(id);
        }
    };

    Effect::new(move |_| {
        let open = open.clone();
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            let in_filter = filter_box.get_untracked().is_some_and(|f| {
                document().active_element().is_some_and(|el| {
                    let f: &leptos::web_sys::Element = f.as_ref();
                    el == *f
                })
            });
            let typing = in_filter || is_typing_target(&ev);
            match ev.key().as_str() {
                "/" if !typing => {
                    ev.prevent_default();
                    if let Some(input) = filter_box.get_untracked() {
                        let _ = input.focus();
                    }
                }
                "j" if !typing => step(true),
                "k" if !typing => step(false),
                "ArrowDown" if in_filter => {
                    ev.prevent_default();
                    step(true);
                }
                "ArrowUp" if in_filter => {
                    ev.prevent_default();
                    step(false);
                }
                // The browser empties a search box on Escape without an `input`
                // event; the filter follows it, and the keys go back to the list.
                "Escape" if in_filter => {
                    filter.set(String::new());
                    if let Some(input) = filter_box.get_untracked() {
                        let _ = input.blur();
                    }
                }
                // Enter on a link or button does its own thing.
                "Enter" if in_filter || !typing => {
                    let target = selected
                        .get_untracked()
                        .or_else(|| order().first().cloned());
                    if let Some(id) = target {
                        ev.prevent_default();
                        open(&id);
                    }
                }
                _ => {}
            }
        });
        on_cleanup(move || handle.remove());
    });

    view! {
        <section class="inbox" aria-labelledby="conversations-heading">
            <div class="inbox-head">
                <h2 id="conversations-heading">"Conversations"</h2>
                <input type="search" class="filter" data-testid="filter" node_ref=filter_box
                    placeholder="Filter by title  ( / )" aria-label="Filter conversations by title"
                    aria-keyshortcuts="/"
                    prop:value=move || filter.get()
                    on:input=move |ev| { filter.set(event_target_value(&ev)); selected.set(None); }/>
            </div>
            <Show
                when=move || !a.summaries.with(Vec::is_empty)
                fallback=|| view! { <p class="muted">"No conversations yet. Start one above."</p> }
            >
                <div data-testid="conversation-list" role="listbox" aria-label="Conversations">
                    <For
                        each=move || groups.get().into_iter().filter(|(_, e)| !e.is_empty())
                        key=|(g, _)| *g
                        children=move |(group, _)| {
                            let entries = move || groups.with(|g| {
                                g.iter().find(|(x, _)| *x == group).map(|(_, e)| e.clone()).unwrap_or_default()
                            });
                            view! {
                                <section class="inbox-group" data-testid="inbox-group" data-group=group.id()>
                                    <h3>{group.heading()}</h3>
                                    <ul class="conversations">
                                        <For
                                            each=entries
                                            key=row_key
                                            children=move |e| {
                                                let id = e.summary.id.clone();
                                                let is_selected = Signal::derive(move || selected.with(|s| s.as_deref() == Some(id.as_str())));
                                                view! { <InboxRow summary=e.summary unread=e.unread selected=is_selected now=a.now/> }
                                            }
                                        />
                                    </ul>
                                </section>
                            }
                        }
                    />
                    {move || (!a.summaries.with(Vec::is_empty) && groups.with(|g| g.iter().all(|(_, e)| e.is_empty())))
                        .then(|| view! { <p class="muted">"No title matches the filter."</p> })}
                </div>
            </Show>
        </section>
    }
}

/// A row is drawn again when anything it shows changed.
fn row_key(e: &Entry) -> (String, String, bool, u64, bool, String, u64, bool) {
    let s = &e.summary;
    (
        s.id.clone(),
        s.updated_at.clone(),
        s.status == crate::protocol::RunStatus::Running,
        s.message_count,
        s.last_error,
        s.title.clone(),
        s.pending_permissions,
        e.unread,
    )
}

/// Whether a key press is meant for a text field, not for the list.
fn is_typing_target(ev: &leptos::ev::KeyboardEvent) -> bool {
    use leptos::wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

fn scroll_to_row(id: &str) {
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
    #[cfg(feature = "hydrate")]
    let selector = format!("[data-testid=conversation-row][data-id=\"{id}\"]");
    #[cfg(feature = "hydrate")]
    if let Ok(Some(el)) = document().query_selector(&selector) {
        let options = web_sys::ScrollIntoViewOptions::new();
        options.set_block(web_sys::ScrollLogicalPosition::Nearest);
        el.scroll_into_view_with_scroll_into_view_options(&options);
    }
}
