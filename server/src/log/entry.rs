//! One logged message with its SSE frame rendered once and shared by every reader.

use app::protocol::{Message, event};
use bytes::Bytes;

use crate::store::{AppendRow, Result, StoreError};

#[derive(Debug)]
pub struct Entry {
    pub idx: u64,
    /// `event: message\nid: N\ndata: <json>\n\n`
    frame: Bytes,
    /// Where the JSON sits inside `frame`.
    json_at: std::ops::Range<usize>,
}

impl Entry {
    /// An entry read back from the store.
    pub(super) fn new(idx: u64, json: &str) -> Self {
        let mut frame = Self::head(idx);
        let at = frame.len();
        frame.reserve(json.len() + 2);
        frame.extend_from_slice(json.as_bytes());
        Self::finish(idx, frame, at)
    }

    /// Serializes `message` straight into its frame: no intermediate JSON string.
    pub(super) fn render(message: &Message) -> Result<Self> {
        let mut frame = Self::head(message.idx);
        let at = frame.len();
        // Room for the usual message (a full output chunk) without regrowing.
        frame.reserve(message.content.len() + 512);
        serde_json::to_writer(&mut frame, message)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize message: {e}")))?;
        Ok(Self::finish(message.idx, frame, at))
    }

    fn head(idx: u64) -> Vec<u8> {
        format!("event: {}\nid: {idx}\ndata: ", event::MESSAGE).into_bytes()
    }

    fn finish(idx: u64, mut frame: Vec<u8>, json_start: usize) -> Self {
        // serde_json escapes every control character, so the JSON is one line and
        // cannot break the SSE framing.
        let json_at = json_start..frame.len();
        frame.extend_from_slice(b"\n\n");
        Entry {
            idx,
            json_at,
            frame: Bytes::from(frame),
        }
    }

    /// What the store keeps of this entry: the JSON is shared, not copied.
    pub(super) fn row(&self, message: &Message) -> AppendRow {
        AppendRow {
            idx: self.idx,
            kind: message.kind,
            end_of_turn: message.end_of_turn,
            json: self.frame.slice(self.json_at.clone()),
        }
    }

    pub fn frame(&self) -> Bytes {
        self.frame.clone()
    }

    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    pub fn json(&self) -> &str {
        // Both constructors write valid UTF-8 JSON into that range, so this cannot fail.
        std::str::from_utf8(&self.frame[self.json_at.clone()]).unwrap_or_default()
    }

    pub fn message(&self) -> Result<Message> {
        serde_json::from_str(self.json())
            .map_err(|e| StoreError::Corrupt(format!("message {}: {e}", self.idx)))
    }
}
