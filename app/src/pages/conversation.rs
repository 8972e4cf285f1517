//! `/c/:id`: one conversation — header, live timeline, chat box, find, restart.

use std::rc::Rc;

use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::client::frames::FrameQueue;
use crate::client::http::{get_json, post_json};
use crate::client::stream::{self, Conn, StreamSpec};
use crate::components::indicator::ConnectionIndicator;
use crate::components::tool_card::ToolCardView;
use crate::data::{Snapshot, conversation_base, load_snapshot};
use crate::protocol::{
    CancelRequest, ChatRequest, ChatResponse, Message, RestartRequest, RunStatus, event,
};
use crate::sync_view::erase;
use crate::timeline::{Item, Timeline};

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

/// Where the scroll position counts as "at the bottom".
const PIN_SLACK_PX: i32 = 48;

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
            });
            crate::tick(now);
        });
    }

    let state = move || timeline.state.get().unwrap_or_default();
    let running = move || state().status == RunStatus::Running;
    let title = move || {
        let t = state().title;
        if t.is_empty() {
            "Untitled".to_string()
        } else {
            t
        }
    };
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
                .filter(|i| i.search_text().to_lowercase().contains(&q))
                .map(Item::idx)
                .collect::<Vec<_>>()
        })
    });
    let restart_open = RwSignal::new(false);
    let find_open = RwSignal::new(false);

    view! {
        <div class="page conversation-page">
            <header class="topbar">
                <a class="back" href="/" aria-label="All conversations">"←"</a>
                <div class="heading">
                    <h1 data-testid="title">{title}</h1>
                    <p class="cwd muted" data-testid="cwd">{move || format!("{} · {}", state().working_dir, state().hostname)}</p>
                </div>
                <span class=move || format!("pill {}", if running() { "running" } else { "idle" }) data-testid="run-state">
                    {move || {
                        let s = state();
                        match (s.status, s.outstanding_tool_calls.len()) {
                            (RunStatus::Running, 0) => "running".to_string(),
                            (RunStatus::Running, n) => format!("running · {n} tool call{}", if n == 1 { "" } else { "s" }),
                            (RunStatus::Idle, _) => "idle".to_string(),
                        }
                    }}
                </span>
                <ConnectionIndicator status now reconnects/>
                <nav class="actions" aria-label="Conversation actions">
                    <button class="btn" data-testid="find-toggle" on:click=move |_| find_open.update(|o| *o = !*o)>"Find"</button>
                    <button class="btn" data-testid="restart-open" on:click=move |_| restart_open.set(true)>"Restart…"</button>
                    <a class="btn" href=format!("{base}download") download="" data-testid="download-json">"JSON"</a>
                    <a class="btn" href=format!("{base}download?format=text") download="" data-testid="download-text">"Text"</a>
                </nav>
            </header>
            <Show when=move || find_open.get()>
                <FindBar query matches=hits/>
            </Show>
            <TimelineView timeline base=base.clone() now query=query.into() hits/>
            <ChatBox base=base.clone() status running=Signal::derive(running) queued=Signal::derive(move || state().queued_messages)/>
            <Show when=move || restart_open.get()>
                <RestartDialog base=base.clone() open=restart_open/>
            </Show>
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

#[component]
fn TimelineView(
    timeline: Timeline,
    base: String,
    now: RwSignal<f64>,
    query: Signal<String>,
    hits: Memo<Vec<u64>>,
) -> impl IntoView {
    let scroller: NodeRef<leptos::html::Div> = NodeRef::new();
    let pinned = RwSignal::new(true);
    let unseen = RwSignal::new(0u64);
    let seen_at = StoredValue::new(timeline.applied.get_untracked());

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
                    view! { <ItemView item base=base.clone() now query hit/> }
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

#[component]
fn ItemView(
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

#[component]
fn FindBar(query: RwSignal<String>, matches: Memo<Vec<u64>>) -> impl IntoView {
    let current = RwSignal::new(0usize);
    let go = move |step: isize| {
        let list = matches.get_untracked();
        if list.is_empty() {
            return;
        }
        let n = list.len() as isize;
        let next = ((current.get_untracked() as isize + step).rem_euclid(n)) as usize;
        current.set(next);
        reveal(list[next]);
    };
    let input: NodeRef<leptos::html::Input> = NodeRef::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    view! {
        <div class="findbar" role="search" data-testid="findbar">
            <input
                type="search"
                node_ref=input
                placeholder="Find in conversation"
                aria-label="Find in conversation"
                data-testid="find-input"
                prop:value=move || query.get()
                on:input=move |ev| {
                    query.set(event_target_value(&ev));
                    current.set(0);
                    // Show the first match right away, as "1 of N" says.
                    if let Some(&first) = matches.get_untracked().first() {
                        reveal(first);
                    }
                }
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" { ev.prevent_default(); go(if ev.shift_key() { -1 } else { 1 }); }
                }
            />
            <span class="muted" data-testid="find-count">{move || {
                let n = matches.with(Vec::len);
                if n == 0 { "no matches".to_string() } else { format!("{} of {n}", current.get().min(n - 1) + 1) }
            }}</span>
            <button class="btn" data-testid="find-prev" on:click=move |_| go(-1)>"Previous"</button>
            <button class="btn" data-testid="find-next" on:click=move |_| go(1)>"Next"</button>
        </div>
    }
}

/// Scrolls the timeline row for `idx` into view and marks it as the current match.
fn reveal(idx: u64) {
    #[cfg(feature = "hydrate")]
    if let Some(document) = web_sys::window().and_then(|w| w.document())
        && let Some(el) = document.get_element_by_id(&format!("m{idx}"))
    {
        thread_local! {
            static CURRENT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
        }
        if let Some(previous) = CURRENT.replace(Some(idx))
            && let Some(old) = document.get_element_by_id(&format!("m{previous}"))
        {
            let _ = old.remove_attribute("data-current");
        }
        let _ = el.set_attribute("data-current", "");
        let options = web_sys::ScrollIntoViewOptions::new();
        options.set_block(web_sys::ScrollLogicalPosition::Center);
        el.scroll_into_view_with_scroll_into_view_options(&options);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = idx;
}

#[component]
fn ChatBox(
    base: String,
    status: RwSignal<Conn>,
    running: Signal<bool>,
    queued: Signal<u64>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let sending = RwSignal::new(false);
    let connected = move || status.get() == Conn::Connected;
    let send = {
        let base = base.clone();
        move || {
            let message = text.get_untracked();
            if message.trim().is_empty() || sending.get_untracked() {
                return;
            }
            if status.get_untracked() != Conn::Connected {
                // Refused, not lost: the text stays in the box.
                error.set(Some("Not connected: your message is kept here; send it once the connection is back.".into()));
                return;
            }
            sending.set(true);
            error.set(None);
            let url = format!("{base}chat");
            leptos::task::spawn_local(async move {
                match post_json::<_, ChatResponse>(&url, &ChatRequest { message }).await {
                    Ok(response) => {
                        text.set(String::new());
                        notice.set(
                            response
                                .queued
                                .then(|| "Queued: it runs when the current turn ends.".to_string()),
                        );
                    }
                    Err(e) => error.set(Some(format!("Not sent: {e}"))),
                }
                sending.set(false);
            });
        }
    };
    let send_click = send.clone();
    let stop = move |_| {
        let url = format!("{base}cancel");
        leptos::task::spawn_local(async move {
            let body = CancelRequest {
                reason: Some("stopped by the user".into()),
                tool_call_id: None,
            };
            if let Err(e) = post_json::<_, serde_json::Value>(&url, &body).await {
                error.set(Some(e));
            }
        });
    };
    view! {
        <form class="chatbox" on:submit=move |ev| ev.prevent_default() data-testid="chatbox">
            <textarea
                rows="2"
                placeholder=move || if connected() { "Command to run — Enter sends, Shift+Enter for a new line" } else { "Disconnected — waiting for the connection…" }
                aria-label="Chat message"
                data-testid="chat-input"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        send();
                    }
                }
            ></textarea>
            <div class="chat-actions">
                <button class="btn primary" type="button" data-testid="send" on:click=move |_| send_click()
                    disabled=move || !connected() || sending.get()>"Send"</button>
                <Show when=move || running.get()>
                    <button class="btn danger" type="button" data-testid="stop" on:click=stop.clone()>"Stop"</button>
                </Show>
            </div>
            <div class="chat-status" aria-live="polite">
                {move || (!connected()).then(|| view! { <span class="warn" data-testid="chat-offline">"Offline: sending is paused until the connection is back."</span> })}
                {move || { queued.get() > 0 }.then(|| view! { <span class="muted" data-testid="queued">{queued.get()} " queued"</span> })}
                {move || notice.get().map(|n| view! { <span class="muted">{n}</span> })}
                {move || error.get().map(|e| view! { <span class="error-text" role="alert" data-testid="chat-error">{e}</span> })}
            </div>
        </form>
    }
}

#[derive(serde::Deserialize)]
struct Prompt {
    prompt: String,
}

#[derive(serde::Deserialize)]
struct CommitDescription {
    revision: String,
    description: String,
}

#[component]
fn RestartDialog(base: String, open: RwSignal<bool>) -> impl IntoView {
    let revision = RwSignal::new(String::new());
    let prompt = RwSignal::new(String::new());
    let description = RwSignal::new(None::<Result<String, String>>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    {
        let url = format!("{base}suggest-reprompt");
        leptos::task::spawn_local(async move {
            if let Ok(p) = get_json::<Prompt>(&url).await {
                prompt.set(p.prompt);
            }
        });
    }
    let describe = {
        let base = base.clone();
        move || {
            let rev = revision.get_untracked();
            if rev.trim().is_empty() {
                description.set(None);
                return;
            }
            let url = format!(
                "{base}commit-description?revision={}",
                urlencode(rev.trim())
            );
            leptos::task::spawn_local(async move {
                let result = get_json::<CommitDescription>(&url).await;
                description.set(Some(result.map(|d| {
                    format!(
                        "{}\n{}",
                        &d.revision[..d.revision.len().min(12)],
                        d.description
                    )
                })));
            });
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let url = format!("{base}restart");
        let body = RestartRequest {
            revision: Some(revision.get_untracked()).filter(|r| !r.trim().is_empty()),
            initial_prompt: Some(prompt.get_untracked()).filter(|p| !p.trim().is_empty()),
        };
        leptos::task::spawn_local(async move {
            match post_json::<_, serde_json::Value>(&url, &body).await {
                Ok(_) => open.set(false),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <div class="overlay" on:click=move |_| open.set(false)>
            <form class="dialog" role="dialog" aria-modal="true" aria-labelledby="restart-title" data-testid="restart-dialog"
                on:click=|ev| ev.stop_propagation() on:submit=submit
                on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Escape" { open.set(false) }>
                <h2 id="restart-title">"Restart conversation"</h2>
                <p class="muted">"Stops everything that runs, starts a fresh context after a restart marker, and keeps the whole log."</p>
                <label>
                    "Revision (optional, needs a clean git working tree)"
                    <input type="text" data-testid="restart-revision" placeholder="e.g. HEAD~1 or a commit hash"
                        prop:value=move || revision.get()
                        on:input=move |ev| revision.set(event_target_value(&ev))
                        on:change=move |_| describe()/>
                </label>
                {move || description.get().map(|d| match d {
                    Ok(text) => Either::Left(view! { <pre class="commit" data-testid="commit-description">{text}</pre> }),
                    Err(e) => Either::Right(view! { <p class="error-text" data-testid="commit-description">{e}</p> }),
                })}
                <label>
                    "Initial prompt"
                    <textarea rows="3" data-testid="restart-prompt" prop:value=move || prompt.get()
                        on:input=move |ev| prompt.set(event_target_value(&ev))></textarea>
                </label>
                {move || error.get().map(|e| view! { <p class="error-text" role="alert" data-testid="restart-error">{e}</p> })}
                <div class="dialog-actions">
                    <button class="btn" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                    <button class="btn primary" type="submit" data-testid="restart-submit" disabled=move || busy.get()>"Restart"</button>
                </div>
            </form>
        </div>
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
