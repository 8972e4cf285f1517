//! Tether's user interface and the protocol types shared by the server and the browser.
//!
//! Everything here compiles twice: natively with the `ssr` feature (the server renders
//! pages) and to WebAssembly with the `hydrate` feature (the browser takes them over).

#![recursion_limit = "256"]

pub mod ansi;
pub mod attention;
pub mod backoff;
pub mod client;
pub mod components;
pub mod data;
pub mod line_diff;
pub mod markdown;
pub mod pages;
pub mod prefs;
pub mod progress;
pub mod protocol;
pub mod review;
pub mod sync_view;
pub mod timeline;
pub mod usage;
pub mod watchdog;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::data::ClientSettings;
use crate::sync_view::SyncHydrate;

/// The HTML document around every page; only the server renders it.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <meta name="tether-settings" content=settings_json()/>
                <meta name="tether-access" content=access_json()/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="manifest" href="/manifest.webmanifest"/>
                <link rel="apple-touch-icon" href="/apple-touch-icon.png"/>
                <meta name="theme-color" content="#2f5fd0"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The root component: routes URLs to pages.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let a = attention::provide();
    // The count of conversations that need the reader leads the tab's title.
    let title = move || attention::title_text(a.count(), &a.page_title.get());
    view! {
        <Stylesheet id="tether" href="/pkg/tether.css"/>
        <Title text=title/>
        <Router>
            <attention::AttentionRoot/>
            <main>
                <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                    <Route path=StaticSegment("") view=|| SyncHydrate(view! { <pages::list::ListPage/> })/>
                    <Route path=(StaticSegment("c"), ParamSegment("id")) view=|| SyncHydrate(view! { <pages::conversation::ConversationPage/> })/>
                </Routes>
            </main>
        </Router>
    }
}

fn settings_json() -> String {
    #[cfg(feature = "ssr")]
    let settings = use_context::<data::ServerData>()
        .map(|d| d.0.settings())
        .unwrap_or_default();
    #[cfg(not(feature = "ssr"))]
    let settings = ClientSettings::default();
    serde_json::to_string(&settings).unwrap_or_default()
}

/// The server's client settings: from its context while rendering, from the page's
/// `tether-settings` meta tag in the browser.
pub fn settings() -> ClientSettings {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| {
                d.query_selector("meta[name=tether-settings]")
                    .ok()
                    .flatten()
            })
            .and_then(|el| el.dyn_into::<web_sys::HtmlMetaElement>().ok())
            .and_then(|meta| serde_json::from_str(&meta.content()).ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        serde_json::from_str(&settings_json()).unwrap_or_default()
    }
}

fn access_json() -> String {
    #[cfg(feature = "ssr")]
    let access = use_context::<protocol::Access>().unwrap_or_default();
    #[cfg(not(feature = "ssr"))]
    let access = protocol::Access::default();
    serde_json::to_string(&access).unwrap_or_default()
}

/// What this visitor may do (a share link makes the page read-only): from the
/// server's context while rendering, from the page's `tether-access` meta tag in the
/// browser. The server enforces it either way; the page only hides what would fail.
pub fn access() -> protocol::Access {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector("meta[name=tether-access]").ok().flatten())
            .and_then(|el| el.dyn_into::<web_sys::HtmlMetaElement>().ok())
            .and_then(|meta| serde_json::from_str(&meta.content()).ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        serde_json::from_str(&access_json()).unwrap_or_default()
    }
}

/// Keeps `now` (epoch ms) current, twice a second, for clocks and countdowns.
/// Browser only; call it inside an effect so the timer ends with it.
pub fn tick(now: RwSignal<f64>) {
    #[cfg(feature = "hydrate")]
    {
        now.set(client::now_ms());
        if let Ok(handle) = set_interval_with_handle(
            move || now.set(client::now_ms()),
            std::time::Duration::from_millis(500),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = now;
}
