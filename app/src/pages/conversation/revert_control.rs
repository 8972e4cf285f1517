//! "Revert this turn": a confirmation first, then the server puts the turn's files
//! back; its refusal (a file changed again since, a turn running) is shown as it
//! words it.

use leptos::prelude::*;

use crate::client::http::post_json;
use crate::protocol::{RevertRequest, RevertResponse};

#[component]
pub(super) fn RevertControl(
    base: String,
    /// The index of the turn's `changes` message.
    turn: u64,
    files: usize,
    reverted_by: RwSignal<Option<u64>>,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // The revert's own `changes` index and how many files it put back.
    let done = RwSignal::new(None::<(u64, usize)>);
    let revert = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let url = format!("{base}revert");
        leptos::task::spawn_local(async move {
            match post_json::<_, RevertResponse>(&url, &RevertRequest { turn }).await {
                Ok(r) => done.set(Some((r.idx, r.changes.files.len()))),
                Err(e) => error.set(Some(e)),
            }
            confirming.set(false);
            busy.set(false);
        });
    };
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    view! {
        <div class="review-revert" data-testid="revert">
            {move || match (done.get(), confirming.get()) {
                (Some((idx, n)), _) => view! {
                    <p class="ok-text" role="status" data-testid="revert-done">
                        {format!("Reverted: {n} file{} put back as before #{turn} (#{idx} in the conversation).", plural(n))}
                    </p>
                }.into_any(),
                (None, false) => view! {
                    <button type="button" class="btn danger" data-testid="revert-turn"
                        on:click=move |_| { error.set(None); confirming.set(true) }>"Revert this turn"</button>
                    {move || reverted_by.get().map(|by| view! {
                        <span class="muted" data-testid="already-reverted">{format!("Already reverted in #{by}.")}</span>
                    })}
                }.into_any(),
                (None, true) => view! {
                    <div class="revert-confirm" role="group" aria-label="Confirm the revert" data-testid="revert-confirm">
                        <p>{format!(
                            "Put the {files} file{} of #{turn} back as they were before it? Files edited again since then make the revert refuse.",
                            plural(files)
                        )}</p>
                        <button type="button" class="btn danger" data-testid="revert-confirm-yes"
                            disabled=move || busy.get() on:click=revert.clone()>
                            {move || if busy.get() { "Reverting…" } else { "Revert" }}
                        </button>
                        <button type="button" class="btn" data-testid="revert-cancel"
                            on:click=move |_| confirming.set(false)>"Keep the changes"</button>
                    </div>
                }.into_any(),
            }}
            {move || error.get().map(|e| view! {
                <p class="error-text revert-error" role="alert" data-testid="revert-error">{
                    // The server's refusals already say so; other failures do not.
                    if e.starts_with("cannot revert") { e } else { format!("Not reverted: {e}") }
                }</p>
            })}
        </div>
    }
}
