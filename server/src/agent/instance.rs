//! One conversation's instance of an agent: it runs the conversation's turns and
//! keeps whatever must outlive one turn (for ACP agents: the agent's process, its
//! session, the permission requests waiting for an answer).

use std::sync::Arc;

use app::protocol::{Choices, PermissionAnswer, PermissionRequest};
use async_trait::async_trait;
use serde_json::Value;

use super::{Turn, TurnError};
use crate::log::Log;
use crate::tools::{RunningTools, Toolbox};

/// What an instance is given of its conversation when it is opened.
#[derive(Clone)]
pub struct Attachment {
    /// The conversation's log: anything the instance says outside a turn goes here.
    pub log: Arc<Log>,
    /// The conversation's running tool calls (cancel, input, stop).
    pub running: Arc<RunningTools>,
    /// Limits and environment policy shared by every conversation.
    pub toolbox: Arc<Toolbox>,
    /// Tells the conversation's state streams that `status()` changed.
    pub on_change: Arc<dyn Fn() + Send + Sync>,
}

/// How a turn ended, for the conversation's `end_of_turn` message.
#[derive(Clone, Debug, Default)]
pub struct TurnEnd {
    /// The closing text.
    pub text: String,
    /// Token usage and cost, when the agent reports them.
    pub usage: Option<Value>,
}

impl TurnEnd {
    pub fn text(text: impl Into<String>) -> Self {
        TurnEnd {
            text: text.into(),
            usage: None,
        }
    }
}

/// What the conversation's state shows of its agent.
#[derive(Clone, Debug, Default)]
pub struct AgentStatus {
    pub pending_permissions: Vec<PermissionRequest>,
    pub modes: Option<Choices>,
    pub models: Option<Choices>,
    /// RFC 3339: the last time the agent said anything during the running turn.
    pub last_activity: Option<String>,
}

/// Which of the agent's choices a request changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoiceKind {
    Mode,
    Model,
}

/// Why a request to the agent was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing with that id (a permission request, a mode) exists.
    #[error("{0}")]
    NotFound(String),
    /// It exists but cannot be done now (already answered; no session yet).
    #[error("{0}")]
    Conflict(String),
    /// The agent failed to do it.
    #[error("{0}")]
    Failed(String),
}

#[async_trait]
pub trait Instance: Send + Sync {
    /// Runs one turn for the chat message `message` to its end.
    async fn run_turn(&self, turn: &Turn, message: &str) -> Result<TurnEnd, TurnError>;

    /// Pending permission requests, modes and models, for the state.
    fn status(&self) -> AgentStatus {
        AgentStatus::default()
    }

    /// Answers a pending permission request; the first answer wins.
    async fn answer_permission(
        &self,
        request_id: &str,
        _option_id: &str,
    ) -> Result<PermissionAnswer, ControlError> {
        Err(ControlError::NotFound(format!(
            "no pending permission request with id {request_id:?}"
        )))
    }

    /// Picks one of the agent's modes or models.
    async fn choose(&self, kind: ChoiceKind, _id: &str) -> Result<Choices, ControlError> {
        Err(ControlError::NotFound(match kind {
            ChoiceKind::Mode => "this agent has no modes".into(),
            ChoiceKind::Model => "this agent offers no choice of model".into(),
        }))
    }

    /// The conversation was restarted: the next turn starts a fresh agent session.
    fn reset(&self) {}

    /// The server is stopping: end whatever the instance runs.
    async fn shutdown(&self) {}
}
