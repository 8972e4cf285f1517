//! The conversation as the browser holds it: messages applied strictly in `idx`
//! order (duplicates ignored, gaps held back until filled) and folded into
//! reactive pieces, so one new output chunk touches one card, not the timeline.

use std::collections::{HashMap, VecDeque};

use leptos::prelude::*;

use crate::protocol::{
    ConversationState, Message, MessageType, PermissionAnswer, PlanEntry, ToolStatus,
};
use crate::usage::Usage;

mod agent;
mod items;
mod sequencer;

#[cfg(test)]
mod tests;

pub use items::{AgentCall, Item, ToolCard};
pub use sequencer::Sequencer;

/// Output lines a card keeps; older ones are dropped from view (the log keeps all).
pub const CARD_MAX_LINES: usize = 200_000;

/// The whole conversation view-model.
#[derive(Clone, Copy)]
pub struct Timeline {
    /// Orders incoming messages; lives outside the reactive graph.
    seq: StoredValue<Sequencer<Message>>,
    /// Rows, in order; changes only when a row is added.
    pub items: RwSignal<Vec<Item>>,
    /// Cards by tool call id, so output chunks find theirs without a scan.
    cards: StoredValue<HashMap<String, ToolCard>>,
    /// Agents' calls by tool call id (their cards are in `cards` too).
    agent_calls: StoredValue<HashMap<String, AgentCall>>,
    /// The reply or thought the next piece of the same kind grows.
    open: StoredValue<Option<(MessageType, RwSignal<String>)>>,
    /// The running turn's plan, which a new `plan` message replaces.
    plan: StoredValue<Option<RwSignal<Vec<PlanEntry>>>>,
    /// Shell conversations' user messages whose command has no card yet, oldest
    /// first: text and fold flag.
    unrun: StoredValue<VecDeque<(String, RwSignal<bool>, String)>>,
    /// Approval cards' answers by request id.
    permissions: StoredValue<HashMap<String, RwSignal<Option<PermissionAnswer>>>>,
    /// The "reverted by" mark of each `changes` row, by its message index, for a
    /// later revert to set.
    reverts: StoredValue<HashMap<u64, RwSignal<Option<u64>>>>,
    pub state: RwSignal<Option<ConversationState>>,
    /// Messages applied so far (for the "new messages" counter).
    pub applied: RwSignal<u64>,
    /// Token counts over the turns loaded here; `None` until a turn reports any.
    pub usage_total: RwSignal<Option<Usage>>,
    /// The first index this view holds; earlier ones were not loaded.
    pub base: u64,
}

impl Timeline {
    pub fn new(base: u64) -> Self {
        Timeline {
            seq: StoredValue::new(Sequencer::starting_at(base)),
            items: RwSignal::new(Vec::new()),
            cards: StoredValue::new(HashMap::new()),
            agent_calls: StoredValue::new(HashMap::new()),
            open: StoredValue::new(None),
            plan: StoredValue::new(None),
            permissions: StoredValue::new(HashMap::new()),
            reverts: StoredValue::new(HashMap::new()),
            unrun: StoredValue::new(VecDeque::new()),
            state: RwSignal::new(None),
            applied: RwSignal::new(0),
            usage_total: RwSignal::new(None),
            base,
        }
    }

    /// Where a stream should resume (the last applied idx + 1).
    pub fn next_idx(&self) -> u64 {
        self.seq.with_value(|s| s.next())
    }

    /// A missing range that should be fetched, if messages arrived past a gap.
    pub fn gap(&self) -> Option<std::ops::Range<u64>> {
        self.seq.with_value(|s| s.gap())
    }

    /// Accepts a message from any source (snapshot, stream, gap fetch).
    pub fn push(&self, message: Message) {
        let ready = self
            .seq
            .try_update_value(|s| s.push(message.idx, message))
            .unwrap_or_default();
        for message in ready {
            self.apply(message);
        }
    }

