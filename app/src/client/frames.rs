//! Applies a flood of stream events at the browser's pace: queued as they arrive,
//! drained once per animation frame within a time budget, so the page keeps painting
//! and each card re-renders once per frame instead of once per message.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Time spent applying events per frame, leaving the rest of a 16 ms frame for layout
/// and paint.
pub const FRAME_BUDGET_MS: f64 = 8.0;

struct Inner<T> {
    items: RefCell<VecDeque<T>>,
    scheduled: Cell<bool>,
    apply: Box<dyn Fn(T)>,
}

pub struct FrameQueue<T: 'static> {
    inner: Rc<Inner<T>>,
}

impl<T: 'static> FrameQueue<T> {
    pub fn new(apply: impl Fn(T) + 'static) -> Self {
        FrameQueue {
            inner: Rc::new(Inner {
                items: RefCell::new(VecDeque::new()),
                scheduled: Cell::new(false),
                apply: Box::new(apply),
            }),
        }
    }

    pub fn push(&self, item: T) {
        self.inner.items.borrow_mut().push_back(item);
        if page_hidden() {
            // Hidden tabs get no animation frames: apply now rather than let a
            // flood pile up in memory until the tab is shown again.
            drain(&self.inner, f64::INFINITY);
        } else if !self.inner.scheduled.replace(true) {
            schedule(self.inner.clone());
        }
    }
}

fn page_hidden() -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.hidden())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        true
    }
}

fn schedule<T: 'static>(inner: Rc<Inner<T>>) {
    leptos::prelude::request_animation_frame(move || {
        if drain(&inner, FRAME_BUDGET_MS) {
            inner.scheduled.set(false);
        } else {
            schedule(inner);
        }
    });
}

/// Applies queued items until the queue is empty (true) or the budget is spent (false).
fn drain<T>(inner: &Inner<T>, budget_ms: f64) -> bool {
    let start = super::now_ms();
    loop {
        // Not borrowed while applying: `apply` may push more.
        let Some(item) = inner.items.borrow_mut().pop_front() else {
            return true;
        };
        (inner.apply)(item);
        if super::now_ms() - start > budget_ms {
            return inner.items.borrow().is_empty();
        }
    }
}
