//! The SQLite engine: one file in WAL mode, one writer connection and a few readers,
//! so replaying streams never wait behind the writer.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use app::protocol::MessageType;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{AppendRow, ConversationRecord, Result, Store, StoreError, StoredMessage};

const READERS: usize = 4;

pub struct SqliteStore {
    /// All writes go through this connection, one at a time.
    writer: Mutex<Connection>,
    /// Read-only connections, picked round-robin; WAL lets them read while the writer writes.
    readers: Vec<Mutex<Connection>>,
    /// Which reader the next read tries first.
    next_reader: AtomicUsize,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    cwd TEXT NOT NULL,
    agent TEXT NOT NULL,
    first_message_index INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    end_of_turn INTEGER NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (conversation_id, idx)
) WITHOUT ROWID;
";

impl SqliteStore {
    /// Opens (creating if needed) `tether.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join("tether.db");
        let writer = Connection::open(&path)?;
        // WAL + NORMAL: a committed message survives a crash of this process (kill -9);
        // only a power loss can take the last transactions.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        writer.execute_batch(SCHEMA)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    fn with_writer<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&conn)?)
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        // Prefer an idle reader; if all are busy, wait for the one whose turn it is.
        for i in 0..self.readers.len() {
            if let Ok(conn) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return Ok(f(&conn)?);
            }
        }
        let conn = self.readers[start % self.readers.len()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&conn)?)
    }
}

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationRecord> {
    Ok(ConversationRecord {
        id: row.get(0)?,
        title: row.get(1)?,
        cwd: row.get(2)?,
        agent: row.get(3)?,
        first_message_index: row.get::<_, i64>(4)? as u64,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

fn stored_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        idx: row.get::<_, i64>(0)? as u64,
        json: row.get(1)?,
    })
}

/// SQLite integers are signed; indexes never get near the limit, but clamp rather than wrap.
fn sql_idx(idx: u64) -> i64 {
    i64::try_from(idx).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn create_conversation(&self, r: &ConversationRecord) -> Result<()> {
        self.with_writer(|c| {
            c.execute(
                "INSERT INTO conversations (id, title, cwd, agent, first_message_index, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.id, r.title, r.cwd, r.agent, sql_idx(r.first_message_index), r.created_at, r.updated_at],
            )
            .map(|_| ())
        })
    }

    fn update_conversation(&self, r: &ConversationRecord) -> Result<()> {
        self.with_writer(|c| {
            c.execute(
                "UPDATE conversations SET title = ?2, cwd = ?3, agent = ?4, first_message_index = ?5, updated_at = ?6
                 WHERE id = ?1",
                params![r.id, r.title, r.cwd, r.agent, sql_idx(r.first_message_index), r.updated_at],
            )
            .map(|_| ())
        })
    }

    fn conversations(&self) -> Result<Vec<ConversationRecord>> {
        self.with_reader(|c| {
            let mut stmt = c.prepare(
                "SELECT id, title, cwd, agent, first_message_index, created_at, updated_at
                 FROM conversations ORDER BY created_at",
            )?;
            stmt.query_map([], record_from_row)?.collect()
        })
    }

    fn append(&self, conversation: &str, rows: &[AppendRow<'_>]) -> Result<()> {
        self.with_writer(|c| {
            // One transaction for the lot: a flood's chunks then share one commit
            // (and one rewrite of the b-tree leaf) instead of paying for one each.
            let tx = c.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO messages (conversation_id, idx, kind, end_of_turn, json) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for row in rows {
                    stmt.execute(params![
                        conversation,
                        sql_idx(row.idx),
                        row.kind.as_str(),
                        row.end_of_turn,
                        row.json
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn read(
        &self,
        conversation: &str,
        from: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT idx, json FROM messages WHERE conversation_id = ?1 AND idx >= ?2 AND idx < ?3
                 ORDER BY idx LIMIT ?4",
            )?;
            stmt.query_map(
                params![conversation, sql_idx(from), sql_idx(end), i64::try_from(limit).unwrap_or(i64::MAX)],
                stored_from_row,
            )?
            .collect()
        })
    }

    fn message_count(&self, conversation: &str) -> Result<u64> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM messages WHERE conversation_id = ?1",
                params![conversation],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
    }

    fn last_end_of_turn(&self, conversation: &str) -> Result<Option<u64>> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT MAX(idx) FROM messages WHERE conversation_id = ?1 AND end_of_turn = 1",
                params![conversation],
                |row| row.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(|v| v.flatten().map(|n| n as u64))
        })
    }

    fn read_kinds_after(
        &self,
        conversation: &str,
        after: Option<u64>,
        kinds: &[MessageType],
    ) -> Result<Vec<StoredMessage>> {
        let from = after.map_or(0, |a| sql_idx(a).saturating_add(1));
        // The kinds are our own enum names, never user input, so they can be inlined.
        let kinds: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
        let sql = format!(
            "SELECT idx, json FROM messages WHERE conversation_id = ?1 AND idx >= ?2 AND kind IN ({}) ORDER BY idx",
            kinds.join(",")
        );
        self.with_reader(|c| {
            let mut stmt = c.prepare(&sql)?;
            stmt.query_map(params![conversation, from], stored_from_row)?
                .collect()
        })
    }
}
