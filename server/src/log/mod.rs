//! A conversation's append-only message log: the single source of truth.
//!
//! `append` assigns the next index, persists the message, keeps it in a small
//! in-memory tail and only then tells readers the log grew. Readers never receive
//! messages pushed at them: each one reads from its own cursor (`read`) and waits on
//! `subscribe` for growth, so a slow reader costs nothing but its own progress, and
//! the growth signal belongs to the log, whichever store is underneath.

mod entry;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use app::protocol::Message;
use tokio::sync::watch;

pub use entry::Entry;

use crate::store::{Result, Store, StoreError};

/// Recent messages kept in memory so live readers rarely touch the store.
const TAIL_MAX_ENTRIES: usize = 4096;
const TAIL_MAX_BYTES: usize = 16 * 1024 * 1024;

struct Tail {
    /// The index the next appended message gets (= the number of messages).
    next_idx: u64,
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
}

impl Tail {
    fn first_idx(&self) -> u64 {
        self.next_idx - self.entries.len() as u64
    }
}

pub struct Log {
    /// The conversation this log belongs to.
    conversation_id: String,
    /// Where messages are persisted before anyone may read them.
    store: Arc<dyn Store>,
    /// Held for a whole append, storage write included, so indexes are handed out
    /// and published in order; guards the index the next message gets. An async
    /// lock because it is held across the store's write.
    writer: tokio::sync::Mutex<u64>,
    /// Recent entries; a std lock held only briefly, so readers never wait for the disk.
    tail: Mutex<Tail>,
    /// The number of published messages; readers wait on it for growth.
    len: watch::Sender<u64>,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Log {
    pub async fn open(conversation_id: &str, store: Arc<dyn Store>) -> Result<Arc<Self>> {
        let next_idx = store.message_count(conversation_id).await?;
        Ok(Arc::new(Log {
            conversation_id: conversation_id.to_string(),
            store,
            writer: tokio::sync::Mutex::new(next_idx),
            tail: Mutex::new(Tail {
                next_idx,
                entries: VecDeque::new(),
                bytes: 0,
            }),
            len: watch::Sender::new(next_idx),
        }))
    }

    /// Appends `message`, filling in its index, conversation id and timestamp.
    /// On a storage error nothing is appended and the index is not used up.
    pub async fn append(self: &Arc<Self>, message: Message) -> Result<Arc<Entry>> {
        let mut entries = self.append_all(vec![message]).await?;
        entries
            .pop()
            .ok_or_else(|| StoreError::Corrupt("append produced no entry".into()))
    }

    /// Appends `messages` in order, persisted together: all of them or, on a
    /// storage error, none (and no index is used up).
    pub async fn append_all(self: &Arc<Self>, messages: Vec<Message>) -> Result<Vec<Arc<Entry>>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // A task of its own: once the store has the batch, the caller going away (a
        // client hanging up mid-request) must not keep the log from publishing it,
        // or the next append would reuse its indexes.
        let log = Arc::clone(self);
        tokio::spawn(async move { log.write(messages).await })
            .await
            .map_err(|e| StoreError::Backend(format!("the append did not finish: {e}")))?
    }

    async fn write(&self, mut messages: Vec<Message>) -> Result<Vec<Arc<Entry>>> {
        let mut next_idx = self.writer.lock().await;
        let first = *next_idx;
        let timestamp = now_rfc3339();
        let mut out = Vec::with_capacity(messages.len());
        let mut rows = Vec::with_capacity(messages.len());
        for (idx, message) in (first..).zip(&mut messages) {
            message.idx = idx;
            message.conversation_id.clone_from(&self.conversation_id);
            message.timestamp.clone_from(&timestamp);
            let entry = Entry::render(message)?;
            rows.push(entry.row(message));
            out.push(Arc::new(entry));
        }
        if let Err(err) = self.store.append(&self.conversation_id, rows).await {
            if matches!(err, StoreError::Conflict(_)) {
                self.catch_up(&mut next_idx).await;
            }
            return Err(err);
        }
        *next_idx += out.len() as u64;
        // Published while still holding `writer`, so the length only ever grows.
        self.publish(first, &out);
        drop(next_idx);
        Ok(out)
    }

