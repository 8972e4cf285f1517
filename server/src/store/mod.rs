//! Durable storage for conversations and their message logs, behind one async,
//! backend-neutral trait: nothing above this module knows which engine holds the data.
//!
//! The log module is the only caller for messages: it assigns indexes and keeps the
//! in-memory tail; a store only has to persist and read back. One implementation per
//! engine: `SqliteStore` (the embedded default) and `NatsStore` (JetStream, for
//! several replicas).

mod compress;
mod nats;
mod share_sql;
mod sqlite;
mod sqlite_writer;

pub use nats::{NatsOptions, NatsStore};

pub use sqlite::SqliteStore;

use app::protocol::MessageType;
use async_trait::async_trait;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine refused or failed the operation (disk full, I/O error, locked...).
    #[error("storage error: {0}")]
    Backend(String),
    #[error("cannot open the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The write was refused because the log moved on without this process (another
    /// replica appended): nothing was written.
    #[error("write conflict: {0}")]
    Conflict(String),
    /// The store stopped (its writer is gone); nothing more can be written.
    #[error("the store is closed")]
    Closed,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The persistent part of a conversation's metadata.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConversationRecord {
    pub id: String,
    pub title: String,
    pub cwd: String,
    /// The name of the agent that runs this conversation's turns.
    pub agent: String,
    pub first_message_index: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A read-only share link as stored: never its secret, only the secret's SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShareRecord {
    pub id: String,
    pub conversation_id: String,
    /// Lower-case hex SHA-256 of the secret in the link.
    pub secret_sha256: String,
    pub created_at: String,
    /// RFC 3339; `None`: valid until revoked.
    pub expires_at: Option<String>,
    pub revoked: bool,
}

/// What a following replica learns from the store as other replicas write.
#[derive(Debug)]
pub enum Followed {
    /// Messages appended to a conversation's log: consecutive indexes from `first`,
    /// each one's JSON.
    Messages {
        conversation: String,
        first: u64,
        rows: Vec<Bytes>,
    },
    /// A conversation created, or its record changed.
    Conversation(ConversationRecord),
    /// A share link created or revoked.
    Share(ShareRecord),
    /// The owner's latest view of a conversation (what runs, what waits),
    /// as it published it with `publish_status`.
    Status { conversation: String, json: Bytes },
}

/// Who runs a conversation, as a claim on it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This process: it runs the conversation's turns and writes its log.
    Mine,
    /// Another replica, named as it names itself.
    Theirs(String),
}

/// A message as stored: its index and serialized JSON.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub idx: u64,
    pub json: String,
}

/// What a store keeps of a message: its index, what indexes it, and its JSON.
#[derive(Clone, Debug)]
pub struct AppendRow {
    pub idx: u64,
    pub kind: MessageType,
    pub end_of_turn: bool,
    /// UTF-8 JSON, shared with the log's rendered frame rather than copied.
    pub json: Bytes,
}

impl AppendRow {
    /// The JSON as text; the log only ever builds rows from serialized JSON.
    pub fn json_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.json)
            .map_err(|_| StoreError::Corrupt(format!("message {} is not UTF-8", self.idx)))
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_conversation(&self, record: &ConversationRecord) -> Result<()>;
    async fn update_conversation(&self, record: &ConversationRecord) -> Result<()>;
    async fn conversations(&self) -> Result<Vec<ConversationRecord>>;
    /// One conversation's record. By default it is looked for in the whole list;
    /// an engine with keyed records reads just that one.
    async fn conversation(&self, id: &str) -> Result<Option<ConversationRecord>> {
        Ok(self.conversations().await?.into_iter().find(|r| r.id == id))
    }
    /// Appends messages with consecutive indexes, the first being the next index of
    /// that conversation: all of them or, on error, none.
    async fn append(&self, conversation: &str, rows: Vec<AppendRow>) -> Result<()>;
    /// Messages with `from <= idx < end`, in order, at most `limit` of them.
    async fn read(
        &self,
        conversation: &str,
        from: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>>;
    /// How many messages the conversation has (its next index).
    async fn message_count(&self, conversation: &str) -> Result<u64>;
    /// The index of the last message marked `end_of_turn`, if any.
    async fn last_end_of_turn(&self, conversation: &str) -> Result<Option<u64>>;
    /// Messages after `after` (all if `None`) whose type is one of `kinds`.
    async fn read_kinds_after(
        &self,
        conversation: &str,
        after: Option<u64>,
        kinds: &[MessageType],
    ) -> Result<Vec<StoredMessage>>;
    async fn create_share(&self, record: &ShareRecord) -> Result<()>;
    /// Every share, revoked ones included (they are few; the server caches them).
    async fn shares(&self) -> Result<Vec<ShareRecord>>;
    /// Marks a share revoked; `false` if there is no such share.
    async fn revoke_share(&self, id: &str) -> Result<bool>;

    /// Whether other processes may share this store (and so follow what this one
    /// writes); `false` for an embedded engine.
    fn shared_by_replicas(&self) -> bool {
        false
    }
    /// Publishes this process's view of a conversation's runtime state for the
    /// replicas that follow it; only the latest one matters.
    async fn publish_status(&self, _conversation: &str, _json: Bytes) -> Result<()> {
        Ok(())
    }
    /// Makes this process the owner of `conversation` unless another one is. An
    /// embedded engine has no other process: always `Mine`.
    async fn claim(&self, _conversation: &str) -> Result<Claim> {
        Ok(Claim::Mine)
    }
    /// Gives `conversation` up at once, so another process can claim it.
    async fn release(&self, _conversation: &str) {}
    /// Gives up every conversation this process owns (on a clean shutdown).
    async fn release_all(&self) {}
    /// Cancelled once this process lost a conversation it owned (another process
    /// took it while this one could not renew its claim): it must then stop
    /// everything it runs. `None` on an embedded engine.
    fn ownership_lost(&self) -> Option<tokio_util::sync::CancellationToken> {
        None
    }
    /// Which process owns `conversation`, if any; `None` on an embedded engine,
    /// where nobody else could.
    async fn owner(&self, _conversation: &str) -> Result<Option<String>> {
        Ok(None)
    }
    /// Everything other processes write from now on, in order per conversation,
    /// starting with the current records and statuses; `None` for an embedded engine.
    /// The feed ends when the receiver is dropped.
    async fn follow(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Followed>>> {
        Ok(None)
    }
}
