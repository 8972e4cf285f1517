//! OpenAI Chat Completions (`POST …/chat/completions`), as opencode's
//! openai-compatible provider uses it.
//!
//! Stream: unnamed `data:` chunks of `chat.completion.chunk`: first
//! `delta: {role, content: ""}`, then `content` pieces, then for a tool call one chunk
//! with the call's `id`/`name` and empty arguments followed by argument pieces, then a
//! chunk with `finish_reason`, a usage chunk (`choices: []`) and `data: [DONE]`.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::script::{self, Reply, ToolCall, Turn};
use crate::sse::{self, Gone, Sink};

/// Answers a Chat Completions request, streamed or not.
pub fn completions(body: Value) -> Response {
    let turn = turn(&body);
    let reply = script::reply(&turn, |cmd, _| shell_call(&body, cmd));
    let head = Head {
        id: script::new_id("chatcmpl-"),
        model: body.get("model").cloned().unwrap_or(json!("gpt-fake")),
        created: script::now(),
        input_tokens: script::input_tokens(&body),
    };
    if crate::wants_stream(&body) {
        sse::response(move |sink| stream(sink, reply, head))
    } else {
        axum::Json(whole(&reply, &head)).into_response()
    }
}

/// The last user turn: `role:"tool"` messages after the last `role:"user"` one, or
/// that message's text.
fn turn(body: &Value) -> Turn {
    let has_tools = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let mut turn = Turn {
        has_tools,
        ..Turn::default()
    };
    let messages = body.get("messages").and_then(Value::as_array);
    for message in messages.into_iter().flatten().rev() {
        let content = message.get("content").unwrap_or(&Value::Null);
        match message.get("role").and_then(Value::as_str) {
            Some("tool") => {
                turn.tool_result = Some(script::content_text(content));
                break;
            }
            Some("user") => {
                turn.text = script::content_text(content);
                break;
            }
            _ => {}
        }
    }
    turn
}

/// opencode's `bash` tool (`shell` as a fallback).
fn shell_call(body: &Value, cmd: &str) -> Option<ToolCall> {
    let tools = body.get("tools")?.as_array()?;
    let name = ["bash", "shell"].into_iter().find(|name| {
        tools
            .iter()
            .any(|t| t.pointer("/function/name") == Some(&json!(name)))
    })?;
    let input = json!({"command": cmd, "description": "Run a command"});
    Some(ToolCall {
        name: name.into(),
        input,
    })
}

struct Head {
    id: String,
    model: Value,
    created: u64,
    input_tokens: u64,
}

impl Head {
    fn chunk(&self, choices: Value) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices,
        })
    }

    fn usage(&self, reply: &Reply) -> Value {
        let output = reply.output_tokens();
        json!({"prompt_tokens": self.input_tokens, "completion_tokens": output, "total_tokens": self.input_tokens + output})
    }
}

fn finish_reason(reply: &Reply) -> &'static str {
    if reply.tool.is_some() {
        "tool_calls"
    } else {
        "stop"
    }
}

async fn stream(sink: Sink, reply: Reply, head: Head) -> Result<(), Gone> {
    let delta =
        |delta: Value| head.chunk(json!([{"index": 0, "delta": delta, "finish_reason": null}]));
    sink.event(None, &delta(json!({"role": "assistant", "content": ""})))
        .await?;
    for piece in &reply.text {
        if let Some(pace) = reply.pace {
            tokio::time::sleep(pace).await;
        }
        sink.event(None, &delta(json!({"content": piece}))).await?;
    }
    if let Some(tool) = &reply.tool {
        let call = json!({"index": 0, "id": script::new_id("call_"), "type": "function",
                          "function": {"name": tool.name, "arguments": ""}});
        sink.event(None, &delta(json!({"tool_calls": [call]})))
            .await?;
        for piece in tool.pieces() {
            let call = json!({"index": 0, "function": {"arguments": piece}});
            sink.event(None, &delta(json!({"tool_calls": [call]})))
                .await?;
        }
    }
    let finish = json!([{"index": 0, "delta": {}, "finish_reason": finish_reason(&reply)}]);
    sink.event(None, &head.chunk(finish)).await?;
    let mut usage = head.chunk(json!([]));
    usage["usage"] = head.usage(&reply);
    sink.event(None, &usage).await?;
    sink.raw("data: [DONE]\n\n".into()).await
}

/// The `stream: false` body (a `SLOW` reply comes at once).
fn whole(reply: &Reply, head: &Head) -> Value {
    let mut message = json!({"role": "assistant", "content": reply.full_text()});
    if let Some(tool) = &reply.tool {
        message["tool_calls"] = json!([{"id": script::new_id("call_"), "type": "function",
            "function": {"name": tool.name, "arguments": tool.input.to_string()}}]);
    }
    json!({
        "id": head.id, "object": "chat.completion", "created": head.created, "model": head.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(reply)}],
        "usage": head.usage(reply),
    })
}
