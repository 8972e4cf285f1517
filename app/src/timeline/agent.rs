//! Applying what coding agents add: reply and thought pieces, tool call updates,
//! plans and permission requests.

use leptos::prelude::*;

use super::{AgentCall, Item, Timeline, ToolCard};
use crate::protocol::{Message, MessageType};

impl Timeline {
    /// Makes an agent call's card and its row at `idx`.
    pub(super) fn agent_call(
        &self,
        id: &str,
        started: &str,
        idx: u64,
        title: &str,
        kind: Option<&str>,
    ) -> AgentCall {
        let card = ToolCard::new(id, "", started);
        let call = AgentCall::new(card, title, kind);
        self.cards.update_value(|c| {
            c.insert(id.to_string(), card);
        });
        self.agent_calls.update_value(|c| {
            c.insert(id.to_string(), call);
        });
        self.add(Item::AgentTool { idx, call });
        call
    }

    /// A piece of a reply or a thought: grows the open one of its kind (`open`, as
    /// it was before this message) or starts a new row.
    pub(super) fn apply_piece(&self, m: Message, open: Option<(MessageType, RwSignal<String>)>) {
        let text = match open {
            Some((kind, text)) if kind == m.kind => {
                text.update(|t| t.push_str(&m.content));
                text
            }
            _ => {
                let text = RwSignal::new(m.content);
                self.add(if m.kind == MessageType::Thought {
                    Item::Thought { idx: m.idx, text }
                } else {
                    Item::Reply { idx: m.idx, text }
                });
                text
            }
        };
        self.open.set_value(Some((m.kind, text)));
    }

    pub(super) fn apply_tool_update(&self, m: Message) {
        let Some(update) = m.tool_update else { return };
        let id = m.tool_call_id.unwrap_or_default();
        let known = self.agent_calls.with_value(|c| c.get(&id).copied());
        let call = match known {
            Some(call) => call,
            // Its call came before the loaded window.
            None => self.agent_call(
                &id,
                &m.timestamp,
                m.idx,
                update.title.as_deref().unwrap_or(""),
                update.kind.as_deref(),
            ),
        };
        if let Some(title) = update.title {
            call.title.set(title);
        }
        if let Some(kind) = update.kind {
            call.kind.set(kind);
        }
        if let Some(progress) = update.progress {
            call.progress.set(Some(progress));
        }
        if let Some(input) = update.input {
            if let Some(command) = input.get("command").and_then(|c| c.as_str()) {
                call.card.command.set(command.to_string());
            }
            call.input.set(Some(input));
        }
        if let Some(content) = update.content {
            call.content.set(content);
        }
        if !update.locations.is_empty() {
            call.locations.set(update.locations);
        }
    }

    pub(super) fn apply_plan(&self, m: Message) {
        let entries = m.plan.unwrap_or_default();
        match self.plan.get_value() {
            Some(plan) => plan.set(entries),
            None => {
                let plan = RwSignal::new(entries);
                self.plan.set_value(Some(plan));
                self.add(Item::Plan {
                    idx: m.idx,
                    entries: plan,
                });
            }
        }
    }

    pub(super) fn apply_permission(&self, m: Message) {
        let Some(request) = m.permission else { return };
        let answer = RwSignal::new(None);
        self.permissions.update_value(|p| {
            p.insert(request.request_id.clone(), answer);
        });
        self.add(Item::Approval {
            idx: m.idx,
            request,
            answer,
        });
    }

    pub(super) fn apply_permission_answer(&self, m: Message) {
        let Some(answer) = m.permission_answer else {
            return;
        };
        // A request before the loaded window: the state's pending list had it.
        if let Some(slot) = self
            .permissions
            .with_value(|p| p.get(&answer.request_id).copied())
        {
            slot.set(Some(answer));
        }
    }
}
