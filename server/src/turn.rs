//! What an agent can do during a turn: say things (append messages) and run tools.

use std::sync::Arc;
use std::time::Instant;

use app::protocol::{Message, MessageType, ToolStatus};
use tokio_util::sync::CancellationToken;

use crate::chunk::MAX_CHUNK_CHARS;
use crate::conversation::Conversation;
use crate::log::now_rfc3339;
use crate::pty::{self, ExitInfo, PtyEvent, SpawnSpec};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// How a tool call ended.
pub struct ToolOutcome {
    pub status: ToolStatus,
    pub exit_code: Option<i32>,
    /// A few words: "exit code 2", "killed by SIGKILL".
    pub summary: String,
}

/// At most this many output chunks are written together (64 × 8,000 chars).
const MAX_BATCH: usize = 64;

pub struct Turn<'a> {
    conversation: &'a Conversation,
    /// Cancelled when someone stops the turn.
    cancel: CancellationToken,
}

impl<'a> Turn<'a> {
    pub(crate) fn new(conversation: &'a Conversation, cancel: CancellationToken) -> Self {
        Turn {
            conversation,
            cancel,
        }
    }

    /// True once someone stopped this turn; agents should wrap up.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Appends a message to the conversation's log.
    pub fn emit(&self, message: Message) -> Result<u64, TurnError> {
        Ok(self.conversation.append(message)?)
    }

    /// Runs `command` with `bash -c` in a fresh PTY in the conversation's directory,
    /// streaming its output as `tool_output` messages, and appends exactly one `tool`
    /// result message, whatever happens.
    pub async fn run_bash(
        &self,
        tool_call_id: &str,
        command: &str,
    ) -> Result<ToolOutcome, TurnError> {
        let started = Instant::now();
        let start_time = now_rfc3339();
        let mut tail = OutputTail::default();
        let outcome = if self.cancel.is_cancelled() {
            ToolOutcome {
                status: ToolStatus::Cancelled,
                exit_code: None,
                summary: "cancelled before it started".into(),
            }
        } else {
            self.run_pty(tool_call_id, command, &mut tail).await
        };
        let mut result = Message::new(MessageType::Tool, outcome.summary.clone());
        result.tool_call_id = Some(tool_call_id.to_string());
        result.tool_name = Some("bash".into());
        result.input = Some(serde_json::json!({ "command": command }));
        result.exit_code = outcome.exit_code;
        result.status = Some(outcome.status);
        result.tool_error = Some(outcome.status != ToolStatus::Completed);
        result.tool_result = Some(tail.finish());
        result.start_time = Some(start_time);
        result.end_time = Some(now_rfc3339());
        result.elapsed = Some(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let emitted = self.emit(result);
        // Only now, with the result in the log, does the state stop listing the call:
        // a client never sees it gone from the state before its result.
        self.conversation
            .finish_tool(tool_call_id, outcome.status != ToolStatus::Completed);
        emitted?;
        Ok(outcome)
    }

    async fn run_pty(
        &self,
        tool_call_id: &str,
        command: &str,
        tail: &mut OutputTail,
    ) -> ToolOutcome {
        let spec = SpawnSpec {
            command: command.to_string(),
            cwd: self.conversation.cwd(),
            env_remove: self.conversation.hub.env_remove.clone(),
            env_set: Vec::new(),
            cols: 120,
            rows: 32,
        };
        let _slot = match self.conversation.hub.start_tool() {
            Ok(slot) => slot,
            Err(why) => {
                return ToolOutcome {
                    status: ToolStatus::Error,
                    exit_code: None,
                    summary: format!("not started: {why}"),
                };
            }
        };
        let (handle, mut events) = match pty::spawn(spec) {
            Ok(spawned) => spawned,
            Err(err) => {
                return ToolOutcome {
                    status: ToolStatus::Error,
                    exit_code: None,
                    summary: format!("could not start: {err}"),
                };
            }
        };
        let handle = Arc::new(handle);
        let stopped_early = self.cancel.is_cancelled().then_some(ToolStatus::Cancelled);
        self.conversation
            .register_tool(tool_call_id, handle.clone(), stopped_early);
        if stopped_early.is_some() {
            handle.cancel();
        }
        let mut exit = ExitInfo {
            exit_code: None,
            signal: None,
        };
        let mut write_failed = None;
        let mut batch = Vec::new();
        while let Some(event) = events.recv().await {
            // Whatever else is already waiting is appended with this event in one
            // write: during a flood that is several chunks per commit.
            let mut next = Some(event);
            while let Some(event) = next.take() {
                match event {
                    // After a failed write the rest is drained and dropped.
                    PtyEvent::Output(_) if write_failed.is_some() => {}
                    PtyEvent::Output(text) => {
                        tail.push(&text);
                        let mut chunk = Message::new(MessageType::ToolOutput, text);
                        chunk.tool_call_id = Some(tool_call_id.to_string());
                        batch.push(chunk);
                    }
                    PtyEvent::Exited(info) => exit = info,
                }
                if batch.len() < MAX_BATCH {
                    next = events.try_recv().ok();
                }
            }
            if batch.is_empty() {
                continue;
            }
            if let Err(err) = self.conversation.append_all(std::mem::take(&mut batch)) {
                // The log cannot take more: stop the command rather than lose
                // output silently.
                tracing::error!(conversation = %self.conversation.id, %err, "cannot append output; stopping the tool call");
                write_failed = Some(err.to_string());
                handle.cancel();
            }
        }
        let stop = self.conversation.tool_stop(tool_call_id);
        let describe = || match (&exit.exit_code, &exit.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by {signal}"),
            (None, None) => "ended without an exit status".into(),
        };
        let (status, summary) = match (stop, write_failed) {
            (_, Some(err)) => (
                ToolStatus::Error,
                format!("stopped: output could not be saved ({err})"),
            ),
            (Some(ToolStatus::Cancelled), None) => {
                (ToolStatus::Cancelled, format!("cancelled ({})", describe()))
            }
            (Some(ToolStatus::Interrupted), None) => (
                ToolStatus::Interrupted,
                format!("interrupted: the server is shutting down ({})", describe()),
            ),
            (_, None) if exit.exit_code == Some(0) => (ToolStatus::Completed, describe()),
            (_, None) => (ToolStatus::Error, describe()),
        };
        ToolOutcome {
            status,
            exit_code: exit.exit_code,
            summary,
        }
    }
}

/// The last `MAX_CHUNK_CHARS` characters of a tool call's output, for its result.
#[derive(Default)]
struct OutputTail {
    text: String,
}

impl OutputTail {
    fn push(&mut self, chunk: &str) {
        // A full piece of ASCII is exactly the tail by itself (the usual case in a
        // flood), so nothing before it needs keeping or counting.
        if chunk.len() >= MAX_CHUNK_CHARS && chunk.is_ascii() {
            self.text.clear();
        }
        self.text.push_str(chunk);
        // Trim only now and then, so a flood does not re-copy the buffer per chunk.
        if self.text.len() > 8 * MAX_CHUNK_CHARS * 4 {
            self.trim();
        }
    }

    fn trim(&mut self) {
        let count = self.text.chars().count();
        if count > MAX_CHUNK_CHARS {
            let cut = self
                .text
                .char_indices()
                .nth(count - MAX_CHUNK_CHARS)
                .map_or(0, |(at, _)| at);
            self.text.drain(..cut);
        }
    }

    fn finish(mut self) -> String {
        self.trim();
        self.text
    }
}
