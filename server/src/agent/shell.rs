//! The `shell` agent: every chat message is a bash command in a fresh terminal.

use app::protocol::{Message, MessageType, ToolCall, ToolStatus};
use async_trait::async_trait;

use std::sync::Arc;

use super::{Agent, Attachment, Instance, Turn, TurnEnd, TurnError};
use crate::tools::{Bash, Tool};

pub struct ShellAgent;

impl Agent for ShellAgent {
    fn name(&self) -> &str {
        "shell"
    }

    fn description(&self) -> &str {
        "Runs each message as a bash command in a terminal"
    }

    fn open(&self, _attachment: Attachment) -> Arc<dyn Instance> {
        // Nothing outlives a turn: every command gets a fresh terminal.
        Arc::new(ShellAgent)
    }
}

#[async_trait]
impl Instance for ShellAgent {
    async fn run_turn(&self, turn: &Turn, message: &str) -> Result<TurnEnd, TurnError> {
        let tool = Bash {
            command: message.to_string(),
        };
        let tool_call_id = Turn::new_tool_call_id();
        let mut call = Message::new(MessageType::Agent, "");
        call.tool_calls = vec![ToolCall {
            name: tool.name().to_string(),
            input: tool.input(),
            tool_call_id: tool_call_id.clone(),
            kind: None,
        }];
        turn.append(call).await?;
        let outcome = turn.run_tool(&tool_call_id, &tool).await?;
        Ok(TurnEnd::text(closing_text(
            outcome.status,
            &outcome.summary,
        )))
    }
}

/// The turn's closing line, only when it says something the call's own result does
/// not: its status and exit code already show a finished or failed command, so
/// repeating them is noise in the timeline. A command that never started, one that
/// was stopped, and one cut short by the server keep their words.
fn closing_text(status: ToolStatus, summary: &str) -> String {
    match status {
        ToolStatus::Completed => String::new(),
        ToolStatus::Error if summary.starts_with("could not start") => {
            format!("Command failed: {summary}.")
        }
        ToolStatus::Error => String::new(),
        ToolStatus::Cancelled => "Command cancelled.".to_string(),
        ToolStatus::Interrupted => "Command interrupted.".to_string(),
    }
}
