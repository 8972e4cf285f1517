//! The timeline's rows and the live cards inside them.

use std::sync::Arc;

use leptos::prelude::*;
use serde_json::Value;

use super::CARD_MAX_LINES;
use crate::ansi::Terminal;
use crate::protocol::{
    Changes, PermissionAnswer, PermissionRequest, PlanEntry, ToolContent, ToolProgress, ToolStatus,
};
use crate::usage::Usage;

/// What a tool call card shows; every field is its own signal.
#[derive(Clone, Copy)]
pub struct ToolCard {
    pub id: StoredValue<String>,
    pub command: RwSignal<String>,
    /// Rendered output; `version` changes whenever it does.
    pub term: StoredValue<Terminal>,
    pub version: RwSignal<u64>,
    /// `None` while running.
    pub status: RwSignal<Option<ToolStatus>>,
    pub exit_code: RwSignal<Option<i32>>,
    pub summary: RwSignal<String>,
    /// RFC 3339 start, for the ticking clock.
    pub started: StoredValue<String>,
    /// Final duration in nanoseconds.
    pub elapsed: RwSignal<Option<u64>>,
    /// Set the moment someone presses Cancel, before the server confirms.
    pub stopping: RwSignal<bool>,
    /// When this card stands for the user's message (a shell command, whose text is
    /// the message itself): the time it was sent. Its bubble is then not shown.
    pub prompt: RwSignal<Option<String>>,
    /// The card's text for Find, with the `version` and command it was made from:
    /// Find runs on every applied message, and re-reading every card's screen each
    /// time made a long conversation slower with each line of output.
    search: StoredValue<Option<CardText>>,
}

impl ToolCard {
    pub(super) fn new(id: &str, command: &str, started: &str) -> Self {
        ToolCard {
            id: StoredValue::new(id.to_string()),
            command: RwSignal::new(command.to_string()),
            term: StoredValue::new(Terminal::with_max_lines(CARD_MAX_LINES)),
            version: RwSignal::new(0),
            status: RwSignal::new(None),
            exit_code: RwSignal::new(None),
            summary: RwSignal::new(String::new()),
            started: StoredValue::new(started.to_string()),
            elapsed: RwSignal::new(None),
            stopping: RwSignal::new(false),
            prompt: RwSignal::new(None),
            search: StoredValue::new(None),
        }
    }

    pub fn is_running(&self) -> bool {
        self.status.get().is_none()
    }
}

/// An agent's tool call: what the agent says about it (updated in place by
/// `tool_update`), around the same card a shell command has for its terminal
/// output and its result.
#[derive(Clone, Copy)]
pub struct AgentCall {
    pub card: ToolCard,
    pub title: RwSignal<String>,
    /// ACP's kind: `read`, `edit`, `execute`, …
    pub kind: RwSignal<String>,
    pub progress: RwSignal<Option<ToolProgress>>,
    pub input: RwSignal<Option<Value>>,
    pub content: RwSignal<Vec<ToolContent>>,
    pub locations: RwSignal<Vec<String>>,
}

impl AgentCall {
    pub(super) fn new(card: ToolCard, title: &str, kind: Option<&str>) -> Self {
        AgentCall {
            card,
            title: RwSignal::new(title.to_string()),
            kind: RwSignal::new(kind.unwrap_or("other").to_string()),
            progress: RwSignal::new(None),
            input: RwSignal::new(None),
            content: RwSignal::new(Vec::new()),
            locations: RwSignal::new(Vec::new()),
        }
    }
}

/// A card's searchable text as of one `version` and command. Shared, and kept
/// lowercased too, so matching a card that did not change copies nothing.
#[derive(Clone)]
struct CardText {
    version: u64,
    command: String,
    text: Arc<str>,
    lower: Arc<str>,
}

