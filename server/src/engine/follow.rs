//! Replicas: a conversation's owner publishes its runtime state; the other replicas
//! follow the store and serve what the owner does, running nothing for it themselves.
//!
//! A follower's logs grow from the store's feed exactly as the owner's grow from its
//! appends, so every reader keeps its own cursor and the same guarantees. The
//! owner's state is only shown once the follower's log holds every message that
//! state counts, so a state never runs ahead of the messages.

use std::collections::HashMap;
use std::sync::Arc;

use app::protocol::{ConversationState, ConversationSummary};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Engine;
use super::conversation::Conversation;
use crate::store::{ConversationRecord, Followed, ShareRecord, StoreError};

/// What a conversation's owner publishes about it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteView {
    pub state: ConversationState,
    /// Whether the last finished tool call failed.
    pub last_error: bool,
}

/// A follower's copy of the owner's view of one conversation.
#[derive(Default)]
pub struct Remote {
    /// What `state` shows.
    shown: Option<RemoteView>,
    /// The newest view, held back until the log has every message it counts.
    pending: Option<RemoteView>,
}

impl Conversation {
    pub(super) fn remote(&self) -> std::sync::MutexGuard<'_, Option<Remote>> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether another replica runs this conversation (this one follows it).
    pub fn is_followed(&self) -> bool {
        self.remote().is_some()
    }

    /// The state as the owner last published it, with this replica's record and
    /// message count; `None` on the owner itself.
    pub(super) fn remote_state(&self) -> Option<ConversationState> {
        let shown = self.remote().as_ref()?.shown.clone();
        let meta = self.meta().clone();
        let mut state = shown.map(|v| v.state).unwrap_or_default();
        state.conversation_id.clone_from(&self.id);
        state.message_count = self.log.len();
        state.title = meta.title;
        state.working_dir = meta.cwd;
        state.agent = meta.agent;
        state.first_message_index = meta.first_message_index;
        state.created_at = meta.created_at;
        state.updated_at = meta.updated_at;
        Some(state)
    }

    pub(super) fn remote_summary(&self) -> Option<ConversationSummary> {
        let last_error = self
            .remote()
            .as_ref()?
            .shown
            .as_ref()
            .is_some_and(|v| v.last_error);
        let state = self.remote_state()?;
        Some(ConversationSummary {
            id: state.conversation_id,
            title: state.title,
            cwd: state.working_dir,
            status: state.status,
            message_count: state.message_count,
            last_error,
            agent: state.agent,
            pending_permissions: state.pending_permissions.len() as u64,
            created_at: state.created_at,
            updated_at: state.updated_at,
        })
    }

    /// How many messages the log has, as far as anyone knows: on a follower this
    /// may be ahead of what its own log has taken from the feed so far.
    pub async fn known_len(&self) -> Result<u64, StoreError> {
        let len = self.log.len();
        if !self.is_followed() {
            return Ok(len);
        }
        Ok(len.max(self.shared.store.message_count(&self.id).await?))
    }

    /// Takes a view the owner published.
    fn take_remote(&self, view: RemoteView) {
        let followed = match self.remote().as_mut() {
            Some(remote) => {
                remote.pending = Some(view);
                true
            }
            None => false,
        };
        if followed {
            self.show_remote();
        }
    }

    /// Shows the pending view once the log has caught up with it.
    fn show_remote(&self) {
        let len = self.log.len();
        let shown = {
            let mut remote = self.remote();
            let Some(remote) = remote.as_mut() else {
                return;
            };
            match remote.pending.take() {
                Some(view) if view.state.message_count <= len => {
                    remote.shown = Some(view);
                    true
                }
                pending => {
                    remote.pending = pending;
                    false
                }
            }
        };
        if shown {
            self.notify_changed();
        }
    }

