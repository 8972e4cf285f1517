//! A conversation's append-only message log: the single source of truth.
//!
//! `append` assigns the next index, persists the message, keeps it in a small
//! in-memory tail and only then tells readers the log grew. Readers never receive
//! messages pushed at them: each one reads from its own cursor (`read`), so a slow
//! reader costs nothing but its own progress.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use app::protocol::{Message, event};
use bytes::Bytes;
use tokio::sync::watch;

use crate::store::{AppendRow, Result, Store, StoreError};

/// Recent messages kept in memory so live readers rarely touch the database.
const TAIL_MAX_ENTRIES: usize = 4096;
const TAIL_MAX_BYTES: usize = 16 * 1024 * 1024;

/// One logged message, with its SSE frame rendered once and shared by every reader.
#[derive(Debug)]
pub struct Entry {
    pub idx: u64,
    /// `event: message\nid: N\ndata: <json>\n\n`
    frame: Bytes,
    /// Where the JSON sits inside `frame`.
    json_at: std::ops::Range<usize>,
}

impl Entry {
    fn new(idx: u64, json: &str) -> Self {
        // serde_json escapes every control character, so the JSON is one line and
        // cannot break the SSE framing.
        let head = format!("event: {}\nid: {idx}\ndata: ", event::MESSAGE);
        let mut frame = String::with_capacity(head.len() + json.len() + 2);
        frame.push_str(&head);
        frame.push_str(json);
        frame.push_str("\n\n");
        Entry {
            idx,
            json_at: head.len()..head.len() + json.len(),
            frame: Bytes::from(frame),
        }
    }

    pub fn frame(&self) -> Bytes {
        self.frame.clone()
    }

    pub fn json(&self) -> &str {
        // The range was cut from a `String` at char boundaries, so this cannot fail.
        std::str::from_utf8(&self.frame[self.json_at.clone()]).unwrap_or_default()
    }

    pub fn message(&self) -> Result<Message> {
        serde_json::from_str(self.json())
            .map_err(|e| StoreError::Corrupt(format!("message {}: {e}", self.idx)))
    }
}

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
    /// Next index and recent entries; held only for in-memory work and the insert.
    tail: Mutex<Tail>,
    /// The number of messages; readers wait on it for growth.
    len: watch::Sender<u64>,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Log {
    pub fn open(conversation_id: &str, store: Arc<dyn Store>) -> Result<Self> {
        let next_idx = store.message_count(conversation_id)?;
        Ok(Log {
            conversation_id: conversation_id.to_string(),
            store,
            tail: Mutex::new(Tail {
                next_idx,
                entries: VecDeque::new(),
                bytes: 0,
            }),
            len: watch::Sender::new(next_idx),
        })
    }

    /// Appends `message`, filling in its index, conversation id and timestamp.
    /// On a storage error nothing is appended and the index is not used up.
    pub fn append(&self, mut message: Message) -> Result<Arc<Entry>> {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        message.idx = tail.next_idx;
        message.conversation_id.clone_from(&self.conversation_id);
        message.timestamp = now_rfc3339();
        let json = serde_json::to_string(&message)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize message: {e}")))?;
        self.store.append(
            &self.conversation_id,
            AppendRow {
                idx: message.idx,
                kind: message.kind,
                end_of_turn: message.end_of_turn,
                json: &json,
            },
        )?;
        let entry = Arc::new(Entry::new(message.idx, &json));
        tail.next_idx += 1;
        tail.bytes += entry.frame.len();
        tail.entries.push_back(entry.clone());
        while tail.entries.len() > TAIL_MAX_ENTRIES
            || (tail.bytes > TAIL_MAX_BYTES && tail.entries.len() > 1)
        {
            if let Some(old) = tail.entries.pop_front() {
                tail.bytes -= old.frame.len();
            }
        }
        let len = tail.next_idx;
        drop(tail);
        self.len.send_replace(len);
        Ok(entry)
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
    pub fn read(&self, from: u64, end: u64, limit: usize) -> Result<Vec<Arc<Entry>>> {
        {
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
        }
        let rows = self.store.read(&self.conversation_id, from, end, limit)?;
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
