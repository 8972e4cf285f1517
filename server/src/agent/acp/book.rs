//! The agent's tool calls as the log tells them: turns ACP `tool_call` and
//! `tool_call_update` notifications into card messages, live output and exactly one
//! result per call.
//!
//! Works on the notifications' JSON (ACP's camelCase wire form) rather than the
//! SDK's types: agents put live output in `_meta` extensions (Zed's
//! `terminal_output`) that typed structs do not carry, and unknown fields must
//! never make an update disappear.

use std::collections::HashMap;

use app::protocol::{
    Message, MessageType, ToolCall, ToolContent, ToolProgress, ToolStatus, ToolUpdate,
};
use serde_json::Value;

use crate::tools::chunk::{MAX_CHUNK_CHARS, RESULT_TAIL_CHARS, keep_last_chars};

/// One tool call the agent opened and has not finished.
#[derive(Default)]
struct Open {
    title: String,
    kind: Option<String>,
    progress: Option<ToolProgress>,
    input: Option<Value>,
    /// The text the agent last reported as the call's output, for agents that
    /// resend all of it each time (opencode).
    reported: String,
    /// The end of the output, for the result message.
    tail: String,
    /// An exit code the agent reported (`_meta.terminal_exit`).
    exit_code: Option<i32>,
    /// Tether's terminal attached to the call, if any.
    terminal: Option<String>,
    /// The files the call works on, as last reported (agents repeat them).
    locations: Vec<String>,
}

/// The open tool calls of one agent session.
#[derive(Default)]
pub struct ToolBook {
    open: HashMap<String, Open>,
    /// Open calls in the order they were opened.
    order: Vec<String>,
}

impl ToolBook {
    pub fn is_open(&self, id: &str) -> bool {
        self.open.contains_key(id)
    }

    /// Ids of the open calls, oldest first.
    pub fn open_ids(&self) -> Vec<String> {
        self.order.clone()
    }

    /// The newest open call with no Tether terminal yet: the one a `terminal/create`
    /// most likely belongs to (the request does not say).
    pub fn newest_without_terminal(&self) -> Option<String> {
        self.order
            .iter()
            .rev()
            .find(|id| self.open.get(*id).is_some_and(|c| c.terminal.is_none()))
            .cloned()
    }

    pub fn attach_terminal(&mut self, id: &str, terminal: &str) {
        if let Some(call) = self.open.get_mut(id) {
            call.terminal = Some(terminal.to_string());
        }
    }

    /// Records output a Tether terminal produced for `id`, for its result.
    pub fn note_output(&mut self, id: &str, text: &str) {
        if let Some(call) = self.open.get_mut(id) {
            push_tail(&mut call.tail, text);
        }
    }

