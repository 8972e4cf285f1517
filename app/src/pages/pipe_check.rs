//! A page that proves the whole pipe: server-side rendering, hydration, and a live
//! Server-Sent Events stream read through the browser's `EventSource`.

use leptos::prelude::*;

/// Where the page's demonstration stream lives.
pub const PIPE_CHECK_STREAM: &str = "/api/pipe-check";

#[component]
pub fn PipeCheck() -> impl IntoView {
    // Only hydration wires this button up: in the server's HTML it does nothing.
    let clicks = RwSignal::new(0u32);
    let hydrated = RwSignal::new(false);
    let ticks = RwSignal::new(Vec::<String>::new());
    let status = RwSignal::new("connecting");

    Effect::new(move |_| {
        hydrated.set(true);
        #[cfg(feature = "hydrate")]
        listen(ticks, status);
    });

    view! {
        <section class="pipe-check">
            <h1>"Tether"</h1>
            <p class="lede">"Run, watch and steer terminal tasks from your browser."</p>
            <p data-testid="rendered-by">"Rendered by the server; "
                {move || if hydrated.get() { "hydrated in the browser." } else { "not hydrated yet." }}
            </p>
            <button data-testid="counter" on:click=move |_| clicks.update(|n| *n += 1)>
                "Clicked " {move || clicks.get()} " times"
            </button>
            <h2>"Live events"</h2>
            <p data-testid="stream-status">"Stream: " {move || status.get()}</p>
            <ol data-testid="ticks">
                {move || ticks.get().into_iter().map(|t| view! { <li>{t}</li> }).collect_view()}
            </ol>
        </section>
    }
}

#[cfg(feature = "hydrate")]
fn listen(ticks: RwSignal<Vec<String>>, status: RwSignal<&'static str>) {
    use send_wrapper::SendWrapper;
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{EventSource, MessageEvent};

    let Ok(source) = EventSource::new(PIPE_CHECK_STREAM) else {
        status.set("unsupported");
        return;
    };
    let on_tick = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data().as_string().unwrap_or_default();
        ticks.update(|t| t.push(data));
    });
    let on_open = Closure::<dyn FnMut()>::new(move || status.set("open"));
    let on_done = Closure::<dyn FnMut()>::new(move || status.set("closed"));
    let _ = source.add_event_listener_with_callback("tick", on_tick.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_done.as_ref().unchecked_ref()));
    // The closures must live as long as the EventSource; they are dropped with it.
    let held = SendWrapper::new((source, on_tick, on_open, on_done));
    on_cleanup(move || held.0.close());
}
