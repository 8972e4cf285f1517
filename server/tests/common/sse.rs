//! `Sse`: a conversation or events stream that keeps every event it received, with
//! waits on conditions and the stream invariants.

use std::time::Duration;

use app::protocol::{ConversationState, ConversationSummary, Message, MessageType};
use serde_json::Value;
use tether_testkit::{Head, SseReader};

use super::WAIT;
use super::assert::assert_dense;

#[derive(Debug, Clone)]
pub enum Ev {
    Message {
        message: Box<Message>,
        /// The `data:` line, parsed but otherwise untouched.
        raw: Value,
        /// The SSE `id:` field.
        id: String,
    },
    State(Box<ConversationState>),
    Heartbeat(Value),
    Conversation(Box<ConversationSummary>),
}

/// An SSE client that keeps every event it received.
pub struct Sse {
    inner: SseReader,
    pub events: Vec<Ev>,
    /// Set once the stream has ended (cleanly or not).
    pub ended: Option<String>,
}

impl Sse {
    pub fn new(reader: SseReader) -> Self {
        Sse {
            inner: reader,
            events: Vec::new(),
            ended: None,
        }
    }

    /// The response's status line and headers.
    pub fn head(&self) -> &Head {
        self.inner.head()
    }

    /// Reads one event (waiting at most `timeout`). `Ok(false)` when the stream ended.
    pub async fn read_one(
        &mut self,
        timeout: Duration,
    ) -> Result<bool, tokio::time::error::Elapsed> {
        if self.ended.is_some() {
            return Ok(false);
        }
        let next = tokio::time::timeout(timeout, self.inner.next()).await?;
        let event = match next {
            Ok(None) => {
                self.ended = Some("end of stream".into());
                return Ok(false);
            }
            Err(err) => {
                self.ended = Some(format!("error: {err}"));
                return Ok(false);
            }
            Ok(Some(event)) => event,
        };
        let data = event.data_str();
        let ev = match event.name.as_str() {
            "message" => {
                let raw: Value = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("message data is not JSON ({e}): {data}"));
                let message: Message = serde_json::from_value(raw.clone())
                    .unwrap_or_else(|e| panic!("not a Message ({e}): {data}"));
                Ev::Message {
                    message: Box::new(message),
                    raw,
                    id: event.id.clone().unwrap_or_default(),
                }
            }
            "state" => Ev::State(Box::new(
                serde_json::from_str(&data).unwrap_or_else(|e| panic!("not a state ({e}): {data}")),
            )),
            "heartbeat" => Ev::Heartbeat(
                serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("heartbeat data is not JSON ({e}): {data}")),
            ),
            "conversation" => Ev::Conversation(Box::new(
                serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("not a summary ({e}): {data}")),
            )),
            other => panic!("unexpected SSE event {other:?}: {data}"),
        };
        self.events.push(ev);
        Ok(true)
    }

    /// Reads until `cond(self)` holds; panics after `timeout` or if the stream ends first.
    pub async fn wait_until(&mut self, what: &str, timeout: Duration, cond: impl Fn(&Sse) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !cond(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_one(left).await {
                Ok(true) => {}
                Ok(false) => panic!(
                    "the stream ended ({:?}) while waiting for {what}; last events: {}",
                    self.ended,
                    self.tail_summary()
                ),
                Err(_) => panic!(
                    "timed out after {timeout:?} waiting for {what}; last events: {}",
                    self.tail_summary()
                ),
            }
        }
    }

    /// Waits until `n` messages with `end_of_turn` have arrived.
    pub async fn wait_end_of_turns(&mut self, n: usize) {
        self.wait_until(&format!("{n} end_of_turn message(s)"), WAIT, |s| {
            s.messages().iter().filter(|m| m.end_of_turn).count() >= n
        })
        .await;
    }

    /// Waits until the output of the first tool call contains `needle`.
    pub async fn wait_output_contains(&mut self, needle: &str) {
        self.wait_until(&format!("output containing {needle:?}"), WAIT, |s| {
            s.all_output().contains(needle)
        })
        .await;
    }

    /// Waits until a message with index `idx` has arrived.
    pub async fn wait_idx(&mut self, idx: u64) {
        self.wait_until(&format!("message {idx}"), WAIT, |s| {
            s.messages().iter().any(|m| m.idx >= idx)
        })
        .await;
    }

    /// Reads until the stream ends; panics if it does not within `timeout`.
    pub async fn wait_ended(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_one(left).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(_) => panic!(
                    "the stream did not end within {timeout:?}; last events: {}",
                    self.tail_summary()
                ),
            }
        }
    }

    pub fn messages(&self) -> Vec<&Message> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Message { message, .. } => Some(&**message),
                _ => None,
            })
            .collect()
    }

    /// `(idx, raw JSON)` of every message event.
    pub fn raw_messages(&self) -> Vec<(u64, Value)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Message { message, raw, .. } => Some((message.idx, raw.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn states(&self) -> Vec<&ConversationState> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::State(s) => Some(&**s),
                _ => None,
            })
            .collect()
    }

    pub fn heartbeats(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Ev::Heartbeat(_)))
            .count()
    }

    pub fn summaries(&self) -> Vec<&ConversationSummary> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Conversation(s) => Some(&**s),
                _ => None,
            })
            .collect()
    }

    pub fn idxs(&self) -> Vec<u64> {
        self.messages().iter().map(|m| m.idx).collect()
    }

    /// Every `tool_output` content received, concatenated in order.
    pub fn all_output(&self) -> String {
        self.messages()
            .iter()
            .filter(|m| m.kind == MessageType::ToolOutput)
            .map(|m| m.content.as_str())
            .collect()
    }

    /// Checks the invariants of every message event: the SSE id is the idx, the ids
    /// are dense and increasing from `first`.
    pub fn assert_dense_from(&self, first: u64) {
        for e in &self.events {
            if let Ev::Message { message, id, .. } = e {
                assert_eq!(id, &message.idx.to_string(), "SSE id != idx");
            }
        }
        assert_dense(&self.messages(), first);
    }

    fn tail_summary(&self) -> String {
        let start = self.events.len().saturating_sub(8);
        self.events[start..]
            .iter()
            .map(|e| match e {
                Ev::Message { message, .. } => {
                    let mut content = message.content.clone();
                    if content.len() > 80 {
                        let mut cut = 80;
                        while !content.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        content.truncate(cut);
                    }
                    format!(
                        "[{} {:?} eot={} status={:?} {content:?}]",
                        message.idx, message.kind, message.end_of_turn, message.status
                    )
                }
                Ev::State(s) => format!(
                    "[state {:?} count={} tools={:?}]",
                    s.status, s.message_count, s.outstanding_tool_calls
                ),
                Ev::Heartbeat(_) => "[heartbeat]".into(),
                Ev::Conversation(s) => format!("[conversation {} {:?}]", s.id, s.status),
            })
            .collect::<Vec<_>>()
            .join(" ")
            + &format!(" ({} events in all)", self.events.len())
    }
}
