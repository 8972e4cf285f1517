//! The tool-call shapes measured from real adapters (see docs/agents.md).

use serde_json::json;

use super::*;

fn apply(book: &mut ToolBook, update: Value) -> Vec<Message> {
    let mut out = Vec::new();
    book.apply(&update, &mut out);
    out
}

fn kinds(messages: &[Message]) -> Vec<MessageType> {
    messages.iter().map(|m| m.kind).collect()
}

#[test]
fn a_call_reported_twice_is_announced_once_and_updated_in_place() {
    // Claude's adapter sends `tool_call` for the same id twice: empty, then filled.
    let mut book = ToolBook::default();
    let first = apply(
        &mut book,
        json!({"sessionUpdate":"tool_call","toolCallId":"t1","title":"Terminal","kind":"execute","status":"pending","rawInput":{}}),
    );
    assert_eq!(kinds(&first), [MessageType::Agent, MessageType::ToolUpdate]);
    assert_eq!(first[0].tool_calls[0].name, "Terminal");
    assert_eq!(first[0].tool_calls[0].kind.as_deref(), Some("execute"));
    let second = apply(
        &mut book,
        json!({"sessionUpdate":"tool_call","toolCallId":"t1","title":"`echo hello`","kind":"execute","status":"pending",
               "rawInput":{"command":"echo hello"},"content":[{"type":"content","content":{"type":"text","text":"Print hello"}}]}),
    );
    assert_eq!(kinds(&second), [MessageType::ToolUpdate]);
    let update = second[0].tool_update.clone().expect("an update");
    assert_eq!(update.title.as_deref(), Some("`echo hello`"));
    assert_eq!(update.input, Some(json!({"command":"echo hello"})));
    assert_eq!(
        update.content,
        Some(vec![ToolContent::Text {
            text: "Print hello".into()
        }]),
        "a pending call's text is its description, not output"
    );
    assert!(book.is_open("t1"));
}

#[test]
fn cumulative_output_streams_only_what_is_new_and_the_result_closes_the_call() {
    // opencode resends the whole output so far with each update.
    let mut book = ToolBook::default();
    apply(
        &mut book,
        json!({"sessionUpdate":"tool_call","toolCallId":"c","title":"bash","kind":"execute","status":"pending"}),
    );
    let mut outputs = String::new();
    for so_far in ["tick 1\n", "tick 1\ntick 2\n"] {
        let out = apply(
            &mut book,
            json!({"sessionUpdate":"tool_call_update","toolCallId":"c","status":"in_progress",
                   "content":[{"type":"content","content":{"type":"text","text":so_far}}]}),
        );
        for m in out.iter().filter(|m| m.kind == MessageType::ToolOutput) {
            outputs.push_str(&m.content);
        }
    }
    assert_eq!(outputs, "tick 1\r\ntick 2\r\n");
    let done = apply(
        &mut book,
        json!({"sessionUpdate":"tool_call_update","toolCallId":"c","status":"completed",
               "content":[{"type":"content","content":{"type":"text","text":"tick 1\ntick 2\n"}}]}),
    );
    let result = done.last().expect("a result");
    assert_eq!(result.kind, MessageType::Tool);
    assert_eq!(result.status, Some(ToolStatus::Completed));
    assert_eq!(result.tool_result.as_deref(), Some("tick 1\r\ntick 2\r\n"));
    assert!(!book.is_open("c"));
    // A late word about the closed call adds nothing.
    assert!(
        apply(
            &mut book,
            json!({"sessionUpdate":"tool_call_update","toolCallId":"c","status":"completed"})
        )
        .is_empty()
    );
}

#[test]
fn zed_terminal_output_meta_streams_and_its_exit_code_reaches_the_result() {
    let mut book = ToolBook::default();
    apply(
        &mut book,
        json!({"sessionUpdate":"tool_call","toolCallId":"x","title":"echo hi","kind":"execute","status":"in_progress",
               "content":[{"type":"terminal","terminalId":"x"}]}),
    );
    let out = apply(
        &mut book,
        json!({"sessionUpdate":"tool_call_update","toolCallId":"x","_meta":{"terminal_output":{"terminal_id":"x","data":"hi\n"}}}),
    );
    assert_eq!(kinds(&out), [MessageType::ToolOutput]);
    assert_eq!(out[0].content, "hi\r\n");
    let out = apply(
        &mut book,
        json!({"sessionUpdate":"tool_call_update","toolCallId":"x","status":"failed","_meta":{"terminal_exit":{"exit_code":2,"signal":null}}}),
    );
    let result = out.last().expect("a result");
    assert_eq!(result.status, Some(ToolStatus::Error));
    assert_eq!(result.exit_code, Some(2));
}