    /// Publishes the state as it is now, for the replicas that follow.
    pub(super) async fn publish_state_now(&self) {
        let view = RemoteView {
            state: self.state(),
            last_error: self.session.last_error(),
        };
        match serde_json::to_vec(&view) {
            Ok(json) => {
                if let Err(err) = self
                    .shared
                    .store
                    .publish_status(&self.id, json.into())
                    .await
                {
                    tracing::warn!(conversation = %self.id, %err, "cannot publish the state");
                }
            }
            Err(err) => tracing::error!(%err, "cannot encode the state"),
        }
    }

    /// On the owner: publishes the state whenever it changes, for the
    /// replicas that follow. Only the latest matters, so a burst of changes
    /// coalesces into the publishes that fit.
    pub(super) async fn publish_status(self: Arc<Self>) {
        let mut changes = self.subscribe_changes();
        let shutdown = self.shutdown_token();
        loop {
            // Once shutdown begins, the engine publishes the last state itself,
            // before it gives the conversation up.
            if self.shared.is_closing() {
                return;
            }
            self.publish_state_now().await;
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
            }
        }
    }
}

impl Engine {
    /// Like `get`; on a follower, a conversation the feed has not brought yet (one
    /// created a moment ago on another replica) is looked up in the store.
    pub async fn find(&self, id: &str) -> Result<Arc<Conversation>, super::EngineError> {
        match self.get(id) {
            Err(missing) if self.shared.store.shared_by_replicas() => {
                match self.shared.store.conversation(id).await? {
                    Some(record) => Ok(self.followed_record(record).await?),
                    None => Err(missing),
                }
            }
            found => found,
        }
    }

    /// Takes a record another replica wrote: the conversation's new metadata, or
    /// a conversation this replica has not seen yet.
    async fn followed_record(
        &self,
        record: ConversationRecord,
    ) -> Result<Arc<Conversation>, StoreError> {
        if let Ok(conversation) = self.get(&record.id) {
            *conversation.meta() = record;
            conversation.notify_changed();
            return Ok(conversation);
        }
        let conversation =
            Conversation::build(record, self.shared.clone(), Some(Remote::default())).await?;
        Ok(self.insert(conversation))
    }
}

pub(super) async fn follow(
    engine: Arc<Engine>,
    mut feed: tokio::sync::mpsc::Receiver<Followed>,
    shutdown: tokio_util::sync::CancellationToken,
    on_share: impl Fn(ShareRecord),
) {
    let mut orphans = HashMap::new();
    loop {
        let item = tokio::select! {
            item = feed.recv() => item,
            () = shutdown.cancelled() => return,
        };
        let Some(item) = item else {
            tracing::error!("the store's feed ended; this replica no longer follows");
            return;
        };
        let outcome = match item {
            Followed::Messages {
                conversation,
                first,
                rows,
            } => match engine.get(&conversation) {
                // A conversation whose record is not here yet counts its log when it
                // arrives, these messages included.
                Err(_) => Ok(()),
                Ok(conversation) => {
                    let followed = conversation.log.follow(first, rows).await;
                    conversation.show_remote();
                    followed
                }
            },
            Followed::Conversation(record) => {
                let id = record.id.clone();
                engine.followed_record(record).await.map(|conversation| {
                    if let Some(view) = orphans.remove(&id) {
                        conversation.take_remote(view);
                    }
                })
            }
            Followed::Share(record) => {
                on_share(record);
                Ok(())
            }
            Followed::Status { conversation, json } => {
                apply_status(&engine, &mut orphans, conversation, &json);
                Ok(())
            }
        };
        if let Err(err) = outcome {
            tracing::error!(%err, "cannot follow what another replica wrote");
        }
    }
}

/// Takes a published state, or keeps it until its conversation's record arrives
/// (the two come from different watches, in no set order).
fn apply_status(
    engine: &Engine,
    orphans: &mut HashMap<String, RemoteView>,
    conversation: String,
    json: &Bytes,
) {
    let view = match serde_json::from_slice::<RemoteView>(json) {
        Ok(view) => view,
        Err(err) => {
            tracing::warn!(%err, "a published state cannot be read");
            return;
        }
    };
    match engine.get(&conversation) {
        Ok(conversation) => conversation.take_remote(view),
        Err(_) => {
            orphans.insert(conversation, view);
        }
    }
}
