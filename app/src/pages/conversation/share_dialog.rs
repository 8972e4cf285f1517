//! The Share dialog: create a read-only link (with an optional expiry), copy it, and
//! list and revoke the conversation's links. See "Share links" in docs/security.md.

use leptos::prelude::*;

use crate::client::http::{delete, get_json, post_json};
use crate::protocol::{CreateShare, ShareCreated, ShareInfo};

/// The expiry choices: label and seconds (`None`: until revoked).
const EXPIRIES: [(&str, Option<u64>); 4] = [
    ("Never", None),
    ("1 hour", Some(3_600)),
    ("1 day", Some(86_400)),
    ("7 days", Some(7 * 86_400)),
];

/// This page's origin, to turn the server's `/s/…` into a link to paste elsewhere.
fn origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// Puts `text` on the clipboard; `false` when the browser does not allow it.
fn copy(text: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        match web_sys::window() {
            Some(window) => {
                // Fire and forget: the promise only says whether the browser agreed.
                let _ = window.navigator().clipboard().write_text(text);
                true
            }
            None => false,
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = text;
        false
    }
}

/// Loads the conversation's links into `shares`.
fn load(url: String, shares: RwSignal<Vec<ShareInfo>>, error: RwSignal<Option<String>>) {
    leptos::task::spawn_local(async move {
        match get_json::<Vec<ShareInfo>>(&url).await {
            Ok(list) => shares.set(list),
            Err(e) => error.set(Some(e)),
        }
    });
}

#[component]
pub(super) fn ShareDialog(base: String, open: RwSignal<bool>) -> impl IntoView {
    let url = format!("{base}shares");
    let expiry = RwSignal::new(0usize);
    let link = RwSignal::new(None::<String>);
    let shares = RwSignal::new(Vec::<ShareInfo>::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let copied = RwSignal::new(false);
    {
        let url = url.clone();
        Effect::new(move |_| load(url.clone(), shares, error));
    }
    let create = {
        let url = url.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            if busy.get_untracked() {
                return;
            }
            busy.set(true);
            error.set(None);
            copied.set(false);
            let body = CreateShare {
                expires_in_secs: EXPIRIES[expiry.get_untracked()].1,
            };
            let url = url.clone();
            leptos::task::spawn_local(async move {
                match post_json::<_, ShareCreated>(&url, &body).await {
                    Ok(created) => {
                        link.set(Some(format!("{}{}", origin(), created.url)));
                        load(url, shares, error);
                    }
                    Err(e) => error.set(Some(format!("Not created: {e}"))),
                }
                busy.set(false);
            });
        }
    };
    let revoke = move |share_id: String| {
        let url = format!("{url}/{share_id}");
        let list = format!("{base}shares");
        leptos::task::spawn_local(async move {
            match delete(&url).await {
                Ok(()) => load(list, shares, error),
                Err(e) => error.set(Some(format!("Not revoked: {e}"))),
            }
        });
    };
    view! {
        <div class="overlay" on:click=move |_| open.set(false)>
            <form class="dialog share-dialog" role="dialog" aria-modal="true" aria-labelledby="share-title" data-testid="share-dialog"
                on:click=|ev| ev.stop_propagation() on:submit=create
                on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Escape" { open.set(false) }>
                <h2 id="share-title">"Share read-only"</h2>
                <p class="muted">"Anyone with the link can watch this conversation live and download it — including any secrets its output shows — but cannot change anything."</p>
                <label>
                    "Expires"
                    <select data-testid="share-expiry" on:change=move |ev| expiry.set(event_target_value(&ev).parse().unwrap_or(0))>
                        {EXPIRIES.iter().enumerate().map(|(i, (label, _))| view! {
                            <option value=i.to_string() selected=move || expiry.get() == i>{*label}</option>
                        }).collect_view()}
                    </select>
                </label>
                {move || link.get().map(|l| {
                    let to_copy = l.clone();
                    view! {
                        <div class="share-link-row">
                            <input type="text" readonly data-testid="share-link" prop:value=l.clone() aria-label="Share link"/>
                            <button class="btn" type="button" data-testid="share-copy"
                                on:click=move |_| copied.set(copy(&to_copy))>
                                {move || if copied.get() { "Copied" } else { "Copy" }}
                            </button>
                        </div>
                    }
                })}
                {move || error.get().map(|e| view! { <p class="error-text" role="alert" data-testid="share-error">{e}</p> })}
                <ul class="share-list">
                    <For each=move || shares.get() key=|s| s.share_id.clone() let:share>
                        <li class="share-row" data-testid="share-row" data-share-id=share.share_id.clone()>
                            <span class="muted">
                                "Created " {share.created_at.clone()} " · "
                                {match (&share.expires_at, share.expired) {
                                    (_, true) => "expired".to_string(),
                                    (Some(at), false) => format!("expires {at}"),
                                    (None, false) => "never expires".to_string(),
                                }}
                            </span>
                            <button class="btn small danger" type="button" data-testid="share-revoke"
                                on:click={
                                    let revoke = revoke.clone();
                                    let id = share.share_id.clone();
                                    move |_| revoke(id.clone())
                                }>"Revoke"</button>
                        </li>
                    </For>
                </ul>
                <div class="dialog-actions">
                    <button class="btn" type="button" on:click=move |_| open.set(false)>"Close"</button>
                    <button class="btn primary" type="submit" data-testid="share-create" disabled=move || busy.get()>"Create link"</button>
                </div>
            </form>
        </div>
    }
}
