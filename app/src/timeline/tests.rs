use leptos::prelude::*;

use super::*;
use crate::protocol::{
    PermissionAnswer, PermissionRequest, ToolCall, ToolContent, ToolProgress, ToolUpdate,
};

fn message(idx: u64, kind: MessageType, content: &str, tool: Option<&str>) -> Message {
    let mut m = Message::new(kind, content);
    m.idx = idx;
    m.tool_call_id = tool.map(str::to_string);
    m
}

fn call(idx: u64, id: &str, name: &str, kind: Option<&str>) -> Message {
    let mut m = message(idx, MessageType::Agent, "", None);
    m.tool_calls = vec![ToolCall {
        kind: kind.map(str::to_string),
        name: name.into(),
        input: serde_json::json!({"command": "seq 3"}),
        tool_call_id: id.into(),
    }];
    m
}

fn agent_timeline() -> Timeline {
    let t = Timeline::new(0);
    t.state.set(Some(ConversationState {
        agent: "claude".into(),
        ..Default::default()
    }));
    t
}

#[test]
fn output_chunks_fold_into_one_card() {
    let owner = Owner::new();
    owner.with(|| {
        let t = Timeline::new(0);
        t.push(message(0, MessageType::User, "seq 3", None));
        t.push(message(3, MessageType::ToolOutput, "3\r\n", Some("c1")));
        t.push(call(1, "c1", "bash", None));
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

#[test]
fn consecutive_pieces_grow_one_reply_and_another_kind_starts_a_new_one() {
    let owner = Owner::new();
    owner.with(|| {
        let t = agent_timeline();
        t.push(message(0, MessageType::AgentText, "Hel", None));
        t.push(message(1, MessageType::AgentText, "lo *there*", None));
        t.push(message(2, MessageType::Thought, "hmm ", None));
        t.push(message(3, MessageType::Thought, "ok", None));
        t.push(message(4, MessageType::AgentText, "again", None));
        t.push(message(5, MessageType::Notice, "memory reset", None));
        let items = t.items.get_untracked();
        let texts: Vec<String> = items.iter().map(Item::search_text).collect();
        assert_eq!(texts, ["Hello *there*", "hmm ok", "again", "memory reset"]);
        assert!(matches!(items[1], Item::Thought { .. }));
        assert!(matches!(items[3], Item::Notice { .. }));
    });
}

#[test]
fn tool_updates_change_the_agent_card_in_place() {
    let owner = Owner::new();
    owner.with(|| {
        let t = agent_timeline();
        t.push(call(0, "t1", "Read file", Some("read")));
        let mut update = message(1, MessageType::ToolUpdate, "", Some("t1"));
        update.tool_update = Some(ToolUpdate {
            title: Some("Edit main.rs".into()),
            kind: Some("edit".into()),
            progress: Some(ToolProgress::InProgress),
            content: Some(vec![ToolContent::Diff {
                path: "main.rs".into(),
                old_text: None,
                new_text: "fn main() {}".into(),
            }]),
            ..Default::default()
        });
        t.push(update);
        t.push(message(2, MessageType::ToolOutput, "out\r\n", Some("t1")));
        let mut result = message(3, MessageType::Tool, "", Some("t1"));
        result.status = Some(ToolStatus::Completed);
        t.push(result);
        let items = t.items.get_untracked();
        assert_eq!(items.len(), 1);
        let Item::AgentTool { call, .. } = &items[0] else {
            panic!("expected an agent card")
        };
        assert_eq!(call.title.get_untracked(), "Edit main.rs");
        assert_eq!(call.kind.get_untracked(), "edit");
        assert_eq!(
            call.progress.get_untracked(),
            Some(ToolProgress::InProgress)
        );
        assert_eq!(call.content.with_untracked(Vec::len), 1);
        assert_eq!(call.card.term.with_value(|t| t.plain_text()), "out\n");
        assert_eq!(
            call.card.status.get_untracked(),
            Some(ToolStatus::Completed)
        );
    });
}

#[test]
fn an_update_for_a_call_before_the_window_makes_its_card() {
    let owner = Owner::new();
    owner.with(|| {
        let t = Timeline::new(10);
        let mut update = message(10, MessageType::ToolUpdate, "", Some("t9"));
        update.tool_update = Some(ToolUpdate {
            title: Some("Search".into()),
            kind: Some("search".into()),
            ..Default::default()
        });
        t.push(update);
        let items = t.items.get_untracked();
        assert!(matches!(&items[..], [Item::AgentTool { call, .. }] if call.kind.get_untracked() == "search"));
    });
}

#[test]
fn one_plan_per_turn_updates_in_place() {
    let owner = Owner::new();
    owner.with(|| {
        let t = agent_timeline();
        let plan = |idx, status: &str| {
            let mut m = message(idx, MessageType::Plan, "", None);
            m.plan = Some(vec![crate::protocol::PlanEntry {
                content: "step".into(),
                priority: "high".into(),
                status: status.into(),
            }]);
            m
        };
        t.push(plan(0, "pending"));
        t.push(plan(1, "completed"));
        let mut end = message(2, MessageType::Agent, "", None);
        end.end_of_turn = true;
        end.usage = Some(serde_json::json!({"input_tokens": 5, "output_tokens": 7}));
        t.push(end);
        t.push(plan(3, "pending"));
        let items = t.items.get_untracked();
        assert_eq!(
            items.len(),
            3,
            "two plans around the turn's end: {}",
            items.len()
        );
        let Item::Plan { entries, .. } = &items[0] else {
            panic!()
        };
        assert_eq!(entries.get_untracked()[0].status, "completed");
        assert!(matches!(&items[1], Item::Agent { usage: Some(u), .. } if u.output == 7));
        assert_eq!(t.usage_total.get_untracked().map(|u| u.input), Some(5));
    });
}

#[test]
fn a_permission_answer_resolves_its_card() {
    let owner = Owner::new();
    owner.with(|| {
        let t = agent_timeline();
        let mut ask = message(0, MessageType::Permission, "", None);
        ask.permission = Some(PermissionRequest {
            request_id: "r1".into(),
            tool_call_id: "t1".into(),
            title: "Run rm".into(),
            input: None,
            options: vec![],
        });
        t.push(ask);
        assert!(t.has_permission("r1"));
        let mut answer = message(1, MessageType::PermissionAnswer, "", None);
        answer.permission_answer = Some(PermissionAnswer {
            request_id: "r1".into(),
            tool_call_id: "t1".into(),
            option_id: None,
            outcome: "cancelled".into(),
        });
        t.push(answer);
        let items = t.items.get_untracked();
        let Item::Approval { answer, .. } = &items[0] else {
            panic!()
        };
        assert_eq!(
            answer.get_untracked().map(|a| a.outcome),
            Some("cancelled".into())
        );
    });
}

#[test]
fn shell_conversations_keep_shell_cards() {
    let owner = Owner::new();
    owner.with(|| {
        let t = Timeline::new(0);
        t.state.set(Some(ConversationState {
            agent: "shell".into(),
            ..Default::default()
        }));
        t.push(call(0, "c1", "bash", None));
        assert!(matches!(&t.items.get_untracked()[..], [Item::Tool { .. }]));
    });
}

fn changes(idx: u64, revert_of: Option<u64>) -> Message {
    let mut m = message(idx, MessageType::Changes, "", None);
    m.changes = Some(crate::protocol::Changes {
        root: "/repo".into(),
        before: "b".into(),
        after: "a".into(),
        files: vec![crate::protocol::FileChange {
            path: "src/lib.rs".into(),
            old_path: None,
            status: crate::protocol::FileStatus::Modified,
            added: 2,
            removed: 1,
            binary: false,
        }],
        added: 2,
        removed: 1,
        revert_of,
    });
    m
}

#[test]
fn changes_become_a_row_and_a_revert_marks_the_turn_it_reverts() {
    let owner = Owner::new();
    owner.with(|| {
        let t = Timeline::new(0);
        t.push(message(
            0,
            MessageType::User,
            "sed -i s/a/b/ src/lib.rs",
            None,
        ));
        t.push(changes(1, None));
        // A `changes` message without its payload (an older server) adds nothing.
        t.push(message(2, MessageType::Changes, "", None));
        t.push(changes(3, Some(1)));
        let items = t.items.get_untracked();
        assert_eq!(items.len(), 3);
        let Item::Changes {
            idx, reverted_by, ..
        } = &items[1]
        else {
            panic!("expected a changes row");
        };
        assert_eq!((*idx, reverted_by.get_untracked()), (1, Some(3)));
        let Item::Changes { reverted_by, .. } = &items[2] else {
            panic!("expected the revert's row");
        };
        assert_eq!(reverted_by.get_untracked(), None);
        assert!(items[1].search_text().contains("src/lib.rs"));
        assert!(items[2].search_text().starts_with("Reverted #1: 1 file"));
    });
}

#[test]
fn find_sees_a_cards_new_output_once_it_has_read_the_card() {
    let owner = Owner::new();
    owner.with(|| {
        let t = Timeline::new(0);
        t.push(message(0, MessageType::User, "seq 3", None));
        t.push(call(1, "c1", "bash", None));
        t.push(message(2, MessageType::ToolOutput, "first\r\n", Some("c1")));
        let card = t.items.with_untracked(|items| items[1].clone());
        assert_eq!(card.search_text(), "seq 3\nfirst\n");
        // Read again with nothing new: the same text.
        assert_eq!(card.search_text(), "seq 3\nfirst\n");
        t.push(message(
            3,
            MessageType::ToolOutput,
            "second\r\n",
            Some("c1"),
        ));
        assert_eq!(card.search_text(), "seq 3\nfirst\nsecond\n");
    });
}

#[test]
fn find_matches_a_cards_output_in_any_case_as_it_grows() {
    let owner = Owner::new();
    owner.with(|| {
        let t = Timeline::new(0);
        t.push(message(0, MessageType::User, "seq 3", None));
        t.push(call(1, "c1", "bash", None));
        t.push(message(2, MessageType::ToolOutput, "First\r\n", Some("c1")));
        let card = t.items.with_untracked(|items| items[1].clone());
        assert!(card.matches("first"));
        assert!(!card.matches("second"));
        t.push(message(
            3,
            MessageType::ToolOutput,
            "SeCoNd\r\n",
            Some("c1"),
        ));
        assert!(card.matches("second"));
        assert!(card.matches("seq 3"));
    });
}