    pub fn push_all(&self, messages: impl IntoIterator<Item = Message>) {
        for message in messages {
            self.push(message);
        }
    }

    /// Whether a permission request has its card in the loaded window (otherwise
    /// the page shows it from the state's pending list).
    pub fn has_permission(&self, request_id: &str) -> bool {
        self.permissions.with_value(|p| p.contains_key(request_id))
    }

    /// Whether this conversation's calls get agent cards: its agent is not `shell`.
    fn agent_conversation(&self) -> bool {
        self.state.with_untracked(|s| {
            s.as_ref()
                .is_some_and(|s| !s.agent.is_empty() && s.agent != "shell")
        })
    }

    /// The card for a call id, made (and added as a row at `idx`) when its call came
    /// before the loaded window. Returns whether it was made now.
    fn card(&self, id: &str, started: &str, idx: u64, title: &str) -> (ToolCard, bool) {
        if let Some(card) = self.cards.with_value(|c| c.get(id).copied()) {
            return (card, false);
        }
        if self.agent_conversation() {
            let call = self.agent_call(id, started, idx, title, None);
            return (call.card, true);
        }
        let card = ToolCard::new(id, "", started);
        self.cards.update_value(|c| {
            c.insert(id.to_string(), card);
        });
        self.add(Item::Tool { idx, card });
        (card, true)
    }

    fn add(&self, item: Item) {
        self.items.update(|items| items.push(item));
    }

    fn apply(&self, m: Message) {
        self.applied.update(|n| *n += 1);
        // A reply or a thought grows only while pieces of its kind follow each other.
        let open = self.open.get_value();
        self.open.set_value(None);
        match m.kind {
            MessageType::User => {
                let folded = RwSignal::new(false);
                if !self.agent_conversation() {
                    self.unrun.update_value(|u| {
                        u.push_back((m.content.clone(), folded, m.timestamp.clone()))
                    });
                }
                self.add(Item::User {
                    idx: m.idx,
                    text: m.content,
                    time: m.timestamp,
                    folded,
                })
            }
            MessageType::Agent => self.apply_agent(m),
            MessageType::ToolOutput => {
                let id = m.tool_call_id.unwrap_or_default();
                let (card, _) = self.card(&id, &m.timestamp, m.idx, "");
                card.term.update_value(|t| t.feed(&m.content));
                card.version.update(|v| *v += 1);
            }
            MessageType::Tool => self.apply_result(m),
            MessageType::Error => self.add(Item::Error {
                idx: m.idx,
                text: m.content,
            }),
            MessageType::Restart => {
                self.plan.set_value(None);
                // Messages queued before a restart never run.
                self.unrun.update_value(VecDeque::clear);
                self.add(Item::Restart {
                    idx: m.idx,
                    text: m.content,
                })
            }
            MessageType::AgentText | MessageType::Thought => self.apply_piece(m, open),
            MessageType::ToolUpdate => self.apply_tool_update(m),
            MessageType::Plan => self.apply_plan(m),
            MessageType::Permission => self.apply_permission(m),
            MessageType::PermissionAnswer => self.apply_permission_answer(m),
            MessageType::Notice => self.add(Item::Notice {
                idx: m.idx,
                text: m.content,
            }),
            MessageType::Changes => self.apply_changes(m),
        }
    }

    fn apply_changes(&self, m: Message) {
        let Some(changes) = m.changes else { return };
        if let Some(of) = changes.revert_of
            && let Some(mark) = self.reverts.with_value(|r| r.get(&of).copied())
        {
            mark.set(Some(m.idx));
        }
        let reverted_by = RwSignal::new(None);
        self.reverts.update_value(|r| {
            r.insert(m.idx, reverted_by);
        });
        self.add(Item::Changes {
            idx: m.idx,
            changes,
            reverted_by,
        });
    }

