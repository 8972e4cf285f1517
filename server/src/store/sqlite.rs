//! The SQLite engine: one file in WAL mode. Writes go to one connection owned by a
//! dedicated writer thread, so commits never run on the async runtime's workers and
//! never wait behind a lock there; reads use a few read-only connections on the
//! blocking pool, so replaying streams never wait behind the writer.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use app::protocol::MessageType;
use async_trait::async_trait;
use rusqlite::types::{Type, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, params};
use tokio::sync::oneshot;

use super::compress::{pack, unpack};
use super::share_sql;
use super::sqlite_writer::{self, WriteJob};
use super::{AppendRow, ConversationRecord, Result, ShareRecord, Store, StoreError, StoredMessage};

const READERS: usize = 4;
pub struct SqliteStore {
    /// Jobs for the writer thread, which owns the only writing connection and runs
    /// them one at a time, in order. Dropping the store ends the thread.
    writer: mpsc::Sender<WriteJob>,
    /// Read-only connections; WAL lets them read while the writer writes.
    readers: Arc<Readers>,
}

struct Readers {
    /// Picked round-robin, preferring an idle one.
    connections: Vec<Mutex<Connection>>,
    /// Which reader the next read tries first.
    next: AtomicUsize,
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
    json TEXT NOT NULL, -- or a BLOB: the same JSON, zstd-compressed
    PRIMARY KEY (conversation_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);
";

/// SQLite's errors become the backend-neutral kind, with SQLite's own words.
fn backend(err: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("database error: {err}"))
}

impl SqliteStore {
    /// Opens (creating if needed) `tether.db` in `dir`. Blocking: call it at start-up
    /// or from the blocking pool.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join("tether.db");
        let writer = Connection::open(&path).map_err(backend)?;
        // WAL + NORMAL: a committed message survives a crash of this process (kill -9);
        // only a power loss can take the last transactions.
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        writer
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        writer.execute_batch(SCHEMA).map_err(backend)?;
        let connections = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(backend)?;
        let jobs = sqlite_writer::start(writer)
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: jobs,
            readers: Arc::new(Readers {
                connections,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `f` on the writer thread and waits for its answer without blocking the
    /// runtime. If the caller goes away, the job still runs to its end.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.writer.send(job).map_err(|_| StoreError::Closed)?;
        answer
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(backend)
    }

    /// Runs `f` on a read-only connection. With an idle connection at hand it runs
    /// inline: a read is a few page-cache lookups, and a thread hop per batch halved
    /// replay throughput. When every connection is busy it goes to the blocking
    /// pool, so a runtime worker never waits on a lock.
    async fn read_with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let f = match self.readers.try_with(f) {
            Ok(result) => return result.map_err(backend),
            Err(f) => f,
        };
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| StoreError::Backend(format!("a read failed: {e}")))?
            .map_err(backend)
    }
}

impl Readers {
    /// Runs `f` on an idle connection, or hands `f` back when all are busy.
    fn try_with<T, F>(&self, f: F) -> std::result::Result<rusqlite::Result<T>, F>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T>,
    {
        let n = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(conn) = self.connections[(start + i) % n].try_lock() {
                return Ok(f(&conn));
            }
        }
        Err(f)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let n = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // Prefer an idle reader; if all are busy, wait for the one whose turn it is.
        for i in 0..n {
            if let Ok(conn) = self.connections[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.connections[start % n]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&conn)
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
    let unreadable = |why: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(1, Type::Blob, why)
    };
    let json = match row.get_ref(1)? {
        ValueRef::Blob(packed) => {
            let bytes = unpack(packed).map_err(|e| unreadable(Box::new(e)))?;
            String::from_utf8(bytes).map_err(|e| unreadable(Box::new(e)))?
        }
        _ => row.get(1)?,
    };
    Ok(StoredMessage {
        idx: row.get::<_, i64>(0)? as u64,
        json,
    })
}

