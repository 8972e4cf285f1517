//! OpenAI Responses (`POST …/responses`), as codex and codex-acp use it.
//!
//! Stream: `response.created` → `response.in_progress` → per output item
//! `response.output_item.added`, then for a message `response.content_part.added`,
//! `response.output_text.delta`…, `response.output_text.done`,
//! `response.content_part.done`, or for a function call
//! `response.function_call_arguments.delta`…, `response.function_call_arguments.done`,
//! then `response.output_item.done` → `response.completed` (with usage). Every event
//! is named after its `type` and numbered with `sequence_number`.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::script::{self, Reply, ToolCall, Turn};
use crate::sse::{self, Gone, Sink};

/// Answers a Responses request, streamed or not.
pub fn responses(body: Value) -> Response {
    let turn = turn(&body);
    let reply = script::reply(&turn, |cmd, escalate| shell_call(&body, cmd, escalate));
    let head = Head {
        id: script::new_id("resp_"),
        model: body.get("model").cloned().unwrap_or(json!("gpt-fake")),
        input_tokens: script::input_tokens(&body),
    };
    if crate::wants_stream(&body) {
        sse::response(move |sink| stream(sink, reply, head))
    } else {
        let items = items(&reply);
        axum::Json(head.response("completed", &items, &reply)).into_response()
    }
}

/// The last user turn: a `function_call_output` after the last user message, or that
/// message's text (codex sends `<environment_context>` as an earlier user message).
fn turn(body: &Value) -> Turn {
    let has_tools = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let mut turn = Turn {
        has_tools,
        ..Turn::default()
    };
    match body.get("input") {
        Some(Value::String(text)) => turn.text = text.clone(),
        Some(Value::Array(items)) => {
            for item in items.iter().rev() {
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                if kind == "function_call_output" {
                    let output = item.get("output").unwrap_or(&Value::Null);
                    turn.tool_result = Some(script::content_text(output));
                    break;
                }
                if kind == "message" && item.get("role") == Some(&json!("user")) {
                    turn.text = script::content_text(item.get("content").unwrap_or(&Value::Null));
                    break;
                }
            }
        }
        _ => {}
    }
    turn
}

/// codex's `exec_command` (`{"cmd"}`, escalation on request), else the older `shell`.
fn shell_call(body: &Value, cmd: &str, escalate: bool) -> Option<ToolCall> {
    let tools = body.get("tools")?.as_array()?;
    let has = |name: &str| tools.iter().any(|t| t.get("name") == Some(&json!(name)));
    if has("exec_command") {
        let mut input = json!({"cmd": cmd});
        if escalate {
            input["sandbox_permissions"] = json!("require_escalated");
            input["justification"] = json!("Need to run it");
        }
        Some(ToolCall {
            name: "exec_command".into(),
            input,
        })
    } else if has("shell") {
        let input = json!({"command": ["bash", "-lc", cmd]});
        Some(ToolCall {
            name: "shell".into(),
            input,
        })
    } else {
        None
    }
}

/// What every event and the final response share.
struct Head {
    id: String,
    model: Value,
    input_tokens: u64,
}

impl Head {
    fn response(&self, status: &str, output: &[Value], reply: &Reply) -> Value {
        let done = status == "completed";
        let output_tokens = reply.output_tokens();
        let usage = json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens + output_tokens,
        });
        json!({
            "id": self.id, "object": "response", "created_at": script::now(), "status": status,
            "model": self.model, "output": output, "usage": if done { usage } else { Value::Null },
        })
    }
}

/// The finished output items: the message, then the function call if any.
fn items(reply: &Reply) -> Vec<Value> {
    let mut items = vec![json!({
        "id": script::new_id("msg_"), "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": reply.full_text(), "annotations": []}],
    })];
    if let Some(tool) = &reply.tool {
        items.push(json!({
            "id": script::new_id("fc_"), "type": "function_call", "status": "completed",
            "call_id": script::new_id("call_"), "name": tool.name, "arguments": tool.input.to_string(),
        }));
    }
    items
}

/// Numbers events and names them after their type.
struct Events {
    sink: Sink,
    seq: u64,
}

impl Events {
    async fn emit(&mut self, kind: &str, mut data: Value) -> Result<(), Gone> {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.sink.event(Some(kind), &data).await
    }
}

async fn stream(sink: Sink, reply: Reply, head: Head) -> Result<(), Gone> {
    let mut ev = Events { sink, seq: 0 };
    let items = items(&reply);
    let started = head.response("in_progress", &[], &reply);
    ev.emit("response.created", json!({"response": started}))
        .await?;
    ev.emit("response.in_progress", json!({"response": started}))
        .await?;

    let msg = &items[0];
    let msg_id = &msg["id"];
    let mut added = msg.clone();
    added["status"] = json!("in_progress");
    added["content"] = json!([]);
    ev.emit(
        "response.output_item.added",
        json!({"output_index": 0, "item": added}),
    )
    .await?;
    let empty = json!({"type": "output_text", "text": "", "annotations": []});
    let at = json!({"item_id": msg_id, "output_index": 0, "content_index": 0});
    ev.emit("response.content_part.added", with(&at, "part", empty))
        .await?;
    for delta in &reply.text {
        if let Some(pace) = reply.pace {
            tokio::time::sleep(pace).await;
        }
        ev.emit(
            "response.output_text.delta",
            with(&at, "delta", json!(delta)),
        )
        .await?;
    }
    ev.emit(
        "response.output_text.done",
        with(&at, "text", json!(reply.full_text())),
    )
    .await?;
    ev.emit(
        "response.content_part.done",
        with(&at, "part", msg["content"][0].clone()),
    )
    .await?;
    ev.emit(
        "response.output_item.done",
        json!({"output_index": 0, "item": msg}),
    )
    .await?;

    if let (Some(tool), Some(call)) = (&reply.tool, items.get(1)) {
        let mut added = call.clone();
        added["status"] = json!("in_progress");
        added["arguments"] = json!("");
        ev.emit(
            "response.output_item.added",
            json!({"output_index": 1, "item": added}),
        )
        .await?;
        let at = json!({"item_id": call["id"], "output_index": 1});
        for piece in tool.pieces() {
            ev.emit(
                "response.function_call_arguments.delta",
                with(&at, "delta", json!(piece)),
            )
            .await?;
        }
        let args = json!(tool.input.to_string());
        ev.emit(
            "response.function_call_arguments.done",
            with(&at, "arguments", args),
        )
        .await?;
        ev.emit(
            "response.output_item.done",
            json!({"output_index": 1, "item": call}),
        )
        .await?;
    }
    let done = head.response("completed", &items, &reply);
    ev.emit("response.completed", json!({"response": done}))
        .await
}

/// `base` plus one field.
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut out = base.clone();
    out[key] = value;
    out
}