    fn apply_agent(&self, m: Message) {
        let usage = m.usage.as_ref().and_then(Usage::from_json);
        if let Some(u) = usage {
            self.usage_total
                .update(|total| *total = Some(total.unwrap_or_default() + u));
        }
        if m.end_of_turn {
            self.plan.set_value(None);
        }
        // A closing message with nothing to say (the shell agent's, after a command
        // whose card already tells how it ended) adds no row. Logs written before it
        // said nothing still say "Command completed." after a finished card.
        let silent = m.end_of_turn
            && usage.is_none()
            && (m.content.is_empty()
                || (m.content == "Command completed." && self.last_is_finished_card()));
        if !silent && (!m.content.is_empty() || m.tool_calls.is_empty()) {
            self.add(Item::Agent {
                idx: m.idx,
                text: m.content,
                end_of_turn: m.end_of_turn,
                usage,
            });
        }
        let agent_conversation = self.agent_conversation();
        for call in m.tool_calls {
            let command = call
                .input
                .get("command")
                .and_then(|c| c.as_str())
                .map_or_else(|| call.input.to_string(), str::to_string);
            if call.kind.is_some() || agent_conversation {
                let known = self
                    .agent_calls
                    .with_value(|c| c.get(&call.tool_call_id).copied());
                let agent_call = match known {
                    Some(existing) => existing,
                    None => self.agent_call(
                        &call.tool_call_id,
                        &m.timestamp,
                        m.idx,
                        &call.name,
                        call.kind.as_deref(),
                    ),
                };
                agent_call.title.set(call.name);
                if let Some(kind) = call.kind {
                    agent_call.kind.set(kind);
                }
                agent_call.card.command.set(command);
                agent_call.input.set(Some(call.input));
                continue;
            }
            let (card, fresh) = match self
                .cards
                .with_value(|c| c.get(&call.tool_call_id).copied())
            {
                Some(card) => (card, false),
                None => {
                    let card = ToolCard::new(&call.tool_call_id, "", &m.timestamp);
                    self.cards.update_value(|c| {
                        c.insert(call.tool_call_id.clone(), card);
                    });
                    (card, true)
                }
            };
            if fresh {
                self.fold_user(card, &command);
                self.add(Item::Tool { idx: m.idx, card });
            }
            card.command.set(command);
        }
    }

    /// The shell runs its messages in order, and each one's command is its text: the
    /// oldest waiting message with this text is the one this card runs (those before
    /// it were dropped by a stop). Its bubble folds into the card.
    fn fold_user(&self, card: ToolCard, command: &str) {
        let found = self.unrun.try_update_value(|u| {
            let at = u.iter().position(|(text, ..)| text == command)?;
            u.drain(..=at).next_back()
        });
        if let Some(Some((_, folded, time))) = found {
            folded.set(true);
            card.prompt.set(Some(time));
        }
    }

    fn last_is_finished_card(&self) -> bool {
        self.items.with_untracked(|items| {
            matches!(items.last(), Some(Item::Tool { card, .. }) if card.status.get_untracked().is_some())
        })
    }

    fn apply_result(&self, m: Message) {
        let id = m.tool_call_id.clone().unwrap_or_default();
        let started = m.start_time.as_deref().unwrap_or(&m.timestamp);
        let (card, fresh) = self.card(&id, started, m.idx, m.tool_name.as_deref().unwrap_or(""));
        if fresh {
            // No output was seen (or it came before the window): show the result's tail.
            if let Some(result) = &m.tool_result {
                card.term.update_value(|t| t.feed(result));
            }
            if let Some(command) = m
                .input
                .as_ref()
                .and_then(|i| i.get("command"))
                .and_then(|c| c.as_str())
            {
                card.command.set(command.to_string());
            }
        }
        card.exit_code.set(m.exit_code);
        card.elapsed.set(m.elapsed);
        card.summary.set(m.content);
        card.status.set(Some(m.status.unwrap_or(ToolStatus::Error)));
        card.stopping.set(false);
        card.version.update(|v| *v += 1);
    }
}
