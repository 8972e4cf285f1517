//! Assertions and helpers over messages and responses.

use app::protocol::{Message, MessageType, ToolCall, ToolStatus};
use serde_json::Value;
use tether_testkit::{Response, StatusCode};

/// Status and JSON body; a non-JSON body becomes `Value::String` of its text.
pub fn json_of(response: &Response) -> (StatusCode, Value) {
    let text = response.text();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (response.status(), value)
}

/// Asserts an error response: the status, and a JSON body `{"error": "<non-empty>"}`.
pub fn assert_error(what: &str, (status, body): &(StatusCode, Value), expected: StatusCode) {
    assert_eq!(*status, expected, "{what}: body {body}");
    let message = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: the body is not a JSON error: {body}"));
    assert!(!message.is_empty(), "{what}: empty error message");
}

/// Asserts that `messages` have the indices `first, first+1, …` in order.
pub fn assert_dense<M: std::borrow::Borrow<Message>>(messages: &[M], first: u64) {
    for (i, m) in messages.iter().enumerate() {
        let expected = first + i as u64;
        assert_eq!(
            m.borrow().idx,
            expected,
            "message #{i} has idx {} where {expected} was expected (gap or duplicate)",
            m.borrow().idx
        );
    }
}

/// Every tool call the agent announced, in order.
pub fn tool_calls<M: std::borrow::Borrow<Message>>(messages: &[M]) -> Vec<ToolCall> {
    messages
        .iter()
        .filter(|m| m.borrow().kind == MessageType::Agent)
        .flat_map(|m| m.borrow().tool_calls.clone())
        .collect()
}

/// The concatenated `tool_output` contents of one tool call.
pub fn output_of<M: std::borrow::Borrow<Message>>(messages: &[M], tool_call_id: &str) -> String {
    messages
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter(|m| m.kind == MessageType::ToolOutput)
        .filter(|m| m.tool_call_id.as_deref() == Some(tool_call_id))
        .map(|m| m.content.as_str())
        .collect()
}

/// The `tool` result messages of one tool call.
pub fn results_of<'a, M: std::borrow::Borrow<Message>>(
    messages: &'a [M],
    tool_call_id: &str,
) -> Vec<&'a Message> {
    messages
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter(|m| m.kind == MessageType::Tool && m.tool_call_id.as_deref() == Some(tool_call_id))
        .collect()
}

/// The single result of a tool call (asserting there is exactly one).
pub fn single_result<'a, M: std::borrow::Borrow<Message>>(
    messages: &'a [M],
    tool_call_id: &str,
) -> &'a Message {
    let results = results_of(messages, tool_call_id);
    assert_eq!(
        results.len(),
        1,
        "tool call {tool_call_id} must have exactly one result, has {results:#?}"
    );
    results[0]
}

/// Asserts the tool call ended with `status`, and that an `end_of_turn` agent
/// message follows its result. Returns that closing message.
pub fn assert_closed<'a, M: std::borrow::Borrow<Message>>(
    messages: &'a [M],
    tool_call_id: &str,
    status: ToolStatus,
) -> &'a Message {
    let result = single_result(messages, tool_call_id);
    assert_eq!(result.status, Some(status), "result: {result:#?}");
    messages
        .iter()
        .map(std::borrow::Borrow::borrow)
        .find(|m| m.idx > result.idx && m.end_of_turn)
        .unwrap_or_else(|| panic!("no end_of_turn after the result of {tool_call_id}"))
}

/// What `seq 1 n` prints through a terminal (which turns `\n` into `\r\n`).
pub fn seq_output(n: u64) -> String {
    let mut out = String::new();
    for i in 1..=n {
        out.push_str(&i.to_string());
        out.push_str("\r\n");
    }
    out
}
