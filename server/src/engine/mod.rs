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
use follow::Remote;
use shared::Shared;

/// The engine's settings, taken from the server's flags.
pub struct EngineSettings {
    /// The most conversations that may exist.
    pub max_conversations: usize,
    /// Most bytes of changed and untracked files one snapshot of a work tree stores.
    pub snapshot_limit: u64,
    /// On a store shared by replicas: how often to look for conversations left
    /// busy by an owner that is gone.
    pub sweep_every: Duration,
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
    /// The ids of conversations this replica comes to own, until someone takes them
    /// (`owned_ids`).
    owned: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

impl Engine {
    /// Loads every stored conversation and starts running them. On an embedded
    /// store this replica owns them all: it closes turns a crash left open and
    /// starts their workers. On a store shared by replicas it follows them, and
    /// runs only those it takes (see `own.rs`). Must be called inside a tokio runtime.
    pub async fn open(
        store: Arc<dyn Store>,
        agents: Agents,
        settings: EngineSettings,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, StoreError> {
        Self::open_replica(store, agents, settings, shutdown, |_| {}).await
    }

    /// Like `open`; `on_share` gets the share records other replicas write.
    pub async fn open_replica(
        store: Arc<dyn Store>,
        agents: Agents,
        settings: EngineSettings,
        shutdown: CancellationToken,
        on_share: impl Fn(crate::store::ShareRecord) + Send + 'static,
    ) -> Result<Arc<Self>, StoreError> {
        // Subscribed before the logs are counted, so no append falls in between.
        let feed = store.follow().await?;
        let (owned_tx, owned_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(
            store,
            agents,
            settings.snapshot_limit,
            shutdown.clone(),
            owned_tx,
        ));
        let mut map = HashMap::new();
        for record in shared.store.conversations().await? {
            let id = record.id.clone();
            let conversation = match feed {
                Some(_) => {
                    Conversation::build(record, shared.clone(), Some(Remote::default())).await?
                }
                None => Conversation::open(record, shared.clone()).await?,
            };
            map.insert(id, conversation);
        }
        let engine = Arc::new(Engine {
            shared,
            map: RwLock::new(map),
            creating: tokio::sync::Mutex::new(()),
            max_conversations: settings.max_conversations,
            owned: std::sync::Mutex::new(Some(owned_rx)),
        });
        if feed.is_some() {
            // What a crash of this replica left open is taken back at once; what
            // another replica runs stays with it.
            for conversation in engine.all() {
                if conversation.log_left_open().await? {
                    conversation.take_if_abandoned().await;
                }
            }
        }
        if let Some(feed) = feed {
            tokio::spawn(follow::follow(
                engine.clone(),
                feed,
                shutdown.clone(),
                on_share,
            ));
            tokio::spawn(engine.clone().sweep(settings.sweep_every));
        }
        Ok(engine)
    }

    /// The ids of the conversations this replica comes to own, as it takes them;
    /// `None` after the first call.
    pub fn owned_ids(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner()).take()
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
        if self.shared.is_closing() {
            return Err(EngineError::Unavailable(
                "the server is shutting down".into(),
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
        if !self.shared.store.shared_by_replicas() {
            let conversation = Conversation::open(record, self.shared.clone()).await?;
            return Ok(self.insert(conversation));
        }
        // Built as followed, then taken: the way every replica takes one.
        let conversation = self.insert(
            Conversation::build(record, self.shared.clone(), Some(Remote::default())).await?,
        );
        conversation.own().await?;
        Ok(conversation)
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
        let first = self.shared.start_closing();
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
        // Nothing runs here any more: the replicas that follow are told so, and may
        // take these conversations at once.
        // Once only: shutdown runs a second time after the connections drain, and
        // by then the conversations are given up.
        if first && self.shared.store.shared_by_replicas() {
            let owned: Vec<_> = all.iter().filter(|c| !c.is_followed()).collect();
            futures::future::join_all(owned.iter().map(|c| c.publish_state_now())).await;
        }
        self.shared.store.release_all().await;
    }

    /// Cancelled once this replica lost a conversation it owned: the server must
    /// then stop everything it runs. Never cancelled on an embedded store.
    pub fn ownership_lost(&self) -> CancellationToken {
        self.shared.store.ownership_lost().unwrap_or_default()
    }
}
