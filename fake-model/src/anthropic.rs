//! Anthropic Messages (`POST …/messages`), as Claude Code and claude-code-acp use it.
//!
//! Stream: `message_start` → per block `content_block_start` / `content_block_delta`
//! (`text_delta` or `input_json_delta`) / `content_block_stop` → `message_delta`
//! (stop reason, usage) → `message_stop`.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::script::{self, Reply, ToolCall, Turn};
use crate::sse::{self, Gone, Sink};

/// Answers a Messages request, streamed or not.
pub fn messages(body: Value) -> Response {
    let turn = turn(&body);
    let reply = script::reply(&turn, |cmd, _| shell_call(&body, cmd));
    let model = body.get("model").cloned().unwrap_or(json!("claude-fake"));
    let input_tokens = script::input_tokens(&body);
    if crate::wants_stream(&body) {
        sse::response(move |sink| stream(sink, reply, model, input_tokens))
    } else {
        axum::Json(whole(&reply, model, input_tokens)).into_response()
    }
}

/// The last `role:"user"` message (Claude Code puts a `role:"system"` one after it).
fn turn(body: &Value) -> Turn {
    let has_tools = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let last_user = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role") == Some(&json!("user")))
        });
    let Some(content) = last_user.and_then(|m| m.get("content")) else {
        return Turn {
            has_tools,
            ..Turn::default()
        };
    };
    let Some(blocks) = content.as_array() else {
        return Turn {
            text: script::content_text(content),
            tool_result: None,
            has_tools,
        };
    };
    // After a cancel, Claude Code merges the interrupted prompt, an
    // "[Request interrupted by user…]" block and the next prompt into one user
    // message: only what follows the last interruption is the current turn.
    let interrupted = |b: &Value| {
        b.get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("[Request interrupted"))
    };
    let current = match blocks.iter().rposition(interrupted) {
        Some(i) => &blocks[i + 1..],
        None => &blocks[..],
    };
    let tool_result = current
        .iter()
        .find(|b| b.get("type") == Some(&json!("tool_result")))
        .map(|b| script::content_text(b.get("content").unwrap_or(&Value::Null)));
    Turn {
        text: script::content_text(&Value::Array(current.to_vec())),
        tool_result,
        has_tools,
    }
}

/// A call of `Bash` or an MCP-wrapped `…__Bash` (claude-code-acp's `mcp__acp__Bash`).
fn shell_call(body: &Value, cmd: &str) -> Option<ToolCall> {
    let tool = body.get("tools")?.as_array()?.iter().find(|t| {
        t.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n == "Bash" || n.ends_with("__Bash"))
    })?;
    let name = tool.get("name")?.as_str()?.to_string();
    let mut input = json!({"command": cmd, "description": "Run a command"});
    // mcp__acp__Bash lists `timeout` as required; a schema without it would reject it.
    let props = tool.pointer("/input_schema/properties");
    if props.is_none_or(|p| p.get("timeout").is_some()) {
        input["timeout"] = json!(120000);
    }
    Some(ToolCall { name, input })
}

fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    })
}

fn stop_reason(reply: &Reply) -> &'static str {
    if reply.tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    }
}

async fn stream(sink: Sink, reply: Reply, model: Value, input_tokens: u64) -> Result<(), Gone> {
    let message = json!({
        "id": script::new_id("msg_"), "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage(input_tokens, 1),
    });
    sink.event(
        Some("message_start"),
        &json!({"type": "message_start", "message": message}),
    )
    .await?;
    let start = json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}});
    sink.event(Some("content_block_start"), &start).await?;
    for delta in &reply.text {
        if let Some(pace) = reply.pace {
            tokio::time::sleep(pace).await;
        }
        let event = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": delta}});
        sink.event(Some("content_block_delta"), &event).await?;
    }
    let stop = json!({"type": "content_block_stop", "index": 0});
    sink.event(Some("content_block_stop"), &stop).await?;
    if let Some(tool) = &reply.tool {
        let block = json!({"type": "tool_use", "id": script::new_id("toolu_"), "name": tool.name, "input": {}});
        let start = json!({"type": "content_block_start", "index": 1, "content_block": block});
        sink.event(Some("content_block_start"), &start).await?;
        for piece in tool.pieces() {
            let delta = json!({"type": "input_json_delta", "partial_json": piece});
            let event = json!({"type": "content_block_delta", "index": 1, "delta": delta});
            sink.event(Some("content_block_delta"), &event).await?;
        }
        let stop = json!({"type": "content_block_stop", "index": 1});
        sink.event(Some("content_block_stop"), &stop).await?;
    }
    let delta = json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(&reply), "stop_sequence": null},
        "usage": {"output_tokens": reply.output_tokens()},
    });
    sink.event(Some("message_delta"), &delta).await?;
    sink.event(Some("message_stop"), &json!({"type": "message_stop"}))
        .await
}

/// The `stream: false` body (a `SLOW` reply comes at once).
fn whole(reply: &Reply, model: Value, input_tokens: u64) -> Value {
    let mut content = vec![json!({"type": "text", "text": reply.full_text()})];
    if let Some(tool) = &reply.tool {
        content.push(json!({"type": "tool_use", "id": script::new_id("toolu_"), "name": tool.name, "input": tool.input}));
    }
    json!({
        "id": script::new_id("msg_"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason(reply), "stop_sequence": null,
        "usage": usage(input_tokens, reply.output_tokens()),
    })
}
