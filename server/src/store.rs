//! Durable storage for conversations and their message logs.
//!
//! The log module is the only caller: it assigns indexes and keeps the in-memory tail;
//! a store only has to persist and read back. One implementation per engine.

mod sqlite;

pub use sqlite::SqliteStore;

use app::protocol::MessageType;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The persistent part of a conversation's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: String,
    pub title: String,
    pub cwd: String,
    pub agent: String,
    pub first_message_index: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A message as stored: its index, kind and serialized JSON.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub idx: u64,
    pub json: String,
}

/// What a log needs to know about a message to index it.
pub struct AppendRow<'a> {
    pub idx: u64,
    pub kind: MessageType,
    pub end_of_turn: bool,
    pub json: &'a str,
}

pub trait Store: Send + Sync + 'static {
    fn create_conversation(&self, record: &ConversationRecord) -> Result<()>;
    fn update_conversation(&self, record: &ConversationRecord) -> Result<()>;
    fn conversations(&self) -> Result<Vec<ConversationRecord>>;
    /// Appends messages with consecutive indexes, the first being the next index of
    /// that conversation: all of them or, on error, none.
    fn append(&self, conversation: &str, rows: &[AppendRow<'_>]) -> Result<()>;
    /// Messages with `from <= idx < end`, in order, at most `limit` of them.
    fn read(
        &self,
        conversation: &str,
        from: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>>;
    /// How many messages the conversation has (its next index).
    fn message_count(&self, conversation: &str) -> Result<u64>;
    /// The index of the last message marked `end_of_turn`, if any.
    fn last_end_of_turn(&self, conversation: &str) -> Result<Option<u64>>;
    /// Messages after `after` (all if `None`) whose type is one of `kinds`.
    fn read_kinds_after(
        &self,
        conversation: &str,
        after: Option<u64>,
        kinds: &[MessageType],
    ) -> Result<Vec<StoredMessage>>;
}
