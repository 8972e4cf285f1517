//! Which replica owns which conversation: the one whose key `conv.<id>` in the lease
//! bucket names it. The owner alone runs that conversation's turns, commands and
//! agent, and writes its log; every other replica follows it.
//!
//! Each key expires `ttl` after its
//! last write, the owner rewrites it every `ttl / 4` with a compare-and-set on the
//! revision it last wrote, and it counts the key as held only until `ttl` less a
//! margin after it *sent* that write. One task renews every key this process owns.
//!
//! A conversation nobody owns (its owner shut down, or died and its key expired) is
//! taken by the first replica that claims it; the bucket's create is atomic, so only
//! one of several claiming at once gets it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backend;
use super::validity::{Validity, usable};
use crate::store::{Claim, Result};

/// A claim that finds the key gone between "taken" and reading its holder tries
/// again this many times.
const CLAIM_TRIES: usize = 3;

fn key(conversation: &str) -> String {
    format!("conv.{conversation}")
}

struct Held {
    /// The revision of our last write to the key: this conversation's fencing epoch.
    revision: u64,
    /// Until when we may write to the conversation; shared with its appends.
    validity: Arc<Validity>,
}

/// The conversations this process owns.
pub(super) struct Owners {
    bucket: kv::Store,
    /// What the keys say: host, pid and a random part.
    holder: String,
    ttl: Duration,
    /// Every owned conversation's key; a std lock, never held across an `.await`.
    held: Mutex<HashMap<String, Held>>,
    /// Cancelled once any key is lost: a process that may have been overtaken on one
    /// conversation stops everything it runs.
    lost: CancellationToken,
    /// Stops the renewals (on a clean shutdown).
    renewals: CancellationToken,
}

impl Owners {
    /// Starts renewing (nothing yet) in the background.
    pub(super) fn start(bucket: kv::Store, holder: String, ttl: Duration) -> Arc<Self> {
        let owners = Arc::new(Owners {
            bucket,
            holder,
            ttl,
            held: Mutex::default(),
            lost: CancellationToken::new(),
            renewals: CancellationToken::new(),
        });
        // Weak: a store that is dropped stops renewing, and its keys expire as if
        // its process had died.
        tokio::spawn(Self::renew(Arc::downgrade(&owners)));
        owners
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancelled once this process lost a conversation it owned.
    pub(super) fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// The validity appends to `conversation` check; `None` if this process does
    /// not own it.
    pub(super) fn validity(&self, conversation: &str) -> Option<Arc<Validity>> {
        self.held()
            .get(conversation)
            .map(|held| held.validity.clone())
    }

    /// Takes `conversation` if nobody owns it; otherwise says who does.
    pub(super) async fn claim(&self, conversation: &str) -> Result<Claim> {
        if self.lost.is_cancelled() {
            return Err(crate::store::StoreError::Conflict(
                "this replica lost a conversation it owned and is stopping".into(),
            ));
        }
        if self.held().contains_key(conversation) {
            return Ok(Claim::Mine);
        }
        let key = key(conversation);
        for _ in 0..CLAIM_TRIES {
            let sent = Instant::now();
            match self.bucket.create(&key, self.holder.clone().into()).await {
                Ok(revision) => {
                    let validity = Arc::new(Validity::sharing(self.lost.clone()));
                    validity.set(Some(sent + usable(self.ttl)));
                    self.held()
                        .insert(conversation.to_string(), Held { revision, validity });
                    tracing::info!(conversation, revision, "this replica owns the conversation");
                    return Ok(Claim::Mine);
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    let entry = self
                        .bucket
                        .entry(&key)
                        .await
                        .map_err(|e| backend("cannot read who owns a conversation", e))?;
                    let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                        // Expired or released between the two requests: try again.
                        continue;
                    };
                    let holder = String::from_utf8_lossy(&entry.value).into_owned();
                    if !self.died_here(&holder) {
                        return Ok(Claim::Theirs(holder));
                    }
                    // A process of this machine that is gone (this replica before a
                    // crash): its claim need not run out first. Removed only if it
                    // is still that claim.
                    tracing::info!(
                        conversation,
                        holder,
                        "taking a conversation from a process that died"
                    );
                    let _ = self
                        .bucket
                        .delete_expect_revision(&key, Some(entry.revision))
                        .await;
                }
                Err(e) => return Err(backend("cannot claim a conversation", e)),
            }
        }
        Err(crate::store::StoreError::Conflict(format!(
            "conversation {conversation} changed hands {CLAIM_TRIES} times while being claimed"
        )))
    }

    /// Whether `holder` names a process that no longer runs and that this one
    /// could see if it did: same host *and* same pid namespace, since containers
    /// sharing the host's name (host networking) each count pids from 1.
    fn died_here(&self, holder: &str) -> bool {
        let Some(theirs) = parse_holder(holder) else {
            return false;
        };
        let Some(mine) = parse_holder(&self.holder) else {
            return false;
        };
        mine.host == theirs.host
            && mine.pid_ns.is_some()
            && mine.pid_ns == theirs.pid_ns
            && mine.pid != theirs.pid
            && !std::path::Path::new(&format!("/proc/{}", theirs.pid)).exists()
    }

