//! The page's end of `public/stream-worker.js`, which holds an `EventSource` off the
//! main thread and forwards its events in bounded batches (see that file for why).
//! This only carries messages; `stream` keeps every decision.

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Event, MessageEvent, Worker};

/// Where the worker script is served from (copied there from `public/`).
pub const SCRIPT: &str = "/stream-worker.js";

/// What the worker reports about the source it holds.
pub enum Report {
    Open,
    Error,
    /// Events in arrival order: name and data.
    Batch(Vec<(String, String)>),
    /// The worker itself broke (its script did not load, or it threw): nothing more
    /// will come from it.
    Failed,
}

pub struct WorkerLink {
    worker: Worker,
    /// The current open's number; reports about earlier ones are stale.
    generation: Rc<Cell<u32>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl WorkerLink {
    /// Starts the worker; `None` where the browser has no workers.
    pub fn start(report: impl Fn(Report) + 'static) -> Option<Self> {
        let worker = Worker::new(SCRIPT).ok()?;
        let report = Rc::new(report);
        let generation = Rc::new(Cell::new(0u32));
        let current = generation.clone();
        let on_report = report.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            let field = |name: &str| js_sys::Reflect::get(&data, &JsValue::from_str(name)).ok();
            let Some(generation) = field("gen").and_then(|g| g.as_f64()) else {
                return;
            };
            if generation as u32 != current.get() {
                return;
            }
            match field("kind").and_then(|k| k.as_string()).as_deref() {
                Some("open") => on_report(Report::Open),
                Some("error") => on_report(Report::Error),
                Some("batch") => {
                    let events = field("events")
                        .map(|events| js_sys::Array::from(&events))
                        .unwrap_or_default();
                    let batch = events
                        .iter()
                        .map(|e| {
                            let e = js_sys::Array::from(&e);
                            (
                                e.get(0).as_string().unwrap_or_default(),
                                e.get(1).as_string().unwrap_or_default(),
                            )
                        })
                        .collect();
                    on_report(Report::Batch(batch));
                }
                _ => {}
            }
        });
        let on_error = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
            // Handled here: the page falls back to its own EventSource.
            event.prevent_default();
            report(Report::Failed);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Some(WorkerLink {
            worker,
            generation,
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// Opens `url` in the worker, replacing whatever source it held.
    pub fn open(&self, url: &str, events: &[&str]) {
        let generation = self.generation.get().wrapping_add(1);
        self.generation.set(generation);
        let names = events
            .iter()
            .map(|name| JsValue::from_str(name))
            .collect::<js_sys::Array>();
        let message = js_sys::Object::new();
        for (key, value) in [
            ("cmd", JsValue::from_str("open")),
            ("gen", JsValue::from(generation)),
            ("url", JsValue::from_str(url)),
            ("events", names.into()),
        ] {
            let _ = js_sys::Reflect::set(&message, &JsValue::from_str(key), &value);
        }
        let _ = self.worker.post_message(&message);
    }

    /// Closes the worker's source; anything it already sent is ignored from now on.
    pub fn close_source(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let message = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&message, &"cmd".into(), &"close".into());
        let _ = self.worker.post_message(&message);
    }

    /// Ends the worker and its source for good.
    pub fn terminate(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }
}
