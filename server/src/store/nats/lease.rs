//! The lease that makes one replica the active one: it alone runs turns, commands
//! and agents, and writes to the log. The others stand by until the lease is free.
//!
//! The lease is a key in a bucket whose entries expire `ttl` after their last write.
//! The holder rewrites it every `ttl / 4`, each time a compare-and-set on the
//! revision it last wrote: that revision is the fencing epoch, and a holder whose
//! revision is stale has lost the lease. Expiry is measured by the NATS server
//! from when it received a renewal, so a holder that counts `ttl` from when it
//! *sent* the renewal stops believing it holds the lease before anyone else can
//! take it: appends check that, and after it nothing more is written.
//!
//! JetStream's own fencing (each append names the sequence it follows) covers the
//! rest: once a new holder has written to a conversation, an old holder's append
//! there is refused whatever its clock says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::{Result, StoreError};

/// The one key in the lease bucket.
const KEY: &str = "active";

/// Until when this process may write. Shared with the store's appends.
#[derive(Default)]
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

/// The held lease. Renewed in the background until it is lost or released.
pub struct Lease {
    bucket: kv::Store,
    /// Who holds it, as written in the entry (host, pid and a random part).
    holder: String,
    /// The revision of our last write, the fencing epoch.
    revision: Arc<Mutex<u64>>,
    validity: Arc<Validity>,
    /// Stops the renewals.
    renewals: CancellationToken,
}

impl Lease {
    /// Waits until the lease is free and takes it. `standing_by` is called (and
    /// awaited) once with the current holder if another replica has it.
    pub(super) async fn acquire<F: std::future::Future<Output = ()>>(
        bucket: kv::Store,
        holder: String,
        ttl: Duration,
        validity: Arc<Validity>,
        standing_by: impl FnOnce(String) -> F,
    ) -> Result<Lease> {
        let mut standing_by = Some(standing_by);
        let revision = loop {
            let sent = Instant::now();
            match bucket.create(KEY, holder.clone().into()).await {
                Ok(revision) => {
                    validity.set(Some(sent + usable(ttl)));
                    break revision;
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if let Some(tell) = standing_by.take() {
                        let current = bucket
                            .get(KEY)
                            .await
                            .ok()
                            .flatten()
                            .map(|v| String::from_utf8_lossy(&v).into_owned())
                            .unwrap_or_else(|| "another replica".into());
                        tell(current).await;
                    }
                    // Polled: expiry by age leaves no marker to watch for.
                    tokio::time::sleep(ttl / 20).await;
                }
                Err(e) => {
                    // NATS unreachable for a moment: a standby keeps standing by.
                    tracing::warn!(error = %e, "cannot take the lease yet");
                    tokio::time::sleep(ttl / 20).await;
                }
            }
        };
        tracing::info!(
            holder,
            revision,
            "this replica holds the lease and is active"
        );
        let lease = Lease {
            bucket,
            holder,
            revision: Arc::new(Mutex::new(revision)),
            validity,
            renewals: CancellationToken::new(),
        };
        lease.spawn_renewals(ttl);
        Ok(lease)
    }

    /// The fencing epoch: the revision of the lease entry this process last wrote.
    pub fn epoch(&self) -> u64 {
        *self.revision.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancelled when the lease is lost: everything this process runs must stop.
    pub fn lost(&self) -> CancellationToken {
        self.validity.lost.clone()
    }

    fn spawn_renewals(&self, ttl: Duration) {
        let bucket = self.bucket.clone();
        let holder = self.holder.clone();
        let revision = self.revision.clone();
        let validity = self.validity.clone();
        let stop = self.renewals.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = validity.lost.cancelled() => return,
                    () = tokio::time::sleep(ttl / 4) => {}
                }
                let sent = Instant::now();
                let last = *revision.lock().unwrap_or_else(|p| p.into_inner());
                // A slow answer is still a renewal: the attempt may take as long as
                // the lease has left.
                let left = validity.left();
                let renewed =
                    tokio::time::timeout(left, bucket.update(KEY, holder.clone().into(), last))
                        .await;
                match renewed {
                    Ok(Ok(new)) => {
                        *revision.lock().unwrap_or_else(|p| p.into_inner()) = new;
                        validity.set(Some(sent + usable(ttl)));
                    }
                    Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                        tracing::error!("the lease was taken by another replica; stopping");
                        validity.lose();
                        return;
                    }
                    failed => {
                        // NATS unreachable or slow: keep trying while the lease lasts.
                        let why = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "no answer while the lease lasted".into(),
                        };
                        tracing::warn!(why, "cannot renew the lease");
                        if validity.check().is_err() {
                            tracing::error!(
                                "the lease ran out before it could be renewed; stopping"
                            );
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Gives the lease up at once (on a clean shutdown), so a standby takes over
    /// without waiting for it to expire.
    pub async fn release(&self) {
        self.renewals.cancel();
        if self.validity.lost.is_cancelled() {
            return;
        }
        // From here on appends are refused; the engine has stopped anyway.
        self.validity.set(None);
        let revision = self.epoch();
        if let Err(e) = self
            .bucket
            .delete_expect_revision(KEY, Some(revision))
            .await
        {
            tracing::warn!(error = %e, "cannot release the lease; it will expire");
        }
    }
}

/// How long after sending a renewal the lease is taken as held: `ttl` less a margin
/// for the two clocks running at slightly different rates.
pub(super) fn usable(ttl: Duration) -> Duration {
    ttl.saturating_sub(ttl / 10)
}
