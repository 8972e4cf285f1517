//! "agent silent for N s": shown while a turn runs and the agent has said
//! nothing for a while, so a stuck agent is told apart from a busy one.

use leptos::prelude::*;

use crate::client::parse_time_ms;

/// Silence shorter than this is normal thinking time.
const SHOW_AFTER_SECS: f64 = 10.0;

/// Mount only while the turn runs: its clock ticks while it is mounted.
#[component]
pub(super) fn Silence(
    /// The state's `last_activity` (RFC 3339).
    last_activity: Signal<Option<String>>,
) -> impl IntoView {
    let now = RwSignal::new(0.0);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            now.set(crate::client::now_ms());
            if let Ok(handle) = set_interval_with_handle(
                move || now.set(crate::client::now_ms()),
                std::time::Duration::from_secs(1),
            ) {
                on_cleanup(move || handle.clear());
            }
        }
    });
    let silent_secs = move || {
        let last = last_activity.get().as_deref().and_then(parse_time_ms)?;
        let now = now.get();
        let secs = (now - last) / 1000.0;
        (now > 0.0 && secs >= SHOW_AFTER_SECS).then_some(secs.floor() as u64)
    };
    move || {
        silent_secs().map(|s| {
            view! { <span class="silence" data-testid="silence" role="status">{format!("agent silent for {s} s")}</span> }
        })
    }
}
