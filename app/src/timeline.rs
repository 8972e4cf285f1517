//! The conversation as the browser holds it: messages applied strictly in `idx`
//! order (duplicates ignored, gaps held back until filled) and folded into
//! reactive pieces, so one new output chunk touches one card, not the timeline.

use std::collections::{BTreeMap, HashMap};

use leptos::prelude::*;

use crate::ansi::Terminal;
use crate::protocol::{ConversationState, Message, MessageType, ToolStatus};

/// Output lines a card keeps; older ones are dropped from view (the log keeps all).
pub const CARD_MAX_LINES: usize = 200_000;

/// Puts messages in `idx` order: releases each exactly once, holding back any that
/// arrive ahead of a gap.
#[derive(Debug, Default)]
pub struct Sequencer<T> {
    next: u64,
    pending: BTreeMap<u64, T>,
}

impl<T> Sequencer<T> {
    /// Starts expecting `next` (everything below it counts as already seen).
    pub fn starting_at(next: u64) -> Self {
        Sequencer {
            next,
            pending: BTreeMap::new(),
        }
    }

    /// The next index to apply: where a stream should resume.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Accepts one item; returns the items now ready, in order. Duplicates (below
    /// `next` or already pending) are dropped.
    pub fn push(&mut self, idx: u64, item: T) -> Vec<T> {
        if idx < self.next || self.pending.contains_key(&idx) {
            return Vec::new();
        }
        self.pending.insert(idx, item);
        let mut ready = Vec::new();
        while let Some(item) = self.pending.remove(&self.next) {
            ready.push(item);
            self.next += 1;
        }
        ready
    }

    /// The missing range before the first held-back item, if there is a gap.
    pub fn gap(&self) -> Option<std::ops::Range<u64>> {
        self.pending.keys().next().map(|&first| self.next..first)
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

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
}

impl ToolCard {
    fn new(id: &str, command: &str, started: &str) -> Self {
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
        }
    }

    pub fn is_running(&self) -> bool {
        self.status.get().is_none()
    }
}

/// One row of the timeline.
#[derive(Clone)]
pub enum Item {
    User {
        idx: u64,
        text: String,
        time: String,
    },
    Agent {
        idx: u64,
        text: String,
        end_of_turn: bool,
    },
    Tool {
        idx: u64,
        card: ToolCard,
    },
    Error {
        idx: u64,
        text: String,
    },
    Restart {
        idx: u64,
        text: String,
    },
}

impl Item {
    pub fn idx(&self) -> u64 {
        match self {
            Item::User { idx, .. }
            | Item::Agent { idx, .. }
            | Item::Tool { idx, .. }
            | Item::Error { idx, .. }
            | Item::Restart { idx, .. } => *idx,
        }
    }

    /// Plain text to search in.
    pub fn search_text(&self) -> String {
        match self {
            Item::User { text, .. }
            | Item::Agent { text, .. }
            | Item::Error { text, .. }
            | Item::Restart { text, .. } => text.clone(),
            Item::Tool { card, .. } => {
                let mut text = card.command.get_untracked();
                text.push('\n');
                card.term.with_value(|t| text.push_str(&t.plain_text()));
                text
            }
        }
    }
}

/// The whole conversation view-model.
#[derive(Clone, Copy)]
pub struct Timeline {
    /// Orders incoming messages; lives outside the reactive graph.
    seq: StoredValue<Sequencer<Message>>,
    /// Rows, in order; changes only when a row is added.
    pub items: RwSignal<Vec<Item>>,
    /// Cards by tool call id, so output chunks find theirs without a scan.
    cards: StoredValue<HashMap<String, ToolCard>>,
    pub state: RwSignal<Option<ConversationState>>,
    /// Messages applied so far (for the "new messages" counter).
    pub applied: RwSignal<u64>,
    /// The first index this view holds; earlier ones were not loaded.
    pub base: u64,
}