    /// Opens a card for `id` (the `agent` message announcing it), unless it is open.
    pub fn open_call(&mut self, id: &str, fields: &Value, out: &mut Vec<Message>) {
        if self.open.contains_key(id) {
            return;
        }
        let title = str_field(fields, "title")
            .unwrap_or("tool call")
            .to_string();
        let kind = str_field(fields, "kind").map(str::to_string);
        let input = fields.get("rawInput").cloned().filter(|v| !v.is_null());
        let mut announce = Message::new(MessageType::Agent, "");
        announce.tool_calls = vec![ToolCall {
            name: title.clone(),
            input: input
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default())),
            tool_call_id: id.to_string(),
            kind: kind.clone(),
        }];
        out.push(announce);
        self.open.insert(
            id.to_string(),
            Open {
                title,
                kind,
                input,
                ..Open::default()
            },
        );
        self.order.push(id.to_string());
    }

    /// Applies a `tool_call` or `tool_call_update` notification.
    pub fn apply(&mut self, fields: &Value, out: &mut Vec<Message>) {
        let Some(id) = str_field(fields, "toolCallId").map(str::to_string) else {
            return;
        };
        if !self.open.contains_key(&id) {
            if fields.get("sessionUpdate").and_then(Value::as_str) == Some("tool_call_update")
                && self.closed_status(fields).is_some()
                && fields.get("title").is_none()
            {
                // A late final word about a call already closed (e.g. by the turn's
                // end): its result is in the log.
                return;
            }
            self.open_call(&id, fields, out);
        }
        let Some(call) = self.open.get_mut(&id) else {
            return;
        };
        let mut update = ToolUpdate::default();
        if let Some(title) = str_field(fields, "title")
            && title != call.title
        {
            call.title = title.to_string();
            update.title = Some(title.to_string());
        }
        if let Some(kind) = str_field(fields, "kind")
            && call.kind.as_deref() != Some(kind)
        {
            call.kind = Some(kind.to_string());
            update.kind = Some(kind.to_string());
        }
        if let Some(input) = fields.get("rawInput").filter(|v| is_meaningful(v))
            && call.input.as_ref() != Some(input)
        {
            call.input = Some(input.clone());
            update.input = Some(input.clone());
        }
        let progress = str_field(fields, "status").and_then(progress_of);
        if let Some(p) = progress
            && call.progress != Some(p)
        {
            call.progress = Some(p);
            update.progress = Some(p);
        }
        if let Some(locations) = fields.get("locations").and_then(Value::as_array) {
            let locations: Vec<String> = locations
                .iter()
                .filter_map(|l| str_field(l, "path").map(str::to_string))
                .collect();
            if locations != call.locations {
                call.locations = locations.clone();
                update.locations = locations;
            }
        }
        let meta = fields.get("_meta");
        let mut output = String::new();
        for key in ["terminal_output", "terminal_output_delta"] {
            if let Some(data) = meta
                .and_then(|m| m.get(key))
                .and_then(|t| str_field(t, "data"))
            {
                output.push_str(data);
            }
        }
        if let Some(exit) = meta.and_then(|m| m.get("terminal_exit")) {
            call.exit_code = exit
                .get("exit_code")
                .and_then(Value::as_i64)
                .and_then(|c| i32::try_from(c).ok());
        }
        if let Some(content) = fields.get("content").and_then(Value::as_array) {
            let running = call.progress == Some(ToolProgress::InProgress)
                || call.progress == Some(ToolProgress::Completed)
                || call.progress == Some(ToolProgress::Failed);
            let executes = call.kind.as_deref() == Some("execute");
            let mut shown = Vec::new();
            for item in content {
                match content_of(item) {
                    // A command's output reported as text (the agent ran it itself):
                    // it streams into the card's terminal, not its description.
                    Some(ToolContent::Text { text }) if executes && running => {
                        output.push_str(&fresh_output(&mut call.reported, &text));
                    }
                    Some(other) => shown.push(other),
                    None => {}
                }
            }
            if !shown.is_empty() {
                update.content = Some(shown);
            }
        }
        if update != ToolUpdate::default() {
            let mut message = Message::new(MessageType::ToolUpdate, "");
            message.tool_call_id = Some(id.clone());
            message.tool_update = Some(update);
            out.push(message);
        }
        if !output.is_empty() {
            let text = crlf(&output);
            push_tail(&mut call.tail, &text);
            out.extend(output_messages(&id, &text));
        }
        if let Some(status) = self.closed_status(fields) {
            let summary = match status {
                ToolStatus::Completed => "completed".to_string(),
                _ => "failed".to_string(),
            };
            let raw_output = fields.get("rawOutput").cloned();
            out.push(self.close(&id, status, summary, raw_output));
        }
    }

    fn closed_status(&self, fields: &Value) -> Option<ToolStatus> {
        match str_field(fields, "status") {
            Some("completed") => Some(ToolStatus::Completed),
            Some("failed") => Some(ToolStatus::Error),
            _ => None,
        }
    }

    /// Closes `id` with its one result message.
    pub fn close(
        &mut self,
        id: &str,
        status: ToolStatus,
        summary: String,
        raw_output: Option<Value>,
    ) -> Message {
        let call = self.open.remove(id).unwrap_or_default();
        self.order.retain(|o| o != id);
        let mut result = Message::new(MessageType::Tool, summary);
        result.tool_call_id = Some(id.to_string());
        result.tool_name = Some(call.title);
        result.input = call.input;
        result.status = Some(status);
        result.tool_error = Some(status != ToolStatus::Completed);
        result.exit_code = call.exit_code;
        let mut tail = call.tail;
        if tail.is_empty()
            && let Some(raw) = raw_output
        {
            push_tail(&mut tail, &text_of(&raw));
        }
        result.tool_result = Some(tail);
        result
    }

    /// Closes every open call (the turn ended, the agent died) with `status`.
    pub fn close_all(&mut self, status: ToolStatus, summary: &str) -> Vec<Message> {
        self.open_ids()
            .into_iter()
            .map(|id| self.close(&id, status, summary.to_string(), None))
            .collect()
    }
}