    /// Who owns `conversation` now, if anyone.
    pub(super) async fn owner(&self, conversation: &str) -> Result<Option<String>> {
        let value = self
            .bucket
            .get(key(conversation))
            .await
            .map_err(|e| backend("cannot read who owns a conversation", e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Gives `conversation` up at once, so the next replica to claim it need not
    /// wait for its key to expire. Its appends are refused from here on.
    pub(super) async fn release(&self, conversation: &str) {
        let Some(held) = self.held().remove(conversation) else {
            return;
        };
        held.validity.give_up();
        let key = key(conversation);
        let mut revision = held.revision;
        for _ in 0..CLAIM_TRIES {
            match self
                .bucket
                .delete_expect_revision(&key, Some(revision))
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    // A renewal in flight may have moved the revision on: the key is
                    // still ours if it still names this process.
                    let current = self.bucket.entry(&key).await.ok().flatten();
                    match current.filter(|c| {
                        c.operation == kv::Operation::Put && c.value == self.holder.as_bytes()
                    }) {
                        Some(current) => revision = current.revision,
                        None => {
                            tracing::debug!(conversation, error = %e, "released already");
                            return;
                        }
                    }
                }
            }
        }
        tracing::warn!(
            conversation,
            "cannot release a conversation; its key will expire"
        );
    }

    /// Gives every conversation up (on a clean shutdown) and stops renewing.
    pub(super) async fn release_all(&self) {
        self.renewals.cancel();
        let owned: Vec<String> = self.held().keys().cloned().collect();
        futures::future::join_all(owned.iter().map(|c| self.release(c))).await;
    }

    /// Rewrites every owned key every `ttl / 4` until a key is lost, the renewals
    /// are stopped or the owners are dropped.
    async fn renew(owners: std::sync::Weak<Self>) {
        loop {
            let Some(this) = owners.upgrade() else { return };
            let (stop, lost, pause) = (this.renewals.clone(), this.lost.clone(), this.ttl / 4);
            drop(this);
            tokio::select! {
                () = stop.cancelled() => return,
                () = lost.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            let Some(this) = owners.upgrade() else { return };
            let owned: Vec<(String, u64, Arc<Validity>)> = this
                .held()
                .iter()
                .map(|(c, h)| (c.clone(), h.revision, h.validity.clone()))
                .collect();
            let renewals = owned.into_iter().map(|(conversation, revision, validity)| {
                this.renew_one(conversation, revision, validity)
            });
            futures::future::join_all(renewals).await;
        }
    }

    async fn renew_one(&self, conversation: String, last: u64, validity: Arc<Validity>) {
        let sent = Instant::now();
        // A slow answer is still a renewal: the attempt may take as long as the key
        // has left.
        let renewed = tokio::time::timeout(
            validity.left(),
            self.bucket
                .update(key(&conversation), self.holder.clone().into(), last),
        )
        .await;
        match renewed {
            Ok(Ok(revision)) => {
                if let Some(held) = self.held().get_mut(&conversation) {
                    held.revision = revision;
                    held.validity.set(Some(sent + usable(self.ttl)));
                }
            }
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // Released meanwhile, or taken by another replica after we stalled.
                if self.held().contains_key(&conversation) {
                    tracing::error!(
                        conversation,
                        "another replica took a conversation this one owned; stopping"
                    );
                    validity.lose();
                }
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no answer while the key lasted".into(),
                };
                tracing::warn!(conversation, why, "cannot renew a conversation's key");
                if validity.check().is_err() {
                    tracing::error!(
                        conversation,
                        "a conversation's key ran out before it could be renewed; stopping"
                    );
                }
            }
        }
    }
}

/// What a holder's name (`<host> pid <pid> ns <pid namespace> (<random>)`, see
/// `holder_name`) says about its process.
#[derive(Debug, PartialEq, Eq)]
struct Holder<'a> {
    host: &'a str,
    pid: u32,
    /// The pid namespace's inode, when the process could read it.
    pid_ns: Option<u64>,
}

fn parse_holder(holder: &str) -> Option<Holder<'_>> {
    let (host, rest) = holder.rsplit_once(" pid ")?;
    let mut words = rest.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let pid_ns = match (words.next(), words.next()) {
        (Some("ns"), Some(ns)) => ns.parse().ok(),
        _ => None,
    };
    Some(Holder { host, pid, pid_ns })
}

/// The inode of this process's pid namespace (`/proc/self/ns/pid` reads
/// `pid:[4026531836]`), which tells containers on one host apart.
pub(super) fn pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_str()?;
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_name_says_host_pid_and_namespace() {
        assert_eq!(
            parse_holder("box-1 pid 42 ns 4026531836 (ab12cd34)"),
            Some(Holder {
                host: "box-1",
                pid: 42,
                pid_ns: Some(4026531836)
            })
        );
        // A name without a namespace (it could not be read) is never taken as dead.
        assert_eq!(
            parse_holder("box pid 7 (ab12cd34)"),
            Some(Holder {
                host: "box",
                pid: 7,
                pid_ns: None
            })
        );
        assert_eq!(parse_holder("nonsense"), None);
    }

    #[test]
    fn this_process_can_read_its_pid_namespace() {
        assert!(pid_namespace().is_some());
    }
}
