//! A resilient `EventSource`: reconnects with backoff (1 s × 1.5^attempt, capped at
//! 60 s, ±10 % jitter) from the caller's own cursor, declares a silent stream dead
//! after the watchdog timeout, reconnects at once when the browser comes back online
//! or the tab becomes visible, and stops for good when the resource is gone (404).
//!
//! A stream can have its `EventSource` held by a Web Worker (`client::worker`), which
//! hands the events over in bounded batches instead of one burst per network read;
//! every decision above is still made here. Without workers, or if the worker's
//! script cannot be loaded, the page holds the `EventSource` itself.

use std::rc::Rc;

use leptos::prelude::*;

use crate::watchdog::ClientSettings;

/// What the connection indicator shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Conn {
    Connecting,
    Connected,
    /// Waiting to retry at `at_ms` (epoch ms); `attempt` counts from 1.
    Reconnecting {
        at_ms: f64,
        attempt: u32,
    },
    /// The browser says it is offline; retry when it is back.
    Offline,
    /// The server says this stream's resource no longer exists.
    Gone,
}

/// Receives each event's name and data.
pub type EventHandler = Rc<dyn Fn(&'static str, String)>;

pub struct StreamSpec {
    /// The URL to connect to now (it carries the caller's cursor).
    pub url: Rc<dyn Fn() -> String>,
    /// Named SSE events to listen to.
    pub events: &'static [&'static str],
    /// Called with the event name and its data.
    pub on_event: EventHandler,
    /// After an error, a 404 from this URL means "gone": stop retrying.
    pub probe_url: Option<String>,
    pub settings: ClientSettings,
    pub status: RwSignal<Conn>,
    /// How many times the stream was re-opened.
    pub reconnects: RwSignal<u32>,
    /// Hold the `EventSource` in a worker: for streams that can flood.
    pub worker: bool,
}

/// Keeps the stream alive; `close` ends it (call it from `on_cleanup`).
pub struct StreamHandle {
    #[cfg(feature = "hydrate")]
    inner: Rc<std::cell::RefCell<imp::Inner>>,
}

impl StreamHandle {
    pub fn close(&self) {
        #[cfg(feature = "hydrate")]
        imp::close(&self.inner);
    }
}

/// Opens the stream for as long as the current reactive scope lives (a page, an
/// effect): it is closed in `on_cleanup`, so leaving the page leaks nothing.
pub fn open_scoped(spec: StreamSpec) {
    let handle = send_wrapper::SendWrapper::new(open(spec));
    on_cleanup(move || handle.close());
}

