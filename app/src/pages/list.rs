//! `/`: every conversation as an inbox, live over the app's one `/api/events`
//! stream, and a form to start one.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::attention::use_attention;
use crate::client::http::{get_json, post_json};
use crate::components::indicator::ConnectionIndicator;
use crate::components::notify_toggle::NotifyToggle;
use crate::data::load_list;
use crate::pages::inbox::Inbox;
use crate::protocol::{AgentInfo, ConversationSummary, CreateConversation};

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

#[component]
fn ConversationList(initial: Vec<ConversationSummary>) -> impl IntoView {
    let a = use_attention();
    a.seed(initial);
    view! {
        <div class="page list-page">
            <header class="topbar">
                <h1 class="brand">"Tether"</h1>
                <NotifyToggle/>
                <ConnectionIndicator status=a.status now=a.now reconnects=a.reconnects/>
            </header>
            <NewConversation/>
            <Inbox/>
        </div>
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