#[test]
fn an_update_for_an_unknown_call_opens_its_card_first_and_diffs_are_content() {
    let mut book = ToolBook::default();
    let out = apply(
        &mut book,
        json!({"sessionUpdate":"tool_call_update","toolCallId":"e","title":"Edit a.txt","kind":"edit","status":"in_progress",
               "content":[{"type":"diff","path":"/w/a.txt","oldText":"a\n","newText":"b\n"}]}),
    );
    assert_eq!(kinds(&out), [MessageType::Agent, MessageType::ToolUpdate]);
    assert_eq!(
        out[1].tool_update.as_ref().and_then(|u| u.content.clone()),
        Some(vec![ToolContent::Diff {
            path: "/w/a.txt".into(),
            old_text: Some("a\n".into()),
            new_text: "b\n".into()
        }])
    );
}

#[test]
fn closing_all_gives_each_open_call_exactly_one_result() {
    let mut book = ToolBook::default();
    for id in ["a", "b"] {
        apply(
            &mut book,
            json!({"sessionUpdate":"tool_call","toolCallId":id,"title":id,"status":"in_progress"}),
        );
    }
    let closed = book.close_all(ToolStatus::Cancelled, "the turn was stopped");
    assert_eq!(closed.len(), 2);
    assert!(
        closed
            .iter()
            .all(|m| m.status == Some(ToolStatus::Cancelled))
    );
    assert!(book.close_all(ToolStatus::Cancelled, "again").is_empty());
}

#[test]
fn the_newest_call_without_a_terminal_gets_the_next_one() {
    let mut book = ToolBook::default();
    for id in ["a", "b"] {
        apply(
            &mut book,
            json!({"sessionUpdate":"tool_call","toolCallId":id,"title":id,"kind":"execute"}),
        );
    }
    assert_eq!(book.newest_without_terminal().as_deref(), Some("b"));
    book.attach_terminal("b", "term-1");
    assert_eq!(book.newest_without_terminal().as_deref(), Some("a"));
}

#[test]
fn repeated_locations_add_nothing() {
    // opencode repeats the same locations with every progress update.
    let mut book = ToolBook::default();
    let update = json!({"sessionUpdate":"tool_call_update","toolCallId":"l","title":"bash","kind":"execute",
                        "status":"in_progress","locations":[{"path":"/w"}]});
    assert_eq!(
        kinds(&apply(&mut book, update.clone())),
        [MessageType::Agent, MessageType::ToolUpdate]
    );
    assert!(apply(&mut book, update).is_empty());
}

#[test]
fn a_long_output_streams_whole_and_its_result_keeps_only_the_tail() {
    // More than a result's tail, less than one streamed message: the result must still
    // stop at the tail, as a shell command's does.
    let mut book = ToolBook::default();
    apply(
        &mut book,
        json!({"sessionUpdate":"tool_call","toolCallId":"l","title":"build","kind":"execute","status":"pending"}),
    );
    let text: String = (0..3000).map(|i| format!("line é{i}\n")).collect();
    let out = apply(
        &mut book,
        json!({"sessionUpdate":"tool_call_update","toolCallId":"l","status":"completed",
               "content":[{"type":"content","content":{"type":"text","text":text}}]}),
    );
    let streamed: String = out
        .iter()
        .filter(|m| m.kind == MessageType::ToolOutput)
        .map(|m| m.content.as_str())
        .collect();
    let whole = crlf(&text);
    assert!(whole.chars().count() > RESULT_TAIL_CHARS);
    assert_eq!(streamed, whole);
    let result = out.last().expect("a result");
    assert_eq!(result.kind, MessageType::Tool);
    let tail = result.tool_result.as_deref().expect("a tail");
    assert_eq!(tail.chars().count(), RESULT_TAIL_CHARS);
    assert!(whole.ends_with(tail));
}
