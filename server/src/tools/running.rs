//! The tool calls of one conversation that are running now: what cancel, input and
//! the state's `outstanding_tool_calls` act on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use app::protocol::ToolStatus;

/// How a running call is steered from outside.
pub trait Control: Send + Sync {
    /// Stops it politely (a terminal escalates SIGINT → SIGTERM → SIGKILL); returns at once.
    fn cancel(&self);
    /// Stops it now.
    fn kill(&self);
    /// Types into it. Blocking: a program that stopped reading stalls the writer.
    fn write_input(&self, data: &[u8]) -> std::io::Result<()>;
}

/// Asked for a tool call that is not running (anymore).
#[derive(Debug, thiserror::Error)]
#[error("no running tool call with id {0:?}")]
pub struct NotRunning(pub String);

pub struct RunningTools {
    /// Never held across an `.await`.
    inner: Mutex<Inner>,
    /// Called after every change a client can see (the state's list of calls).
    on_change: Box<dyn Fn() + Send + Sync>,
}

#[derive(Default)]
struct Inner {
    /// Running calls by id.
    calls: HashMap<String, Running>,
    /// Their ids in start order, for the state's list.
    order: Vec<String>,
    /// Set while the turn is being stopped: a call registered meanwhile starts
    /// stopped, so a stop can never miss a call that was just starting.
    stopping: Option<ToolStatus>,
    /// Whether the last finished call failed.
    last_error: bool,
}

struct Running {
    control: Arc<dyn Control>,
    /// Set when someone stopped the call; its result then carries this status.
    stop: Option<ToolStatus>,
}

fn stop(control: &dyn Control, status: ToolStatus) {
    if status == ToolStatus::Interrupted {
        // Shutting down: no time for the polite escalation.
        control.kill();
    } else {
        control.cancel();
    }
}

impl RunningTools {
    pub fn new(on_change: impl Fn() + Send + Sync + 'static) -> Self {
        RunningTools {
            inner: Mutex::new(Inner::default()),
            on_change: Box::new(on_change),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new turn starts: nothing is being stopped.
    pub fn begin_turn(&self) {
        self.inner().stopping = None;
    }

    /// Adds a running call; if the turn is being stopped, it is stopped at once.
    pub fn register(&self, id: &str, control: Arc<dyn Control>) {
        {
            let mut inner = self.inner();
            let stopping = inner.stopping;
            if let Some(status) = stopping {
                stop(control.as_ref(), status);
            }
            inner.calls.insert(
                id.to_string(),
                Running {
                    control,
                    stop: stopping,
                },
            );
            inner.order.push(id.to_string());
        }
        (self.on_change)();
    }

    /// How the call was stopped, if someone stopped it.
    pub fn stop_status(&self, id: &str) -> Option<ToolStatus> {
        self.inner().calls.get(id).and_then(|c| c.stop)
    }

    /// Forgets a call once its result is in the log.
    pub fn finish(&self, id: &str, failed: bool) {
        {
            let mut inner = self.inner();
            inner.order.retain(|t| t != id);
            inner.calls.remove(id);
            inner.last_error = failed;
        }
        (self.on_change)();
    }

    /// Cancels one call; the turn goes on.
    pub fn cancel(&self, id: &str) -> Result<(), NotRunning> {
        let mut inner = self.inner();
        let call = inner
            .calls
            .get_mut(id)
            .ok_or_else(|| NotRunning(id.to_string()))?;
        call.stop.get_or_insert(ToolStatus::Cancelled);
        call.control.cancel();
        Ok(())
    }

    /// Stops every call, and any that starts before the turn ends, as `status`.
    pub fn stop_all(&self, status: ToolStatus) {
        let mut inner = self.inner();
        inner.stopping.get_or_insert(status);
        for call in inner.calls.values_mut() {
            call.stop.get_or_insert(status);
            stop(call.control.as_ref(), status);
        }
    }

    /// The control of a running call, to type into it.
    pub fn control(&self, id: &str) -> Result<Arc<dyn Control>, NotRunning> {
        self.inner()
            .calls
            .get(id)
            .map(|c| c.control.clone())
            .ok_or_else(|| NotRunning(id.to_string()))
    }

    /// Ids of the running calls, in start order.
    pub fn ids(&self) -> Vec<String> {
        self.inner().order.clone()
    }

    pub fn last_error(&self) -> bool {
        self.inner().last_error
    }

    /// Recovery closed calls as failed.
    pub fn mark_failed(&self) {
        self.inner().last_error = true;
    }
}
