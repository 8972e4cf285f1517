//! The restart dialog: an optional revision to go back to (with its commit
//! description as a check) and the prompt for the fresh context.

use leptos::either::Either;
use leptos::prelude::*;

use crate::client::http::{get_json, post_json};
use crate::protocol::RestartRequest;

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
pub(super) fn RestartDialog(base: String, open: RwSignal<bool>) -> impl IntoView {
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