impl Timeline {
    pub fn new(base: u64) -> Self {
        Timeline {
            seq: StoredValue::new(Sequencer::starting_at(base)),
            items: RwSignal::new(Vec::new()),
            cards: StoredValue::new(HashMap::new()),
            state: RwSignal::new(None),
            applied: RwSignal::new(0),
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

    fn card(&self, id: &str, started: &str) -> (ToolCard, bool) {
        if let Some(card) = self.cards.with_value(|c| c.get(id).copied()) {
            return (card, false);
        }
        let card = ToolCard::new(id, "", started);
        self.cards.update_value(|c| {
            c.insert(id.to_string(), card);
        });
        (card, true)
    }

    fn add(&self, item: Item) {
        self.items.update(|items| items.push(item));
    }

    fn apply(&self, m: Message) {
        self.applied.update(|n| *n += 1);
        match m.kind {
            MessageType::User => self.add(Item::User {
                idx: m.idx,
                text: m.content,
                time: m.timestamp,
            }),
            MessageType::Agent => {
                if !m.content.is_empty() || m.tool_calls.is_empty() {
                    self.add(Item::Agent {
                        idx: m.idx,
                        text: m.content,
                        end_of_turn: m.end_of_turn,
                    });
                }
                for call in m.tool_calls {
                    let command = call
                        .input
                        .get("command")
                        .and_then(|c| c.as_str())
                        .map_or_else(|| call.input.to_string(), str::to_string);
                    let (card, _) = self.card(&call.tool_call_id, &m.timestamp);
                    card.command.set(command);
                    self.add(Item::Tool { idx: m.idx, card });
                }
            }
            MessageType::ToolOutput => {
                let id = m.tool_call_id.unwrap_or_default();
                let (card, fresh) = self.card(&id, &m.timestamp);
                if fresh {
                    // Its call came before the loaded window.
                    self.add(Item::Tool { idx: m.idx, card });
                }
                card.term.update_value(|t| t.feed(&m.content));
                card.version.update(|v| *v += 1);
            }
            MessageType::Tool => {
                let id = m.tool_call_id.unwrap_or_default();
                let (card, fresh) = self.card(&id, m.start_time.as_deref().unwrap_or(&m.timestamp));
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
                    self.add(Item::Tool { idx: m.idx, card });
                }
                card.exit_code.set(m.exit_code);
                card.elapsed.set(m.elapsed);
                card.summary.set(m.content);
                card.status.set(Some(m.status.unwrap_or(ToolStatus::Error)));
                card.stopping.set(false);
                card.version.update(|v| *v += 1);
            }
            MessageType::Error => self.add(Item::Error {
                idx: m.idx,
                text: m.content,
            }),
            MessageType::Restart => self.add(Item::Restart {
                idx: m.idx,
                text: m.content,
            }),
            // Agents' messages are rendered by the agent views (in progress).
            MessageType::AgentText
            | MessageType::Thought
            | MessageType::ToolUpdate
            | MessageType::Plan
            | MessageType::Permission
            | MessageType::PermissionAnswer
            | MessageType::Notice => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_order_and_drops_duplicates() {
        let mut s = Sequencer::starting_at(0);
        assert_eq!(s.push(0, 'a'), vec!['a']);
        assert_eq!(
            s.push(0, 'x'),
            Vec::<char>::new(),
            "duplicate of an applied idx"
        );
        assert_eq!(
            s.push(2, 'c'),
            Vec::<char>::new(),
            "held back behind the gap"
        );
        assert_eq!(s.gap(), Some(1..2));
        assert_eq!(
            s.push(2, 'y'),
            Vec::<char>::new(),
            "duplicate of a pending idx"
        );
        assert_eq!(s.push(1, 'b'), vec!['b', 'c']);
        assert_eq!(s.gap(), None);
        assert_eq!(s.next(), 3);
    }

    #[test]
    fn base_skips_what_the_page_already_has() {
        let mut s = Sequencer::starting_at(10);
        assert!(s.push(9, ()).is_empty());
        assert_eq!(s.push(10, ()).len(), 1);
        assert_eq!(s.next(), 11);
    }

    proptest::proptest! {
        #[test]
        fn any_arrival_order_with_duplicates_applies_each_once_in_order(
            order in proptest::collection::vec(0u64..40, 0..200)
        ) {
            // Every index 0..40 arrives at least once, in a random order with repeats.
            let mut arrivals = order.clone();
            arrivals.extend(0..40);
            let mut s = Sequencer::starting_at(0);
            let mut applied = Vec::new();
            for idx in arrivals {
                applied.extend(s.push(idx, idx));
            }
            proptest::prop_assert_eq!(applied, (0..40).collect::<Vec<_>>());
            proptest::prop_assert_eq!(s.pending(), 0);
        }
    }

    fn message(idx: u64, kind: MessageType, content: &str, tool: Option<&str>) -> Message {
        let mut m = Message::new(kind, content);
        m.idx = idx;
        m.tool_call_id = tool.map(str::to_string);
        m
    }

    #[test]
    fn output_chunks_fold_into_one_card() {
        let owner = Owner::new();
        owner.with(|| {
            let t = Timeline::new(0);
            let mut call = message(1, MessageType::Agent, "", None);
            call.tool_calls = vec![crate::protocol::ToolCall {
                kind: None,
                name: "bash".into(),
                input: serde_json::json!({"command": "seq 3"}),
                tool_call_id: "c1".into(),
            }];
            t.push(message(0, MessageType::User, "seq 3", None));
            t.push(message(3, MessageType::ToolOutput, "3\r\n", Some("c1")));
            t.push(call);
            t.push(message(
                2,
                MessageType::ToolOutput,
                "1\r\n2\r\n",
                Some("c1"),
            ));
            t.push(message(
                2,
                MessageType::ToolOutput,
                "1\r\n2\r\n",
                Some("c1"),
            ));
            let mut result = message(4, MessageType::Tool, "exit code 0", Some("c1"));
            result.status = Some(ToolStatus::Completed);
            result.exit_code = Some(0);
            t.push(result);
            let items = t.items.get_untracked();
            assert_eq!(items.len(), 2, "a user row and one card");
            let Item::Tool { card, .. } = &items[1] else {
                panic!("expected a card")
            };
            assert_eq!(card.term.with_value(|t| t.plain_text()), "1\n2\n3\n");
            assert_eq!(card.status.get_untracked(), Some(ToolStatus::Completed));
            assert_eq!(card.command.get_untracked(), "seq 3");
            assert_eq!(t.next_idx(), 5);
        });
    }
}
