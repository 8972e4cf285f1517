//! The engine: every conversation, each with its queue of chat messages and the
//! worker that runs its turns one after another, crash recovery, and shutdown.
//! Requests from any transport land here; the engine never speaks HTTP.

mod changes;
mod conversation;
mod error;
mod follow;
mod git;
mod own;
mod recovery;
mod shared;
mod worker;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use app::protocol::{AgentInfo, ConversationSummary, ToolStatus};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use changes::ChangesQuery;
pub use conversation::{Conversation, StopInfo};
pub use error::EngineError;

use crate::agent::{Agents, DEFAULT_AGENT};
use crate::log::now_rfc3339;
use crate::store::{ConversationRecord, Store, StoreError};
use shared::Shared;

/// The engine's settings, taken from the server's flags.
pub struct EngineSettings {
    /// The most conversations that may exist.
    pub max_conversations: usize,
    /// Most bytes of changed and untracked files one snapshot of a work tree stores.
    pub snapshot_limit: u64,
}

pub struct Engine {
    /// What every conversation shares.
    shared: Arc<Shared>,
    /// Every conversation by id, loaded at start (their logs stay in the store); a
    /// std lock, held only to look up or insert.
    map: RwLock<HashMap<String, Arc<Conversation>>>,
    /// Serializes creation, so concurrent creates cannot overshoot the limit.
    creating: tokio::sync::Mutex<()>,
    /// The most conversations that may exist.
    max_conversations: usize,
    /// Set on a replica that follows the active one: it runs nothing and creates
    /// nothing (requests that would are forwarded to the active replica).
    following: bool,
}

impl Engine {
    /// Loads every stored conversation, closes turns a crash left open, and starts
    /// their workers. Must be called inside a tokio runtime.
    pub async fn open(
        store: Arc<dyn Store>,
        agents: Agents,
        settings: EngineSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared::new(
            store,
            agents,
            settings.snapshot_limit,
            shutdown,
        ));
        let mut map = HashMap::new();
        for record in shared.store.conversations().await? {
            let id = record.id.clone();
            map.insert(id, Conversation::open(record, shared.clone()).await?);
        }
        Ok(Engine::with(shared, map, settings.max_conversations, false))
    }

    fn with(
        shared: Arc<Shared>,
        map: HashMap<String, Arc<Conversation>>,
        max_conversations: usize,
        following: bool,
    ) -> Self {
        Engine {
            shared,
            map: RwLock::new(map),
            creating: tokio::sync::Mutex::new(()),
            max_conversations,
            following,
        }
    }

    /// Adds `conversation` unless one with its id is already there, and returns the
    /// one the engine keeps. On a follower a lookup and the feed may both bring the
    /// same conversation: replacing the first would leave its readers on a log the
    /// feed no longer grows.
    fn insert(&self, conversation: Arc<Conversation>) -> Arc<Conversation> {
        let kept = self
            .map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(conversation.id.clone())
            .or_insert(conversation)
            .clone();
        self.shared.notify_changed();
        kept
    }

    pub fn get(&self, id: &str) -> Result<Arc<Conversation>, EngineError> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("no conversation with id {id:?}")))
    }

    pub fn all(&self) -> Vec<Arc<Conversation>> {
        let mut all: Vec<_> = self
            .map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Summaries, most recently active first.
    pub fn summaries(&self) -> Vec<ConversationSummary> {
        let mut list: Vec<_> = self.all().iter().map(|c| c.summary()).collect();
        list.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        list
    }

    /// The agents conversations can be created with.
    pub fn agents(&self) -> Vec<AgentInfo> {
        self.shared.agents.list()
    }

    /// Creates a conversation in `cwd` run by `agent` (the default agent if `None`).
    pub async fn create(
        &self,
        cwd: &Path,
        title: Option<String>,
        agent: Option<String>,
    ) -> Result<Arc<Conversation>, EngineError> {
        let agent = agent
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_AGENT.to_string());
        if self.shared.agents.get(&agent).is_none() {
            return Err(EngineError::Invalid(format!(
                "unknown agent {agent:?}; this server offers: {}",
                self.shared.agents.names().join(", ")
            )));
        }
        if self.following {
            return Err(EngineError::Unavailable(
                "this replica follows the active one and cannot create conversations".into(),
            ));
        }
        let _creating = self.creating.lock().await;
        let count = self.map.read().unwrap_or_else(|p| p.into_inner()).len();
        if count >= self.max_conversations {
            return Err(EngineError::TooMany(format!(
                "the limit of {} conversations is reached",
                self.max_conversations
            )));
        }
        let now = now_rfc3339();
        let record = ConversationRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            title: title.map(|t| t.trim().to_string()).unwrap_or_default(),
            cwd: cwd.display().to_string(),
            agent,
            first_message_index: 0,
            created_at: now.clone(),
            updated_at: now,
        };
        self.shared.store.create_conversation(&record).await?;
        let conversation = Conversation::open(record, self.shared.clone()).await?;
        Ok(self.insert(conversation))
    }

    /// A receiver that sees any conversation's summary change.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.shared.subscribe_changes()
    }

    /// Cancelled when the server shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Stops every running turn, marking its tool calls `interrupted`, and waits
    /// (boundedly) for the results to be logged.
    pub async fn shutdown(&self, wait: Duration) {
        self.shared.start_closing();
        let all = self.all();
        for conversation in &all {
            let _ = conversation.stop_turn(StopInfo {
                reason: "the server is shutting down".into(),
                dropped: 0,
                status: ToolStatus::Interrupted,
            });
        }
        let waits = all.iter().map(|c| c.wait_idle(wait));
        for result in futures::future::join_all(waits).await {
            if let Err(err) = result {
                tracing::warn!(%err, "a turn did not stop before shutdown; it will be closed on the next start");
            }
        }
        // Agent processes go last: a stopped turn may still be telling its agent.
        futures::future::join_all(all.iter().map(|c| c.session.shutdown())).await;
    }
}
