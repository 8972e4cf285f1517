//! The limit on tool calls running at once, across conversations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct ToolSlots {
    /// Calls holding a slot now.
    running: AtomicUsize,
    /// The most that may hold one.
    max: usize,
}

/// A running call's place in the limit; freed on drop.
pub struct ToolSlot {
    slots: Arc<ToolSlots>,
}

impl Drop for ToolSlot {
    fn drop(&mut self) {
        self.slots.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ToolSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ToolSlots {
            running: AtomicUsize::new(0),
            max,
        })
    }

    /// Takes a slot, or says why not.
    pub fn take(self: &Arc<Self>) -> Result<ToolSlot, String> {
        let running = self.running.fetch_add(1, Ordering::SeqCst);
        if running >= self.max {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err(format!(
                "too many commands are running ({} is the limit); try again when one ends",
                self.max
            ));
        }
        Ok(ToolSlot {
            slots: self.clone(),
        })
    }
}
