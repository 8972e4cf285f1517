//! How long a replica may still write to a conversation it owns (`owners.rs`).
//!
//! An owner's key in the lease bucket expires `ttl` after its last write, as the
//! NATS server counts it from when it *received* that write. The owner counts from
//! when it *sent* it, less a margin, so it stops believing it owns the conversation
//! before anyone else can take it: appends check that, and after it nothing more is
//! written. JetStream's own fencing (each append names the sequence it follows)
//! covers the rest: once a new owner has written to a conversation, an old owner's
//! append there is refused whatever its clock says.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::{Result, StoreError};

/// Until when this process may write. Shared with the store's appends.
pub(super) struct Validity {
    /// `None`: the conversation is not owned (yet, or any more).
    until: Mutex<Option<Instant>>,
    /// Set when this process gave the conversation up itself: a late append is
    /// then refused without counting as a loss.
    given_up: AtomicBool,
    /// Cancelled once ownership is lost; never un-cancelled.
    lost: CancellationToken,
}

impl Validity {
    /// A validity whose loss is `lost`, shared with others: losing any of them
    /// announces the loss for all.
    pub(super) fn sharing(lost: CancellationToken) -> Self {
        Validity {
            until: Mutex::default(),
            given_up: AtomicBool::new(false),
            lost,
        }
    }

    pub(super) fn set(&self, until: Option<Instant>) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// Ends the validity because this process released the conversation: unlike
    /// running out, that is no loss.
    pub(super) fn give_up(&self) {
        self.given_up.store(true, Ordering::SeqCst);
        self.set(None);
    }

    /// Ok while the conversation is owned; once it is not, the loss is announced
    /// (unless this process gave it up).
    pub(super) fn check(&self) -> Result<()> {
        let until = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        match until {
            Some(until) if Instant::now() < until => Ok(()),
            _ if self.given_up.load(Ordering::SeqCst) => Err(StoreError::Conflict(
                "this replica gave the conversation up".into(),
            )),
            _ => {
                self.lose();
                Err(StoreError::Conflict(
                    "this replica no longer owns the conversation; another one may have taken it"
                        .into(),
                ))
            }
        }
    }

    /// How long ownership lasts from now (zero once it does not).
    pub(super) fn left(&self) -> Duration {
        let until = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        })
    }

    pub(super) fn lose(&self) {
        self.set(None);
        self.lost.cancel();
    }
}

/// How long after sending a renewal a key is taken as held: `ttl` less a margin
/// for the two clocks running at slightly different rates.
pub(super) fn usable(ttl: Duration) -> Duration {
    ttl.saturating_sub(ttl / 10)
}