/// One row of the timeline.
#[derive(Clone)]
pub enum Item {
    User {
        idx: u64,
        text: String,
        time: String,
        /// Set once the shell card running this message shows it instead.
        folded: RwSignal<bool>,
    },
    Agent {
        idx: u64,
        text: String,
        end_of_turn: bool,
        /// Token counts of the turn this message closes.
        usage: Option<Usage>,
    },
    Tool {
        idx: u64,
        card: ToolCard,
    },
    AgentTool {
        idx: u64,
        call: AgentCall,
    },
    /// An agent's reply: consecutive `agent_text` pieces, markdown.
    Reply {
        idx: u64,
        text: RwSignal<String>,
    },
    /// Consecutive `thought` pieces.
    Thought {
        idx: u64,
        text: RwSignal<String>,
    },
    /// The turn's plan; later `plan` messages of the turn replace its entries.
    Plan {
        idx: u64,
        entries: RwSignal<Vec<PlanEntry>>,
    },
    Approval {
        idx: u64,
        request: PermissionRequest,
        /// Set when its `permission_answer` arrives (or this browser's answer lands).
        answer: RwSignal<Option<PermissionAnswer>>,
    },
    Notice {
        idx: u64,
        text: String,
    },
    Error {
        idx: u64,
        text: String,
    },
    Restart {
        idx: u64,
        text: String,
    },
    /// What a turn (or a revert) changed in the work tree; opens the review panel.
    Changes {
        idx: u64,
        changes: Changes,
        /// Set to the index of the revert's `changes` message once this turn is
        /// reverted.
        reverted_by: RwSignal<Option<u64>>,
    },
}

impl Item {
    pub fn idx(&self) -> u64 {
        match self {
            Item::User { idx, .. }
            | Item::Agent { idx, .. }
            | Item::Tool { idx, .. }
            | Item::AgentTool { idx, .. }
            | Item::Reply { idx, .. }
            | Item::Thought { idx, .. }
            | Item::Plan { idx, .. }
            | Item::Approval { idx, .. }
            | Item::Notice { idx, .. }
            | Item::Error { idx, .. }
            | Item::Restart { idx, .. }
            | Item::Changes { idx, .. } => *idx,
        }
    }

    /// Whether Find's query, already lowercased, occurs in this row. Cards answer
    /// from their cached lowercased text: a flood changes one card, and the others
    /// should cost nothing each time Find runs again.
    pub fn matches(&self, query_lower: &str) -> bool {
        match self {
            Item::Tool { card, .. } => card_text(card).lower.contains(query_lower),
            Item::AgentTool { call, .. } => {
                agent_text(call).to_lowercase().contains(query_lower)
                    || card_text(&call.card).lower.contains(query_lower)
            }
            _ => self.search_text().to_lowercase().contains(query_lower),
        }
    }

    /// Plain text to search in.
    pub fn search_text(&self) -> String {
        match self {
            // Its card carries the same text; one hit, not two.
            Item::User { folded, .. } if folded.get_untracked() => String::new(),
            Item::User { text, .. }
            | Item::Agent { text, .. }
            | Item::Notice { text, .. }
            | Item::Error { text, .. }
            | Item::Restart { text, .. } => text.clone(),
            Item::Reply { text, .. } | Item::Thought { text, .. } => text.get_untracked(),
            Item::Tool { card, .. } => card_text(card).text.to_string(),
            Item::AgentTool { call, .. } => {
                let mut text = agent_text(call);
                text.push_str(&card_text(&call.card).text);
                text
            }
            Item::Plan { entries, .. } => entries.with_untracked(|e| {
                e.iter()
                    .map(|e| e.content.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            Item::Approval { request, .. } => request.title.clone(),
            Item::Changes { changes, .. } => {
                let mut text = crate::review::summary(changes);
                for f in &changes.files {
                    text.push('\n');
                    text.push_str(&crate::review::display_path(f));
                }
                text
            }
        }
    }
}

/// An agent call's own text (title and content), without its card's output.
fn agent_text(call: &AgentCall) -> String {
    let mut text = call.title.get_untracked();
    text.push('\n');
    call.content.with_untracked(|content| {
        for c in content {
            match c {
                ToolContent::Text { text: t } => text.push_str(t),
                ToolContent::Diff { path, new_text, .. } => {
                    text.push_str(path);
                    text.push('\n');
                    text.push_str(new_text);
                }
                ToolContent::Terminal { .. } => {}
            }
            text.push('\n');
        }
    });
    text
}

fn card_text(card: &ToolCard) -> CardText {
    let version = card.version.get_untracked();
    let command = card.command.get_untracked();
    let cached = card.search.with_value(|cache| {
        cache
            .as_ref()
            .filter(|c| c.version == version && c.command == command)
            .cloned()
    });
    if let Some(cached) = cached {
        return cached;
    }
    let mut text = command.clone();
    text.push('\n');
    card.term.with_value(|t| text.push_str(&t.plain_text()));
    let fresh = CardText {
        version,
        command,
        lower: text.to_lowercase().into(),
        text: text.into(),
    };
    card.search.set_value(Some(fresh.clone()));
    fresh
}
