//! What coding agents add to the protocol: their tool calls' progress and content,
//! plans, permission requests, and the modes and models they offer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where an agent's tool call stands, as the agent reports it. The final word is
/// always the call's `tool` result message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolProgress {
    Pending,
    InProgress,
    Completed,
    Failed,
}

/// What an agent's tool call shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolContent {
    /// Plain text (markdown) the agent attached to the call.
    Text { text: String },
    /// A file change. `old_text` is absent for a new file.
    Diff {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old_text: Option<String>,
        new_text: String,
    },
    /// A terminal Tether runs for the call; its output is the call's `tool_output`.
    Terminal { terminal_id: String },
}

/// A change to an agent's tool call (`tool_update` messages). Fields left out did
/// not change; `content`, when present, replaces the previous content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ToolProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ToolContent>>,
    /// Files the call works on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
}

/// One step of an agent's plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    pub content: String,
    /// `high`, `medium` or `low`.
    pub priority: String,
    /// `pending`, `in_progress` or `completed`.
    pub status: String,
}

/// One answer an agent offers to a permission request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionOption {
    /// The agent's own id: differs per agent, so clients key on `kind`.
    pub option_id: String,
    pub name: String,
    /// `allow_once`, `allow_always`, `reject_once` or `reject_always`.
    pub kind: String,
}

/// An agent asks before it acts (`permission` messages, and the state while it waits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionRequest {
    /// Tether's id for the request: what `POST permission` names.
    pub request_id: String,
    /// The tool call it is about.
    pub tool_call_id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    pub options: Vec<PermissionOption>,
}

/// How a permission request ended (`permission_answer` messages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionAnswer {
    pub request_id: String,
    pub tool_call_id: String,
    /// The chosen option; absent when the request was withdrawn (turn stopped,
    /// agent gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_id: Option<String>,
    /// The chosen option's kind (`allow_once`, …) or `cancelled`.
    pub outcome: String,
}

/// A choice the agent offers (modes, models) and the current pick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Choices {
    pub current: String,
    pub options: Vec<Choice>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST permission`: answers a pending permission request with one of its options.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionResponseRequest {
    pub request_id: String,
    pub option_id: String,
}

/// `POST permission` answers with the answer as logged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PermissionResponseAck {
    pub answer: PermissionAnswer,
}

/// `POST mode` / `POST model`: picks one of the agent's modes or models.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceRequest {
    pub id: String,
}

/// `POST mode` / `POST model` answer with the new choices.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChoiceResponse {
    pub choices: Choices,
}
