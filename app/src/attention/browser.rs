//! The browser's side of attention: storage of what was seen, page visibility,
//! notifications and the favicon. Everything is a no-op on the server.

use leptos::prelude::*;

use super::rules::{Alert, Seen};
use crate::prefs;
use crate::protocol::ConversationSummary;

/// What was seen, from storage; the first visit starts the clock.
pub fn load_seen() -> Seen {
    let at = prefs::get(prefs::SEEN)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let since_ms = match prefs::get(prefs::SINCE).and_then(|s| s.parse().ok()) {
        Some(ms) => ms,
        None => {
            let now = crate::client::now_ms();
            prefs::set(prefs::SINCE, &now.to_string());
            now
        }
    };
    Seen {
        at,
        since_ms,
        loaded: true,
    }
}

pub fn save_seen(seen: &Seen) {
    if let Ok(json) = serde_json::to_string(&seen.at) {
        prefs::set(prefs::SEEN, &json);
    }
}

/// Keeps `visible` in step with `document.visibilityState` until the scope ends.
pub fn track_visibility(visible: RwSignal<bool>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;

        let read = move || {
            let shown = web_sys::window()
                .and_then(|w| w.document())
                .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible);
            visible.set(shown);
        };
        read();
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let listener = Closure::<dyn FnMut()>::new(read);
        let _ = document.add_event_listener_with_callback(
            "visibilitychange",
            listener.as_ref().unchecked_ref(),
        );
        let held = send_wrapper::SendWrapper::new((document, listener));
        on_cleanup(move || {
            let (document, listener) = &*held;
            let _ = document.remove_event_listener_with_callback(
                "visibilitychange",
                listener.as_ref().unchecked_ref(),
            );
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = visible;
}

/// The browser's answer so far: `granted`, `denied`, `default`, or `unsupported`.
pub fn permission() -> &'static str {
    #[cfg(feature = "hydrate")]
    {
        if !supported() {
            return "unsupported";
        }
        match web_sys::Notification::permission() {
            web_sys::NotificationPermission::Granted => "granted",
            web_sys::NotificationPermission::Denied => "denied",
            _ => "default",
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        "unsupported"
    }
}

/// Asks the browser (only ever after a click on the bell); resolves to its answer.
pub async fn request_permission() -> &'static str {
    #[cfg(feature = "hydrate")]
    {
        if !supported() {
            return "unsupported";
        }
        if let Ok(promise) = web_sys::Notification::request_permission() {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        }
        permission()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        "unsupported"
    }
}

#[cfg(feature = "hydrate")]
fn supported() -> bool {
    web_sys::window().is_some_and(|w| {
        js_sys::Reflect::has(&w, &wasm_bindgen::JsValue::from_str("Notification")).unwrap_or(false)
    })
}

/// One notification, tagged with the conversation so the next one replaces it.
/// A click brings the window forward and opens the conversation.
pub fn notify(s: &ConversationSummary, alert: Alert, open: impl Fn() + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;

        if permission() != "granted" {
            return;
        }
        let options = web_sys::NotificationOptions::new();
        options.set_body(alert.text());
        options.set_tag(&s.id);
        options.set_icon("/icon-192.png");
        let title = if s.title.is_empty() {
            "Tether"
        } else {
            s.title.as_str()
        };
        let Ok(notification) = web_sys::Notification::new_with_options(title, &options) else {
            return;
        };
        let shown = notification.clone();
        // Freed once clicked; one never clicked keeps its small closure until the
        // page goes, like the notification itself.
        let on_click = Closure::once_into_js(move || {
            if let Some(window) = web_sys::window() {
                let _ = window.focus();
            }
            shown.close();
            open();
        });
        notification.set_onclick(Some(on_click.unchecked_ref()));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (s, alert, open);
}

/// The favicon: the plain icon, or the icon with a red badge and the count.
pub fn set_badge(count: usize) {
    #[cfg(feature = "hydrate")]
    {
        let Some(link) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector("link[rel=icon]").ok().flatten())
        else {
            return;
        };
        let href = if count == 0 {
            "/favicon.svg".to_string()
        } else {
            let svg = badged_icon(count);
            format!(
                "data:image/svg+xml,{}",
                String::from(js_sys::encode_uri_component(&svg))
            )
        };
        let _ = link.set_attribute("href", &href);
        let _ = link.set_attribute("data-count", &count.to_string());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = count;
}

/// `public/favicon.svg` with a badge in its corner.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn badged_icon(count: usize) -> String {
    let label = if count > 9 {
        "9+".to_string()
    } else {
        count.to_string()
    };
    let icon = include_str!("../../../public/favicon.svg").trim();
    let badge = format!(
        r##"<circle cx="23" cy="9" r="9" fill="#d93025"/><text x="23" y="13" font-size="12" font-family="sans-serif" font-weight="700" fill="#fff" text-anchor="middle">{label}</text></svg>"##
    );
    icon.strip_suffix("</svg>")
        .map(|body| format!("{body}{badge}"))
        .unwrap_or_else(|| icon.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_badge_goes_inside_the_icon() {
        let svg = super::badged_icon(3);
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains(">3</text>"));
        assert!(super::badged_icon(12).contains(">9+</text>"));
    }
}
