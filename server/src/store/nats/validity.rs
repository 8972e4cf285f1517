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
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::{Result, StoreError};

/// Until when this process may write. Shared with the store's appends.
pub(super) struct Validity {
    /// `None`: the lease is not held (yet, or any more).
    until: Mutex<Option<Instant>>,
    /// Cancelled once the lease is lost; never un-cancelled.
    lost: CancellationToken,
}

impl Validity {
    /// A validity whose loss is `lost`, shared with others: losing any of them
    /// announces the loss for all.
    pub(super) fn sharing(lost: CancellationToken) -> Self {
        Validity {
            until: Mutex::default(),
            lost,
        }
    }

    pub(super) fn set(&self, until: Option<Instant>) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// Ok while the lease is held; once it is not, the loss is announced.
    pub(super) fn check(&self) -> Result<()> {
        let until = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        match until {
            Some(until) if Instant::now() < until => Ok(()),
            _ => {
                self.lose();
                Err(StoreError::Conflict(
                    "this replica no longer holds the lease; another one is active".into(),
                ))
            }
        }
    }

    /// How long the lease lasts from now (zero once it does not).
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

/// How long after sending a renewal the lease is taken as held: `ttl` less a margin
/// for the two clocks running at slightly different rates.
pub(super) fn usable(ttl: Duration) -> Duration {
    ttl.saturating_sub(ttl / 10)
}