    /// Puts `entries` (indexes from `first` on) in the tail and tells readers.
    /// The caller holds `writer`. After a gap the tail starts again at `first`:
    /// what lies before it is read from the store.
    fn publish(&self, first: u64, entries: &[Arc<Entry>]) {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        if first != tail.next_idx {
            tail.entries.clear();
            tail.bytes = 0;
            tail.next_idx = first;
        }
        for entry in entries {
            tail.next_idx += 1;
            tail.bytes += entry.frame_len();
            tail.entries.push_back(entry.clone());
        }
        while tail.entries.len() > TAIL_MAX_ENTRIES
            || (tail.bytes > TAIL_MAX_BYTES && tail.entries.len() > 1)
        {
            if let Some(old) = tail.entries.pop_front() {
                tail.bytes -= old.frame_len();
            }
        }
        let len = tail.next_idx;
        drop(tail);
        self.len.send_replace(len);
    }

    /// Takes messages another process appended to this log (on a replica that
    /// follows the conversation's owner): readers see them exactly as if this process had
    /// written them. Rows it already has are skipped, so a feed that overlaps what
    /// `open` counted changes nothing.
    pub async fn follow(&self, first: u64, rows: Vec<bytes::Bytes>) -> Result<()> {
        let mut next_idx = self.writer.lock().await;
        let end = first + rows.len() as u64;
        if end <= *next_idx {
            return Ok(());
        }
        let from = first.max(*next_idx);
        let mut entries = Vec::with_capacity((end - from) as usize);
        for (idx, json) in (first..).zip(rows) {
            if idx < from {
                continue;
            }
            let json = std::str::from_utf8(&json).map_err(|_| {
                StoreError::Corrupt(format!(
                    "message {idx} of {} is not UTF-8",
                    self.conversation_id
                ))
            })?;
            entries.push(Arc::new(Entry::new(idx, json)));
        }
        *next_idx = end;
        self.publish(from, &entries);
        Ok(())
    }

    /// Takes every message the store holds beyond this log's end, as `follow` would
    /// have: for a replica about to write to a log another one wrote, so that its
    /// next append follows the last of them.
    pub async fn sync(&self) -> Result<()> {
        let mut next_idx = self.writer.lock().await;
        loop {
            let count = self.store.message_count(&self.conversation_id).await?;
            if count <= *next_idx {
                return Ok(());
            }
            let first = *next_idx;
            let rows = self
                .store
                .read(&self.conversation_id, first, count, 1024)
                .await?;
            let mut entries = Vec::with_capacity(rows.len());
            for (expected, row) in (first..).zip(rows) {
                if row.idx != expected {
                    break;
                }
                entries.push(Arc::new(Entry::new(row.idx, &row.json)));
            }
            if entries.is_empty() {
                return Err(StoreError::Corrupt(format!(
                    "conversation {} has a gap at index {first}",
                    self.conversation_id
                )));
            }
            *next_idx += entries.len() as u64;
            self.publish(first, &entries);
        }
    }

    /// After a refused append (another writer got there first: a replica that lost
    /// a conversation in the middle of a write), takes the store's messages as the log's,
    /// so the next append follows them instead of being refused for good.
    async fn catch_up(&self, next_idx: &mut u64) {
        let Ok(count) = self.store.message_count(&self.conversation_id).await else {
            return;
        };
        if count <= *next_idx {
            return;
        }
        tracing::warn!(
            conversation = %self.conversation_id,
            from = *next_idx,
            to = count,
            "the log grew without this process; following it"
        );
        *next_idx = count;
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.entries.clear();
        tail.bytes = 0;
        tail.next_idx = count;
        drop(tail);
        self.len.send_replace(count);
    }

