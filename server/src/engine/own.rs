//! Taking a conversation over: on a store shared by replicas, each conversation is
//! run by the one replica that owns it, and followed by the others. A replica takes
//! a conversation when it creates it, when a change for it finds no owner to answer,
//! and when the sweep finds it left running by an owner that is gone.

use std::sync::Arc;
use std::time::Duration;

use app::protocol::RunStatus;

use super::Engine;
use super::conversation::Conversation;
use crate::store::{Claim, StoreError};

impl Conversation {
    /// Makes this replica the conversation's owner unless another one is: claims
    /// it, takes every message the log holds, closes what a dead owner left open
    /// (as `interrupted`, once: the claim and the log's own fencing see to that),
    /// then starts running it. Returns `Theirs` with the owner's name otherwise.
    pub async fn own(self: &Arc<Self>) -> Result<Claim, StoreError> {
        let _owning = self.owning.lock().await;
        if !self.is_followed() {
            return Ok(Claim::Mine);
        }
        // What this replica took now would never be given back: its shutdown has
        // released what it owned already, or is about to.
        if self.shared.is_closing() {
            return Err(StoreError::Conflict("this replica is shutting down".into()));
        }
        if let Claim::Theirs(holder) = self.shared.store.claim(&self.id).await? {
            return Ok(Claim::Theirs(holder));
        }
        let started = async {
            self.log.sync().await?;
            self.recover().await
        };
        if let Err(err) = started.await {
            // Nothing runs yet: give it back for another replica to try.
            self.shared.store.release(&self.id).await;
            return Err(err);
        }
        *self.remote() = None;
        self.start();
        self.notify_changed();
        let _ = self.shared.owned.send(self.id.clone());
        tracing::info!(conversation = %self.id, "this replica runs the conversation now");
        Ok(Claim::Mine)
    }

    /// Takes the conversation if its owner is gone (a claim then succeeds); a
    /// failure is only logged: the next sweep tries again.
    pub(super) async fn take_if_abandoned(self: &Arc<Self>) {
        if let Err(err) = self.own().await {
            tracing::warn!(conversation = %self.id, %err, "cannot take over a conversation whose owner is gone");
        }
    }

    /// Whether the log ends inside a turn: nothing marked `end_of_turn` after the
    /// last messages, as a crash leaves it.
    pub(super) async fn log_left_open(&self) -> Result<bool, StoreError> {
        let store = &self.shared.store;
        let count = store.message_count(&self.id).await?;
        let last_end = store.last_end_of_turn(&self.id).await?;
        Ok(count > 0 && last_end.is_none_or(|end| end + 1 < count))
    }

    /// Whether the owner's last word was that something runs or waits here.
    fn left_busy(&self) -> bool {
        let state = self.state();
        state.status != RunStatus::Idle
            || !state.outstanding_tool_calls.is_empty()
            || !state.pending_permissions.is_empty()
    }
}

impl Engine {
    /// On a shared store: every `every`, takes each conversation whose owner left
    /// it busy and no longer holds it, so its turn is closed and it accepts chat
    /// again. Ends with the engine's shutdown.
    pub(super) async fn sweep(self: Arc<Self>, every: Duration) {
        let shutdown = self.shared.shutdown.clone();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            for conversation in self.all() {
                if conversation.is_followed() && conversation.left_busy() {
                    conversation.take_if_abandoned().await;
                }
            }
        }
    }
}
