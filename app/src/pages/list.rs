//! `/`: every conversation, live over one `/api/events` stream, and a form to start one.

use std::rc::Rc;

use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::client::http::{get_json, post_json};
use crate::client::stream::{self, Conn, StreamSpec};
use crate::components::indicator::ConnectionIndicator;
use crate::data::load_list;
use crate::protocol::{AgentInfo, ConversationSummary, CreateConversation, RunStatus, event};

#[component]
pub fn ListPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| load_list());
    view! {
        <Suspense fallback=|| view! { <p class="muted pad">"Loading…"</p> }>
            {move || list.get().map(|result| match result {
                Ok(initial) => Either::Left(view! { <ConversationList initial/> }),
                Err(error) => Either::Right(view! { <p class="error-text pad" role="alert">{error}</p> }),
            })}
        </Suspense>
    }
}

fn sort(list: &mut [ConversationSummary]) {
    list.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then_with(|| a.id.cmp(&b.id))
    });
}

#[component]
fn ConversationList(initial: Vec<ConversationSummary>) -> impl IntoView {
    let conversations = RwSignal::new(initial);
    let status = RwSignal::new(Conn::Connecting);
    let reconnects = RwSignal::new(0u32);
    let now = RwSignal::new(0.0);
    let settings = crate::settings();

    Effect::new(move |_| {
        stream::open_scoped(StreamSpec {
            url: Rc::new(|| "/api/events".to_string()),
            events: &[event::CONVERSATION, event::HEARTBEAT],
            on_event: Rc::new(move |name, data| {
                if name != event::CONVERSATION {
                    return;
                }
                if let Ok(summary) = serde_json::from_str::<ConversationSummary>(&data) {
                    conversations.update(|list| {
                        match list.iter_mut().find(|c| c.id == summary.id) {
                            Some(existing) => *existing = summary,
                            None => list.push(summary),
                        }
                        sort(list);
                    });
                }
            }),
            probe_url: None,
            settings,
            status,
            reconnects,
        });
        crate::tick(now);
    });

    view! {
        <div class="page list-page">
            <header class="topbar">
                <h1 class="brand">"Tether"</h1>
                <ConnectionIndicator status now reconnects/>
            </header>
            <NewConversation/>
            <section aria-labelledby="conversations-heading">
                <h2 id="conversations-heading">"Conversations"</h2>
                <Show
                    when=move || !conversations.with(Vec::is_empty)
                    fallback=|| view! { <p class="muted">"No conversations yet. Start one above."</p> }
                >
                    <ul class="conversations" data-testid="conversation-list">
                        <For
                            each=move || conversations.get()
                            key=|c| (c.id.clone(), c.updated_at.clone(), c.status, c.message_count, c.last_error, c.title.clone(), c.pending_permissions)
                            children=move |c| view! { <ConversationRow summary=c/> }
                        />
                    </ul>
                </Show>
            </section>
        </div>
    }
}

#[component]
fn ConversationRow(summary: ConversationSummary) -> impl IntoView {
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
    view! {
        <li class="conversation" data-testid="conversation-row" data-id=summary.id.clone() data-status=dot>
            <span class=format!("status-dot {dot}") title=label aria-label=label></span>
            <a class="title" href=format!("/c/{}", summary.id)>{title}</a>
            <span class="cwd" title=summary.cwd.clone()>{summary.cwd.clone()}</span>
            <span class="agent">
                <span class="muted" data-testid="row-agent">{summary.agent.clone()}</span>
                {(summary.pending_permissions > 0).then(|| view! {
                    " " <span class="needs-approval" data-testid="row-approvals">
                        {summary.pending_permissions} " awaiting approval"
                    </span>
                })}
            </span>
            <span class="muted count">{summary.message_count} " messages"</span>
            <time class="muted" datetime=summary.updated_at.clone()>{short_time(&summary.updated_at)}</time>
        </li>
    }
}

/// `2026-11-22T01:02:03.456Z` → `2026-11-22 01:02`.
pub fn short_time(rfc3339: &str) -> String {
    rfc3339
        .get(..16)
        .map(|s| s.replace('T', " "))
        .unwrap_or_default()
}

#[component]
fn NewConversation() -> impl IntoView {
    let cwd = RwSignal::new(String::new());
    let title = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let agents = RwSignal::new(Vec::<AgentInfo>::new());
    let agent = RwSignal::new(String::new());
    // Asked for in the browser only: the server renders the form without choices.
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            if let Ok(list) = get_json::<Vec<AgentInfo>>("/api/agents").await {
                if let Some(default) = list.iter().find(|a| a.default) {
                    agent.set(default.name.clone());
                }
                agents.set(list);
            }
        });
    });
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = CreateConversation {
            cwd: Some(cwd.get_untracked()).filter(|c| !c.trim().is_empty()),
            title: Some(title.get_untracked()).filter(|t| !t.trim().is_empty()),
            agent: Some(agent.get_untracked()).filter(|a| !a.is_empty()),
        };
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match post_json::<_, ConversationSummary>("/api/conversations", &body).await {
                Ok(created) => navigate(&format!("/c/{}", created.id), Default::default()),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="new-conversation" on:submit=submit data-testid="new-conversation">
            <h2>"New conversation"</h2>
            <label>
                "Working directory"
                <input type="text" name="cwd" placeholder="default: where Tether was started" data-testid="new-cwd"
                    prop:value=move || cwd.get() on:input=move |ev| cwd.set(event_target_value(&ev))/>
            </label>
            <label>
                "Title"
                <input type="text" name="title" placeholder="optional" data-testid="new-title"
                    prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev))/>
            </label>
            <label>
                "Agent"
                <select name="agent" data-testid="agent-picker" disabled=move || agents.with(Vec::is_empty)
                    prop:value=move || agent.get() on:change=move |ev| agent.set(event_target_value(&ev))>
                    {move || agents.get().into_iter().map(|a| {
                        let label = if a.default { format!("{} (default)", a.name) } else { a.name.clone() };
                        let title = a.problem.clone().unwrap_or_else(|| a.description.clone());
                        view! {
                            <option value=a.name.clone() disabled=!a.available title=title
                                selected=move || agent.get() == a.name>
                                {label}
                            </option>
                        }
                    }).collect_view()}
                </select>
            </label>
            <button class="btn primary" type="submit" data-testid="create" disabled=move || busy.get()>"Start"</button>
            {move || error.get().map(|e| view! { <p class="error-text" role="alert">{e}</p> })}
        </form>
    }
}