/// `tool_output` messages for `text`, in pieces the log takes.
pub fn output_messages(id: &str, text: &str) -> Vec<Message> {
    crate::tools::chunk::split_chars(text, MAX_CHUNK_CHARS)
        .map(|piece| {
            let mut chunk = Message::new(MessageType::ToolOutput, piece);
            chunk.tool_call_id = Some(id.to_string());
            chunk
        })
        .collect()
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn is_meaningful(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(map) => !map.is_empty(),
        _ => true,
    }
}

fn progress_of(status: &str) -> Option<ToolProgress> {
    match status {
        "pending" => Some(ToolProgress::Pending),
        "in_progress" => Some(ToolProgress::InProgress),
        "completed" => Some(ToolProgress::Completed),
        "failed" => Some(ToolProgress::Failed),
        _ => None,
    }
}

/// One item of a tool call's `content`, as the protocol shows it.
fn content_of(item: &Value) -> Option<ToolContent> {
    match str_field(item, "type")? {
        "content" => {
            let block = item.get("content")?;
            let text = text_of(block);
            (!text.is_empty()).then_some(ToolContent::Text { text })
        }
        "diff" => Some(ToolContent::Diff {
            path: str_field(item, "path")?.to_string(),
            old_text: str_field(item, "oldText").map(str::to_string),
            new_text: str_field(item, "newText").unwrap_or_default().to_string(),
        }),
        "terminal" => Some(ToolContent::Terminal {
            terminal_id: str_field(item, "terminalId")?.to_string(),
        }),
        _ => None,
    }
}

/// The readable text of a content block, or of any JSON an agent reports.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(""),
        Value::Object(map) => match map.get("type").and_then(Value::as_str) {
            Some("text") => str_field(value, "text").unwrap_or_default().to_string(),
            Some("resource_link") => format!("[{}]", str_field(value, "uri").unwrap_or("link")),
            Some("image") => "[image]".to_string(),
            Some("audio") => "[audio]".to_string(),
            Some("resource") => value
                .get("resource")
                .and_then(|r| str_field(r, "text").or_else(|| str_field(r, "uri")))
                .unwrap_or_default()
                .to_string(),
            _ => map
                .get("output")
                .or_else(|| map.get("formatted_output"))
                .or_else(|| map.get("text"))
                .map(text_of)
                .unwrap_or_default(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What is new in `text` compared with what was reported before: agents that
/// resend the whole output each time extend the previous text.
fn fresh_output(reported: &mut String, text: &str) -> String {
    let fresh = match text.strip_prefix(reported.as_str()) {
        Some(rest) => rest.to_string(),
        // Not an extension: the agent replaced its output; show the new one whole.
        None if reported.is_empty() => text.to_string(),
        None => format!("\n{text}"),
    };
    *reported = text.to_string();
    fresh
}

/// Terminal views need `\r\n`; agents report plain `\n`.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut prev = '\0';
    for c in text.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Keeps the end of a call's output for its result: the same tail a shell command's
/// result carries.
fn push_tail(tail: &mut String, text: &str) {
    tail.push_str(text);
    keep_last_chars(tail, RESULT_TAIL_CHARS);
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
