//! What an agent can do during a turn: capabilities, not the conversation. It can
//! append to the log, run a tool, read its context since the last restart, and see
//! whether the turn was stopped.

use app::protocol::Message;
use tokio_util::sync::CancellationToken;

use crate::log::Log;
use crate::store::StoreError;
use crate::tools::{Tool, ToolContext, ToolOutcome, call};

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The log could not be written or read: the turn cannot be told truthfully.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Most messages `context` reads at once.
const CONTEXT_PAGE: usize = 10_000;

pub struct Turn {
    /// The conversation's log, tools and directory, and the turn's cancellation.
    tools: ToolContext,
    /// Where the agent's context starts (the last restart marker, or 0).
    first_message_index: u64,
}

impl Turn {
    pub(crate) fn new(tools: ToolContext, first_message_index: u64) -> Self {
        Turn {
            tools,
            first_message_index,
        }
    }

    /// A fresh id for a tool call.
    pub fn new_tool_call_id() -> String {
        format!("call_{}", uuid::Uuid::new_v4().simple())
    }

    /// True once someone stopped this turn; agents should wrap up.
    pub fn is_cancelled(&self) -> bool {
        self.tools.cancel.is_cancelled()
    }

    pub fn cancellation(&self) -> &CancellationToken {
        &self.tools.cancel
    }

    fn log(&self) -> &std::sync::Arc<Log> {
        &self.tools.log
    }

    /// The conversation's working directory.
    pub fn cwd(&self) -> &std::path::Path {
        &self.tools.cwd
    }

    /// Appends messages to the conversation's log in one write.
    pub async fn append_all(&self, messages: Vec<Message>) -> Result<(), TurnError> {
        if !messages.is_empty() {
            self.log().append_all(messages).await?;
        }
        Ok(())
    }

    /// Appends a message to the conversation's log; returns its index.
    pub async fn append(&self, message: Message) -> Result<u64, TurnError> {
        Ok(self.log().append(message).await?.idx)
    }

    /// Runs `tool` as call `tool_call_id`, streaming its output into the log, and
    /// appends exactly one result message for it, whatever happens.
    pub async fn run_tool(
        &self,
        tool_call_id: &str,
        tool: &dyn Tool,
    ) -> Result<ToolOutcome, TurnError> {
        Ok(call::run(&self.tools, tool_call_id, tool).await?)
    }

    /// The conversation since the last restart, this turn's messages included.
    pub async fn context(&self) -> Result<Vec<Message>, TurnError> {
        let mut out = Vec::new();
        let mut cursor = self.first_message_index;
        loop {
            let page = self.log().read(cursor, u64::MAX, CONTEXT_PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            cursor = last.idx + 1;
            for entry in &page {
                out.push(entry.message()?);
            }
        }
    }
}
