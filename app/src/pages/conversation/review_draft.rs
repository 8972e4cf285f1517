//! Writing a review: the comment box for the selected lines, and the draft of
//! comments that "Send review" posts to the conversation as one chat message.

use leptos::prelude::*;

use crate::client::http::post_json;
use crate::protocol::{ChatRequest, ChatResponse, ReviewComment, review_message};
use crate::review::Span;

/// The box for a comment on the selected lines; adding it puts it in the draft.
#[component]
pub(super) fn CommentBox(
    selection: RwSignal<Option<Span>>,
    draft: RwSignal<Vec<ReviewComment>>,
) -> impl IntoView {
    // Kept across selections: a Shift+click that widens the range keeps the words.
    let text = RwSignal::new(String::new());
    let input: NodeRef<leptos::html::Textarea> = NodeRef::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    let add = move || {
        let words = text.get_untracked();
        let Some(span) = selection.get_untracked() else {
            return;
        };
        if words.trim().is_empty() {
            return;
        }
        draft.update(|d| {
            d.push(ReviewComment {
                path: span.path,
                line: span.line,
                end_line: span.end_line,
                text: words.trim().to_string(),
            })
        });
        text.set(String::new());
        selection.set(None);
    };
    move || {
        selection.get().map(|span| {
            view! {
                <div class="review-compose" data-testid="comment-box">
                    <label class="compose-label">
                        <span>"Comment on "<code data-testid="comment-place">{span.place()}</code></span>
                        <textarea rows="3" node_ref=input data-testid="comment-input"
                            placeholder="What should change here? (Ctrl+Enter adds it)"
                            prop:value=move || text.get()
                            on:input=move |ev| text.set(event_target_value(&ev))
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                                    ev.prevent_default();
                                    add();
                                }
                            }></textarea>
                    </label>
                    <div class="compose-actions">
                        <span class="muted hint">"Shift+click another line for a range."</span>
                        <button type="button" class="btn" data-testid="comment-cancel"
                            on:click=move |_| selection.set(None)>"Cancel"</button>
                        <button type="button" class="btn primary" data-testid="comment-add"
                            disabled=move || text.with(|t| t.trim().is_empty())
                            on:click=move |_| add()>"Add to review"</button>
                    </div>
                </div>
            }
        })
    }
}

/// The comments so far, each removable, and "Send review".
#[component]
pub(super) fn DraftView(base: String, draft: RwSignal<Vec<ReviewComment>>) -> impl IntoView {
    let sending = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // Set once a review went out: whether it waits for the running turn to end.
    let sent = RwSignal::new(None::<bool>);
    let send = move |_| {
        let comments = draft.get_untracked();
        if comments.is_empty() || sending.get_untracked() {
            return;
        }
        sending.set(true);
        error.set(None);
        sent.set(None);
        let url = format!("{base}chat");
        let message = review_message(&comments);
        leptos::task::spawn_local(async move {
            match post_json::<_, ChatResponse>(&url, &ChatRequest { message }).await {
                Ok(response) => {
                    // Only what went out: a comment added while sending stays.
                    draft.update(|d| d.retain(|c| !comments.contains(c)));
                    sent.set(Some(response.queued));
                }
                // The draft stays, to send again.
                Err(e) => error.set(Some(format!("Not sent: {e}"))),
            }
            sending.set(false);
        });
    };
    let count = move || draft.with(Vec::len);
    view! {
        <section class="review-draft" data-testid="review-draft" aria-label="Review draft">
            <div class="draft-head">
                <strong>"Review"</strong>
                <span class="pill" data-testid="draft-count">
                    {move || format!("{} comment{}", count(), if count() == 1 { "" } else { "s" })}
                </span>
                <button type="button" class="btn primary" data-testid="send-review"
                    disabled=move || count() == 0 || sending.get() on:click=send>
                    {move || if sending.get() { "Sending…" } else { "Send review" }}
                </button>
            </div>
            <ul class="draft-list">
                {move || draft.get().into_iter().enumerate().map(|(i, c)| {
                    let place = crate::review::place(&c.path, c.line, c.end_line);
                    view! {
                        <li class="draft-comment" data-testid="draft-comment">
                            <code>{place}</code>
                            <span class="draft-text">{c.text}</span>
                            <button type="button" class="btn small draft-remove" data-testid="remove-comment"
                                aria-label="Remove this comment"
                                on:click=move |_| draft.update(|d| { if i < d.len() { d.remove(i); } })>"✕"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {move || (count() == 0 && sent.get().is_none()).then(|| view! {
                <p class="muted hint">"Click a line of the diff to comment on it. Comments collect here and go to the conversation as one message."</p>
            })}
            {move || sent.get().map(|queued| view! {
                <p class="ok-text" role="status" data-testid="review-sent">
                    {if queued {
                        "Review queued: it goes to the conversation when the current turn ends."
                    } else {
                        "Review sent to the conversation."
                    }}
                </p>
            })}
            {move || error.get().map(|e| view! { <p class="error-text" role="alert" data-testid="review-send-error">{e}</p> })}
        </section>
    }
}
