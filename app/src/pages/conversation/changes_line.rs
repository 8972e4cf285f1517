//! The timeline's line at the end of a turn that changed files: how many, how many
//! lines added and removed, and the button that opens the review panel.

use leptos::prelude::*;

use super::review_panel::ReviewTurn;
use crate::protocol::Changes;

#[component]
pub(super) fn ChangesLine(
    idx: u64,
    changes: Changes,
    reverted_by: RwSignal<Option<u64>>,
    /// The turn the review panel shows; this line's button sets it.
    review: RwSignal<Option<ReviewTurn>>,
) -> impl IntoView {
    let lead = crate::review::summary_lead(&changes);
    let revert = changes.revert_of.is_some();
    let (added, removed) = (changes.added, changes.removed);
    let title = changes
        .files
        .iter()
        .map(crate::review::display_path)
        .collect::<Vec<_>>()
        .join("\n");
    let open = move |_| {
        review.set(Some(ReviewTurn {
            idx,
            changes: changes.clone(),
            reverted_by,
        }))
    };
    view! {
        <div class="msg changes" class:revert=revert data-testid="changes-line" data-idx=idx title=title>
            <span class="changes-mark" aria-hidden="true">{if revert { "↶" } else { "±" }}</span>
            <span class="changes-text" data-testid="changes-summary">
                {lead}<span class="add">{format!("+{added}")}</span>" "<span class="del">{format!("−{removed}")}</span>
            </span>
            {move || reverted_by.get().map(|by| view! {
                <span class="changes-reverted muted" data-testid="changes-reverted">{format!("reverted in #{by}")}</span>
            })}
            <button type="button" class="btn small changes-open" data-testid="open-review" on:click=open
                aria-label=format!("Review the changes of #{idx}")>"Review"</button>
        </div>
    }
}