    /// The number of messages in the log.
    pub fn len(&self) -> u64 {
        *self.len.borrow()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver that sees the log's length change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.len.subscribe()
    }

    /// Up to `limit` entries with `from <= idx < end`, in order.
    pub async fn read(&self, from: u64, end: u64, limit: usize) -> Result<Vec<Arc<Entry>>> {
        // Clamped to what is published: the store may already hold a batch whose
        // entries are not in the tail yet, and nobody may read those before `len` says so.
        let end = {
            let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
            let end = end.min(tail.next_idx);
            if from >= end {
                return Ok(Vec::new());
            }
            let first = tail.first_idx();
            if from >= first {
                let skip = (from - first) as usize;
                let take = ((end - from) as usize).min(limit);
                return Ok(tail.entries.iter().skip(skip).take(take).cloned().collect());
            }
            end
        };
        let rows = self
            .store
            .read(&self.conversation_id, from, end, limit)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (expected, row) in (from..).zip(rows) {
            if row.idx != expected {
                return Err(StoreError::Corrupt(format!(
                    "conversation {} has a gap at index {expected}",
                    self.conversation_id
                )));
            }
            out.push(Arc::new(Entry::new(row.idx, &row.json)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AppendRow, SqliteStore};
    use app::protocol::MessageType;

    fn output(text: &str) -> Message {
        Message::new(MessageType::ToolOutput, text)
    }

    #[tokio::test]
    async fn a_batch_gets_consecutive_indexes_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let log = Log::open("c1", Arc::clone(&store)).await.unwrap();
        log.append(output("first")).await.unwrap();
        let batch = log
            .append_all(vec![output("a"), output("b\n\"c\""), output("d")])
            .await
            .unwrap();
        assert_eq!(batch.iter().map(|e| e.idx).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(log.len(), 4);
        // Both the in-memory tail and a fresh log reading the database agree.
        let reopened = Log::open("c1", store).await.unwrap();
        for reader in [&log, &reopened] {
            let entries = reader.read(0, u64::MAX, 10).await.unwrap();
            let texts: Vec<String> = entries
                .iter()
                .map(|e| e.message().unwrap().content)
                .collect();
            assert_eq!(texts, ["first", "a", "b\n\"c\"", "d"]);
            assert!(entries.iter().all(|e| e.frame().ends_with(b"\n\n")));
        }
    }

    #[tokio::test]
    async fn a_failed_batch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let log = Log::open("c1", Arc::clone(&store)).await.unwrap();
        // A row the log does not know about makes the second insert of the batch fail.
        store
            .append(
                "c1",
                vec![AppendRow {
                    idx: 1,
                    kind: MessageType::ToolOutput,
                    end_of_turn: false,
                    json: bytes::Bytes::from_static(b"{}"),
                }],
            )
            .await
            .unwrap();
        assert!(
            log.append_all(vec![output("a"), output("b")])
                .await
                .is_err()
        );
        assert_eq!(log.len(), 0, "no index used up");
        assert!(log.read(0, u64::MAX, 10).await.unwrap().is_empty());
        assert!(
            store.read("c1", 0, 1, 10).await.unwrap().is_empty(),
            "the first row of the failed batch was rolled back"
        );
    }

    #[tokio::test]
    async fn an_append_whose_caller_goes_away_is_still_published() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let log = Log::open("c1", Arc::clone(&store)).await.unwrap();
        // Polled once, so the write is under way, then dropped: a client hanging up.
        let mut abandoned = Box::pin(log.append(output("a")));
        assert!(futures::poll!(abandoned.as_mut()).is_pending());
        drop(abandoned);
        let next = log
            .append(output("b"))
            .await
            .expect("the next append works");
        assert_eq!(next.idx, 1, "the abandoned append kept its index");
        let texts: Vec<String> = log
            .read(0, u64::MAX, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.message().unwrap().content)
            .collect();
        assert_eq!(texts, ["a", "b"]);
    }
}
