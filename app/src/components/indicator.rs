//! The connection indicator: never lies about the stream.

use leptos::prelude::*;

use crate::client::stream::Conn;

pub fn describe(conn: Conn, now_ms: f64) -> (&'static str, String) {
    match conn {
        Conn::Connecting => ("connecting", "Connecting…".into()),
        Conn::Connected => ("connected", "Connected".into()),
        Conn::Reconnecting { at_ms, attempt } => {
            let secs = ((at_ms - now_ms) / 1000.0).ceil().max(0.0);
            (
                "reconnecting",
                format!("Reconnecting in {secs} s (attempt {attempt})"),
            )
        }
        Conn::Offline => ("offline", "Offline".into()),
        Conn::Gone => ("gone", "This conversation no longer exists".into()),
    }
}

#[component]
pub fn ConnectionIndicator(
    status: RwSignal<Conn>,
    now: RwSignal<f64>,
    reconnects: RwSignal<u32>,
) -> impl IntoView {
    let described = move || describe(status.get(), now.get());
    view! {
        <span
            class=move || format!("conn conn-{}", described().0)
            data-testid="connection"
            data-state=move || described().0
            data-reconnects=move || reconnects.get().to_string()
            role="status"
            aria-live="polite"
        >
            <span class="dot" aria-hidden="true"></span>
            {move || described().1}
        </span>
    }
}