/// Opens the stream (in the browser; on the server this does nothing).
pub fn open(spec: StreamSpec) -> StreamHandle {
    #[cfg(feature = "hydrate")]
    {
        StreamHandle {
            inner: imp::open(spec),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = spec;
        StreamHandle {}
    }
}

// `web_sys::EventSource`, not gloo-net's wrapper: that one has no `open` event (the
// backoff resets and "connected" shows on it), and it hands each named event to its
// own stream, so messages and state updates could be applied out of arrival order.
#[cfg(feature = "hydrate")]
mod imp {
    use std::cell::RefCell;
    use std::rc::Rc;

    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{EventSource, MessageEvent};

    use super::{Conn, StreamSpec};
    use crate::backoff::Backoff;
    use crate::client::now_ms;
    use crate::client::worker::{Report, WorkerLink};
    use crate::watchdog::Watchdog;

    type Shared = Rc<RefCell<Inner>>;

    pub struct Inner {
        spec: StreamSpec,
        source: Option<EventSource>,
        /// Holds the source instead of `source` when the stream runs through a worker.
        worker: Option<WorkerLink>,
        /// Listeners of the current EventSource; dropped with it.
        source_closures: Vec<Closure<dyn FnMut(MessageEvent)>>,
        /// Window/document listeners and the watchdog interval, for the stream's life.
        global_closures: Vec<Closure<dyn FnMut()>>,
        watchdog_interval: Option<i32>,
        backoff: Backoff,
        watchdog: Watchdog,
        retry_timer: Option<i32>,
        retry_closure: Option<Closure<dyn FnMut()>>,
        closed: bool,
    }

    pub fn open(spec: StreamSpec) -> Shared {
        let watchdog = Watchdog::new(spec.settings.watchdog_ms, now_ms());
        let check_ms = spec.settings.watchdog_check_ms;
        let shared = Rc::new(RefCell::new(Inner {
            spec,
            source: None,
            worker: None,
            source_closures: Vec::new(),
            global_closures: Vec::new(),
            watchdog_interval: None,
            backoff: Backoff::new(),
            watchdog,
            retry_timer: None,
            retry_closure: None,
            closed: false,
        }));
        if shared.borrow().spec.worker {
            let weak = Rc::downgrade(&shared);
            let link = WorkerLink::start(move |report| {
                if let Some(shared) = weak.upgrade() {
                    on_worker_report(&shared, report);
                }
            });
            shared.borrow_mut().worker = link;
        }
        install_globals(&shared, check_ms);
        connect(&shared);
        shared
    }

    fn on_worker_report(shared: &Shared, report: Report) {
        match report {
            Report::Open => opened(shared),
            Report::Error => schedule_reconnect(shared),
            Report::Batch(events) => {
                let (handler, names) = {
                    let mut inner = shared.borrow_mut();
                    if inner.closed {
                        return;
                    }
                    inner.watchdog.touch(now_ms());
                    (inner.spec.on_event.clone(), inner.spec.events)
                };
                for (name, data) in events {
                    if let Some(&name) = names.iter().find(|n| **n == name) {
                        handler(name, data);
                    }
                }
            }
            Report::Failed => {
                let link = shared.borrow_mut().worker.take();
                if let Some(link) = link {
                    link.terminate();
                    leptos::logging::warn!("stream worker failed; streaming on the page");
                    let gone = shared.borrow().spec.status.get_untracked() == Conn::Gone;
                    if !gone {
                        connect(shared);
                    }
                }
            }
        }
    }

    fn opened(shared: &Shared) {
        let mut inner = shared.borrow_mut();
        inner.backoff.reset();
        inner.watchdog.touch(now_ms());
        inner.spec.status.set(Conn::Connected);
    }

    fn install_globals(shared: &Shared, check_ms: f64) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let weak = Rc::downgrade(shared);
        let check = Closure::<dyn FnMut()>::new(move || {
            let Some(shared) = weak.upgrade() else { return };
            let stale = {
                let inner = shared.borrow();
                !inner.closed
                    && inner.spec.status.get_untracked() == Conn::Connected
                    && inner.watchdog.is_stale(now_ms())
            };
            if stale {
                leptos::logging::warn!("stream silent for too long; reconnecting");
                schedule_reconnect(&shared);
            }
        });
        let id = window
            .set_interval_with_callback_and_timeout_and_arguments_0(
                check.as_ref().unchecked_ref(),
                check_ms as i32,
            )
            .ok();
        let weak = Rc::downgrade(shared);
        let wake = Closure::<dyn FnMut()>::new(move || {
            let Some(shared) = weak.upgrade() else { return };
            let visible = web_sys::window()
                .and_then(|w| w.document())
                .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible);
            let waiting = matches!(
                shared.borrow().spec.status.get_untracked(),
                Conn::Reconnecting { .. } | Conn::Offline
            );
            if visible && waiting && !shared.borrow().closed {
                connect(&shared);
            }
        });
        let _ = window.add_event_listener_with_callback("online", wake.as_ref().unchecked_ref());
        if let Some(document) = window.document() {
            let _ = document.add_event_listener_with_callback(
                "visibilitychange",
                wake.as_ref().unchecked_ref(),
            );
        }
        let weak = Rc::downgrade(shared);
        let offline = Closure::<dyn FnMut()>::new(move || {
            if let Some(shared) = weak.upgrade() {
                let inner = shared.borrow();
                if !inner.closed && inner.spec.status.get_untracked() != Conn::Connected {
                    inner.spec.status.set(Conn::Offline);
                }
            }
        });
        let _ =
            window.add_event_listener_with_callback("offline", offline.as_ref().unchecked_ref());
        let mut inner = shared.borrow_mut();
        inner.watchdog_interval = id;
        inner.global_closures = vec![check, wake, offline];
    }

    fn drop_source(inner: &mut Inner) {
        if let Some(link) = &inner.worker {
            link.close_source();
        }
        if let Some(source) = inner.source.take() {
            source.set_onopen(None);
            source.set_onerror(None);
            source.close();
        }
        inner.source_closures.clear();
    }

    fn clear_retry(inner: &mut Inner) {
        if let (Some(id), Some(window)) = (inner.retry_timer.take(), web_sys::window()) {
            window.clear_timeout_with_handle(id);
        }
        inner.retry_closure = None;
    }

    fn connect(shared: &Shared) {
        let mut inner = shared.borrow_mut();
        if inner.closed {
            return;
        }
        clear_retry(&mut inner);
        drop_source(&mut inner);
        let url = (inner.spec.url)();
        if let Some(link) = &inner.worker {
            link.open(&url, inner.spec.events);
            if inner.spec.status.get_untracked() != Conn::Connected {
                inner.spec.status.set(Conn::Connecting);
            }
            inner.watchdog.touch(now_ms());
            return;
        }
        let Ok(source) = EventSource::new(&url) else {
            drop(inner);
            schedule_reconnect(shared);
            return;
        };
        if inner.spec.status.get_untracked() != Conn::Connected {
            inner.spec.status.set(Conn::Connecting);
        }
        inner.watchdog.touch(now_ms());
        for &name in inner.spec.events {
            let weak = Rc::downgrade(shared);
            let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let Some(shared) = weak.upgrade() else { return };
                let handler = {
                    let mut inner = shared.borrow_mut();
                    if inner.closed {
                        return;
                    }
                    inner.watchdog.touch(now_ms());
                    inner.spec.on_event.clone()
                };
                // Not holding the borrow: the handler may update signals freely.
                handler(name, event.data().as_string().unwrap_or_default());
            });
            let _ =
                source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            inner.source_closures.push(listener);
        }
        let weak = Rc::downgrade(shared);
        let on_open = Closure::<dyn FnMut(MessageEvent)>::new(move |_| {
            if let Some(shared) = weak.upgrade() {
                opened(&shared);
            }
        });
        let weak = Rc::downgrade(shared);
        let on_error = Closure::<dyn FnMut(MessageEvent)>::new(move |_| {
            if let Some(shared) = weak.upgrade() {
                schedule_reconnect(&shared);
            }
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        inner.source_closures.push(on_open);
        inner.source_closures.push(on_error);
        inner.source = Some(source);
    }

    fn schedule_reconnect(shared: &Shared) {
        let mut inner = shared.borrow_mut();
        if inner.closed {
            return;
        }
        // Our own cursor decides where to resume, not the browser's automatic retry.
        drop_source(&mut inner);
        clear_retry(&mut inner);
        inner.spec.reconnects.update(|n| *n += 1);
        let online = web_sys::window().is_none_or(|w| w.navigator().on_line());
        if !online {
            inner.spec.status.set(Conn::Offline);
            return;
        }
        let delay = inner.backoff.next_delay_ms(js_sys::Math::random());
        let attempt = inner.backoff.attempt();
        inner.spec.status.set(Conn::Reconnecting {
            at_ms: now_ms() + delay,
            attempt,
        });
        let weak = Rc::downgrade(shared);
        let retry = Closure::<dyn FnMut()>::new(move || {
            if let Some(shared) = weak.upgrade() {
                connect(&shared);
            }
        });
        inner.retry_timer = web_sys::window().and_then(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(
                retry.as_ref().unchecked_ref(),
                delay as i32,
            )
            .ok()
        });
        inner.retry_closure = Some(retry);
        if let Some(probe) = inner.spec.probe_url.clone() {
            let weak = Rc::downgrade(shared);
            leptos::task::spawn_local(async move {
                if crate::client::http::status(&probe).await == Ok(404)
                    && let Some(shared) = weak.upgrade()
                {
                    let status = shared.borrow().spec.status;
                    close(&shared);
                    status.set(Conn::Gone);
                }
            });
        }
    }

    pub fn close(shared: &Shared) {
        let mut inner = shared.borrow_mut();
        inner.closed = true;
        drop_source(&mut inner);
        if let Some(link) = inner.worker.take() {
            link.terminate();
        }
        clear_retry(&mut inner);
        if let Some(window) = web_sys::window() {
            if let Some(id) = inner.watchdog_interval.take() {
                window.clear_interval_with_handle(id);
            }
            for closure in &inner.global_closures {
                let f = closure.as_ref().unchecked_ref();
                let _ = window.remove_event_listener_with_callback("online", f);
                let _ = window.remove_event_listener_with_callback("offline", f);
                if let Some(document) = window.document() {
                    let _ = document.remove_event_listener_with_callback("visibilitychange", f);
                }
            }
        }
        inner.global_closures.clear();
    }
}
