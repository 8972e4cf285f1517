//! What every conversation of one engine shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::agent::Agents;
use crate::store::Store;

pub struct Shared {
    /// Where conversations and their logs are persisted.
    pub store: Arc<dyn Store>,
    /// The agents conversations can choose.
    pub agents: Agents,
    /// Most bytes of changed and untracked files one snapshot of a work tree stores.
    pub snapshot_limit: u64,
    /// This machine's name, for the state.
    pub hostname: String,
    /// Cancelled when the server shuts down; workers and streams end on it.
    pub shutdown: CancellationToken,
    /// Bumped when any conversation's summary may have changed; the global stream waits on it.
    changed: watch::Sender<u64>,
    /// Set once shutdown begins: no new turns start after it.
    closing: AtomicBool,
    /// Told the id of each conversation this replica comes to own, so changes for
    /// it forwarded by other replicas reach it.
    pub owned: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Shared {
    pub fn new(
        store: Arc<dyn Store>,
        agents: Agents,
        snapshot_limit: u64,
        shutdown: CancellationToken,
        owned: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Self {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        Shared {
            store,
            agents,
            snapshot_limit,
            hostname,
            shutdown,
            changed: watch::Sender::new(0),
            closing: AtomicBool::new(false),
            owned,
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Returns whether this call began it (it may be called again).
    pub fn start_closing(&self) -> bool {
        !self.closing.swap(true, Ordering::SeqCst)
    }

    pub fn notify_changed(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
