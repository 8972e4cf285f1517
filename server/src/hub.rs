//! Services every conversation shares, and the registry of conversations.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use app::protocol::{ConversationSummary, ToolStatus};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::config::Config;
use crate::conversation::{Conversation, StopInfo};
use crate::error::AppError;
use crate::log::now_rfc3339;
use crate::store::{ConversationRecord, Store, StoreError};

pub struct Hub {
    /// Where everything is persisted.
    pub store: Arc<dyn Store>,
    /// Runs the turns of every conversation.
    pub agent: Arc<dyn Agent>,
    /// This machine's name, for the state.
    pub hostname: String,
    /// Environment variables tool calls must not inherit.
    pub env_remove: Vec<String>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Bumped when any conversation's summary may have changed; the global stream waits on it.
    changed: watch::Sender<u64>,
    /// Set once shutdown begins: no new turns start after it.
    closing: AtomicBool,
    /// Commands running now, across conversations, and the most allowed.
    running_tools: AtomicUsize,
    max_running_tools: usize,
    /// The most conversations that may exist.
    max_conversations: usize,
}

/// A running command's place in the limit; freed on drop.
pub struct ToolSlot {
    hub: Arc<Hub>,
}

impl Drop for ToolSlot {
    fn drop(&mut self) {
        self.hub.running_tools.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Names in this server's environment that match a deny pattern (`NAME` or `PREFIX*`).
fn denied_env(patterns: &[String]) -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == p,
            })
        })
        .collect()
}

impl Hub {
    pub fn new(
        store: Arc<dyn Store>,
        agent: Arc<dyn Agent>,
        config: &Config,
        shutdown: CancellationToken,
    ) -> Self {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        Hub {
            store,
            agent,
            hostname,
            env_remove: denied_env(&config.env_deny()),
            shutdown,
            changed: watch::Sender::new(0),
            closing: AtomicBool::new(false),
            running_tools: AtomicUsize::new(0),
            max_running_tools: config.max_running_tools,
            max_conversations: config.max_conversations,
        }
    }

    /// Takes a slot for a running command, or says why not.
    pub fn start_tool(self: &Arc<Self>) -> Result<ToolSlot, String> {
        let running = self.running_tools.fetch_add(1, Ordering::SeqCst);
        if running >= self.max_running_tools {
            self.running_tools.fetch_sub(1, Ordering::SeqCst);
            return Err(format!(
                "too many commands are running ({} is the limit); try again when one ends",
                self.max_running_tools
            ));
        }
        Ok(ToolSlot { hub: self.clone() })
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub fn notify_changed(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Every conversation, loaded at start and kept in memory (their logs stay on disk).
pub struct Conversations {
    /// Shared services.
    pub hub: Arc<Hub>,
    /// By id; a std lock, held only to look up or insert.
    map: RwLock<HashMap<String, Arc<Conversation>>>,
}

impl Conversations {
    /// Loads every stored conversation and closes turns a crash left open.
    pub fn load(hub: Arc<Hub>) -> Result<Self, StoreError> {
        let mut map = HashMap::new();
        for record in hub.store.conversations()? {
            let id = record.id.clone();
            map.insert(id, Conversation::open(record, hub.clone())?);
        }
        Ok(Conversations {
            hub,
            map: RwLock::new(map),
        })
    }

    pub fn get(&self, id: &str) -> Result<Arc<Conversation>, AppError> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("no conversation with id {id:?}")))
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

    pub fn create(&self, cwd: &Path, title: Option<String>) -> Result<Arc<Conversation>, AppError> {
        // Checked and inserted under one write lock, so concurrent creates cannot
        // overshoot the limit; nothing in here awaits, and it is one SQLite insert.
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.hub.max_conversations {
            return Err(AppError::TooMany(format!(
                "the limit of {} conversations is reached",
                self.hub.max_conversations
            )));
        }
        let now = now_rfc3339();
        let record = ConversationRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            title: title.map(|t| t.trim().to_string()).unwrap_or_default(),
            cwd: cwd.display().to_string(),
            agent: self.hub.agent.name().to_string(),
            first_message_index: 0,
            created_at: now.clone(),
            updated_at: now,
        };
        self.hub.store.create_conversation(&record)?;
        let conversation = Conversation::open(record, self.hub.clone())?;
        map.insert(conversation.id.clone(), conversation.clone());
        drop(map);
        self.hub.notify_changed();
        Ok(conversation)
    }

    /// Stops every running turn, marking its tool calls `interrupted`, and waits
    /// (boundedly) for the results to be logged.
    pub async fn shutdown(&self, wait: Duration) {
        self.hub.closing.store(true, Ordering::SeqCst);
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
    }
}
