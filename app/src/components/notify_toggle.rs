//! The bell: turns this browser's notifications on or off. The browser is asked
//! for permission only here, after a click, never when a page loads.

use leptos::prelude::*;

use crate::attention::browser::{permission, request_permission};
use crate::attention::use_attention;

#[component]
pub fn NotifyToggle() -> impl IntoView {
    let a = use_attention();
    let note = RwSignal::new(None::<&'static str>);
    let toggle = move |_| {
        if a.notify.get_untracked() {
            a.notify.set(false);
            crate::prefs::set_bool(crate::prefs::NOTIFY, false);
            return;
        }
        leptos::task::spawn_local(async move {
            let answer = match permission() {
                "default" => request_permission().await,
                other => other,
            };
            let on = answer == "granted";
            a.notify.set(on);
            crate::prefs::set_bool(crate::prefs::NOTIFY, on);
            note.set(match answer {
                "denied" => Some("The browser blocks notifications for this site."),
                "unsupported" => Some("This browser cannot show notifications."),
                _ => None,
            });
        });
    };
    let label = move || {
        if a.notify.get() {
            "Notifications on: click to turn off"
        } else {
            "Notify me when a conversation needs me"
        }
    };
    view! {
        <button type="button" class="btn bell" data-testid="notify-toggle"
            aria-pressed=move || a.notify.get().to_string()
            aria-label=label title=move || note.get().unwrap_or_else(label)
            on:click=toggle>
            {move || if a.notify.get() { "🔔" } else { "🔕" }}
        </button>
        {move || note.get().map(|n| view! { <span class="muted bell-note" role="status">{n}</span> })}
    }
}
