//! Agents decide what a turn does. They never touch SQL or SSE: everything they say
//! or run goes through the [`Turn`] they are handed, which appends to the log.
//!
//! `shell` is the offline default: each chat message is a bash command. An LLM agent
//! or an external agent CLI implements the same trait.

use app::protocol::{Message, MessageType, ToolCall, ToolStatus};
use async_trait::async_trait;

use crate::turn::{Turn, TurnError};

#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// Shown in the conversation state.
    fn name(&self) -> &'static str;

    /// Runs one turn for the chat message `message` and returns the closing text,
    /// which the conversation appends as the `end_of_turn` message.
    async fn run_turn(&self, turn: &Turn<'_>, message: &str) -> Result<String, TurnError>;
}

/// Runs every chat message as `bash -c <message>` in a fresh pseudo-terminal.
pub struct ShellAgent;

pub fn new_tool_call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

#[async_trait]
impl Agent for ShellAgent {
    fn name(&self) -> &'static str {
        "shell"
    }

    async fn run_turn(&self, turn: &Turn<'_>, message: &str) -> Result<String, TurnError> {
        let tool_call_id = new_tool_call_id();
        let mut call = Message::new(MessageType::Agent, "");
        call.tool_calls = vec![ToolCall {
            name: "bash".into(),
            input: serde_json::json!({ "command": message }),
            tool_call_id: tool_call_id.clone(),
        }];
        turn.emit(call)?;
        let outcome = turn.run_bash(&tool_call_id, message).await?;
        Ok(match outcome.status {
            ToolStatus::Completed => "Command completed.".to_string(),
            ToolStatus::Error => format!("Command failed: {}.", outcome.summary),
            ToolStatus::Cancelled => "Command cancelled.".to_string(),
            ToolStatus::Interrupted => "Command interrupted.".to_string(),
        })
    }
}
