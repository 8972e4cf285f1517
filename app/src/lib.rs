//! Tether's user interface and the protocol types shared by the server and the browser.
//!
//! Everything here compiles twice: natively with the `ssr` feature (the server renders
//! pages) and to WebAssembly with the `hydrate` feature (the browser takes them over).

pub mod ansi;
pub mod backoff;
pub mod fold;
pub mod pages;
pub mod progress;
pub mod protocol;
pub mod watchdog;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    StaticSegment,
    components::{Route, Router, Routes},
};

/// The HTML document around every page; only the server renders it.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
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
    view! {
        <Stylesheet id="tether" href="/pkg/tether.css"/>
        <Title text="Tether"/>
        <Router>
            <main>
                <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                    <Route path=StaticSegment("") view=pages::pipe_check::PipeCheck/>
                </Routes>
            </main>
        </Router>
    }
}