/// SQLite integers are signed; indexes never get near the limit, but clamp rather than wrap.
fn sql_idx(idx: u64) -> i64 {
    i64::try_from(idx).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_conversation(&self, r: &ConversationRecord) -> Result<()> {
        let r = r.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO conversations (id, title, cwd, agent, first_message_index, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.id, r.title, r.cwd, r.agent, sql_idx(r.first_message_index), r.created_at, r.updated_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn update_conversation(&self, r: &ConversationRecord) -> Result<()> {
        let r = r.clone();
        self.write(move |c| {
            c.execute(
                "UPDATE conversations SET title = ?2, cwd = ?3, agent = ?4, first_message_index = ?5, updated_at = ?6
                 WHERE id = ?1",
                params![r.id, r.title, r.cwd, r.agent, sql_idx(r.first_message_index), r.updated_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn conversations(&self) -> Result<Vec<ConversationRecord>> {
        self.read_with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, title, cwd, agent, first_message_index, created_at, updated_at
                 FROM conversations ORDER BY created_at",
            )?;
            stmt.query_map([], record_from_row)?.collect()
        })
        .await
    }

    async fn append(&self, conversation: &str, rows: Vec<AppendRow>) -> Result<()> {
        // Compressed here, on the caller's task, so the one writer every
        // conversation shares spends its time only on writing.
        let mut packed = Vec::with_capacity(rows.len());
        for row in &rows {
            packed.push(pack(row.json_str()?));
        }
        let conversation = conversation.to_string();
        self.write(move |c| {
            // One transaction for the lot: a flood's chunks then share one commit
            // (and one rewrite of the b-tree leaf) instead of paying for one each.
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO messages (conversation_id, idx, kind, end_of_turn, json) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for (row, packed) in rows.iter().zip(&packed) {
                    // Checked above; an empty string cannot happen.
                    let json = std::str::from_utf8(&row.json).unwrap_or_default();
                    let stored: &dyn ToSql = match packed {
                        Some(packed) => packed,
                        None => &json,
                    };
                    stmt.execute(params![
                        conversation,
                        sql_idx(row.idx),
                        row.kind.as_str(),
                        row.end_of_turn,
                        stored
                    ])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn read(
        &self,
        conversation: &str,
        from: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let conversation = conversation.to_string();
        self.read_with(move |c| {
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
        .await
    }

    async fn message_count(&self, conversation: &str) -> Result<u64> {
        let conversation = conversation.to_string();
        self.read_with(move |c| {
            c.query_row(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM messages WHERE conversation_id = ?1",
                params![conversation],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
        .await
    }

    async fn last_end_of_turn(&self, conversation: &str) -> Result<Option<u64>> {
        let conversation = conversation.to_string();
        self.read_with(move |c| {
            c.query_row(
                "SELECT MAX(idx) FROM messages WHERE conversation_id = ?1 AND end_of_turn = 1",
                params![conversation],
                |row| row.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(|v| v.flatten().map(|n| n as u64))
        })
        .await
    }

    async fn read_kinds_after(
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
        let conversation = conversation.to_string();
        self.read_with(move |c| {
            let mut stmt = c.prepare(&sql)?;
            stmt.query_map(params![conversation, from], stored_from_row)?
                .collect()
        })
        .await
    }

    async fn create_share(&self, record: &ShareRecord) -> Result<()> {
        let record = record.clone();
        self.write(move |c| share_sql::insert(c, &record)).await
    }

    async fn shares(&self) -> Result<Vec<ShareRecord>> {
        self.read_with(share_sql::all).await
    }

    async fn revoke_share(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |c| share_sql::revoke(c, &id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::compress::random_text;

    fn row(idx: u64, json: String) -> AppendRow {
        AppendRow {
            idx,
            kind: MessageType::ToolOutput,
            end_of_turn: false,
            json: json.into(),
        }
    }

    /// What SQLite holds for a message: its storage class and size in bytes.
    fn stored_as(dir: &Path, idx: u64) -> (String, i64) {
        let c = Connection::open(dir.join("tether.db")).expect("open the file");
        c.query_row(
            "SELECT typeof(json), length(CAST(json AS BLOB)) FROM messages WHERE idx = ?1",
            params![sql_idx(idx)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the row")
    }

    #[tokio::test]
    async fn long_output_is_stored_compressed_and_read_back_exactly() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path()).expect("open the store");
        let lines: String = (1..=1500).map(|i| format!("{i}\\r\\n")).collect();
        let long = serde_json::json!({ "content": lines }).to_string();
        let short = serde_json::json!({ "content": "ok" }).to_string();
        let rows = vec![row(0, long.clone()), row(1, short.clone())];
        store.append("c", rows).await.expect("append");

        let (class, size) = stored_as(dir.path(), 0);
        assert_eq!(class, "blob");
        assert!((size as usize) < long.len() / 3, "{size} of {}", long.len());
        assert_eq!(stored_as(dir.path(), 1).0, "text");

        let read = store.read("c", 0, 2, 10).await.expect("read");
        let json: Vec<&str> = read.iter().map(|m| m.json.as_str()).collect();
        assert_eq!(json, [long.as_str(), short.as_str()]);
        let kinds = store
            .read_kinds_after("c", None, &[MessageType::ToolOutput])
            .await
            .expect("read by kind");
        assert_eq!(kinds[0].json, long);
    }

    #[tokio::test]
    async fn the_wal_is_checkpointed_so_it_stays_small() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path()).expect("open the store");
        // About 10 MB of output that does not compress (so it is stored as it is),
        // in flood-sized transactions of 16 messages.
        let mut idx = 0;
        for _ in 0..20 {
            let rows = (0..16)
                .map(|_| {
                    let text = random_text(32_000, idx + 1);
                    idx += 1;
                    row(idx - 1, serde_json::json!({ "content": text }).to_string())
                })
                .collect();
            store.append("c", rows).await.expect("append");
        }
        let wal = std::fs::metadata(dir.path().join("tether.db-wal"))
            .expect("the WAL file")
            .len();
        assert!(wal < 4 << 20, "the WAL grew to {wal} bytes");
        let read = store.read("c", 0, idx, 1000).await.expect("read");
        assert_eq!(read.len() as u64, idx);
    }
}
