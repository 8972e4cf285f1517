//! The wire protocol, defined once for the server and the browser.
//!
//! See `docs/protocol.md` for the prose version. Field names follow sketch's
//! `AgentMessage` where they apply; `None` fields are left out of the JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod agent;
mod changes;
mod share;

pub use agent::*;
pub use changes::*;
pub use share::*;

/// SSE event names.
pub mod event {
    pub const MESSAGE: &str = "message";
    pub const STATE: &str = "state";
    pub const HEARTBEAT: &str = "heartbeat";
    pub const CONVERSATION: &str = "conversation";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// What a person typed.
    User,
    /// What the agent said or decided; carries `tool_calls`.
    Agent,
    /// One chunk of a running tool call's terminal output.
    ToolOutput,
    /// The result of a tool call: exactly one per call.
    Tool,
    /// Something went wrong outside a tool call.
    Error,
    /// The conversation was restarted; the agent's context starts after it.
    Restart,
    /// A piece of the agent's reply; consecutive pieces form one reply (markdown).
    AgentText,
    /// A piece of the agent's reasoning, shown collapsed.
    Thought,
    /// A change to an agent's tool call: title, kind, status or content.
    ToolUpdate,
    /// The agent's plan, replacing the previous one.
    Plan,
    /// The agent asks before it acts; answered with `POST permission`.
    Permission,
    /// How a permission request was answered (or that it was withdrawn).
    PermissionAnswer,
    /// Something worth knowing that is neither chat nor an error (e.g. the agent's
    /// memory was reset).
    Notice,
    /// What a turn (or a revert) changed in the conversation's git work tree.
    Changes,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::User => "user",
            MessageType::Agent => "agent",
            MessageType::ToolOutput => "tool_output",
            MessageType::Tool => "tool",
            MessageType::Error => "error",
            MessageType::Restart => "restart",
            MessageType::AgentText => "agent_text",
            MessageType::Thought => "thought",
            MessageType::ToolUpdate => "tool_update",
            MessageType::Plan => "plan",
            MessageType::Permission => "permission",
            MessageType::PermissionAnswer => "permission_answer",
            MessageType::Notice => "notice",
            MessageType::Changes => "changes",
        }
    }
}

/// How a tool call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    /// Exit code 0.
    Completed,
    /// A non-zero exit code, or the tool could not start.
    Error,
    /// Someone cancelled it.
    Cancelled,
    /// The server stopped (or crashed) while it ran.
    Interrupted,
}

impl ToolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Completed => "completed",
            ToolStatus::Error => "error",
            ToolStatus::Cancelled => "cancelled",
            ToolStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub input: Value,
    pub tool_call_id: String,
    /// For agents' tool calls: what kind of work it is (`read`, `edit`, `delete`,
    /// `move`, `search`, `execute`, `think`, `fetch`, `other`), as ACP names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// One entry of a conversation's append-only log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Dense per conversation, from 0.
    pub idx: u64,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub conversation_id: String,
    /// RFC 3339, when the message was appended.
    pub timestamp: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub end_of_turn: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ToolStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    /// On `restart` messages: the revision checked out, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// On `tool_update` messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_update: Option<ToolUpdate>,
    /// On `plan` messages: the whole plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<PlanEntry>>,
    /// On `permission` messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<PermissionRequest>,
    /// On `permission_answer` messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_answer: Option<PermissionAnswer>,
    /// On `changes` messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
}

impl Message {
    /// A message not yet in the log: the log fills in `idx`, `conversation_id` and
    /// `timestamp` when it appends it.
    pub fn new(kind: MessageType, content: impl Into<String>) -> Self {
        Message {
            idx: 0,
            kind,
            conversation_id: String::new(),
            timestamp: String::new(),
            content: content.into(),
            end_of_turn: false,
            tool_name: None,
            input: None,
            tool_call_id: None,
            tool_calls: Vec::new(),
            tool_result: None,
            tool_error: None,
            exit_code: None,
            status: None,
            start_time: None,
            end_time: None,
            elapsed: None,
            usage: None,
            revision: None,
            tool_update: None,
            plan: None,
            permission: None,
            permission_answer: None,
            changes: None,
        }
    }
}

/// Whether the agent is working.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    #[default]
    Idle,
    Running,
}

/// A conversation's current state, sent as the `state` event and by `GET state`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    pub conversation_id: String,
    pub message_count: u64,
    pub title: String,
    pub working_dir: String,
    pub hostname: String,
    pub status: RunStatus,
    /// Ids of the tool calls running now.
    pub outstanding_tool_calls: Vec<String>,
    /// Chat messages waiting for the current turn to end.
    pub queued_messages: u64,
    /// Where the agent's context starts (the last restart marker, or 0).
    pub first_message_index: u64,
    pub agent: String,
    pub created_at: String,
    pub updated_at: String,
    /// Permission requests waiting for an answer, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_permissions: Vec<PermissionRequest>,
    /// The agent's session modes (e.g. `default`, `plan`), when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Choices>,
    /// The agent's models, when it offers a choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Choices>,
    /// A stop was asked for and the turn is winding down.
    #[serde(default)]
    pub stopping: bool,
    /// RFC 3339: the last time the running turn's agent said anything. A client
    /// shows how long a running agent has been silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<String>,
}

/// One row of the conversation list and of the global `conversation` event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: String,
    pub title: String,
    pub cwd: String,
    pub status: RunStatus,
    pub message_count: u64,
    /// Whether the last finished tool call failed (for the list's status dot).
    #[serde(default)]
    pub last_error: bool,
    /// The conversation's agent.
    #[serde(default)]
    pub agent: String,
    /// Permission requests waiting for an answer.
    #[serde(default)]
    pub pending_permissions: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// The agent that runs the conversation's turns (`GET /api/agents` lists them);
    /// the default agent when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// One agent this server offers, as `GET /api/agents` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    /// One line for people choosing an agent.
    pub description: String,
    /// Whether conversations get this agent when they name none.
    pub default: bool,
    /// Whether it can run here (its command was found).
    pub available: bool,
    /// Why it cannot run, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The command line that starts it (ACP agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartRequest {
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub initial_prompt: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputRequest {
    pub tool_call_id: String,
    pub data: String,
}

/// `POST chat` answers with where the message landed and whether it waits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatResponse {
    pub idx: u64,
    pub queued: bool,
}

/// `POST cancel` answers once the stop is under way.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CancelResponse {
    pub cancelling: bool,
}

/// `POST restart` answers with the restart marker's index and the new state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestartResponse {
    pub restart_idx: u64,
    pub state: ConversationState,
}

/// `POST input` answers with how many bytes were typed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InputResponse {
    pub written: usize,
}

/// `GET suggest-reprompt`: the chat message worth running again after a restart.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepromptSuggestion {
    pub prompt: String,
}

/// `GET commit-description`: a commit's full id and message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitDescription {
    pub description: String,
    pub revision: String,
}

/// The data of a `heartbeat` event.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    /// RFC 3339, when the server sent it.
    pub time: String,
}

/// The body of every error response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
