//! Each dialect, posted the way the real agents post it, must stream events an SDK
//! can put back together: text deltas that concatenate to the scripted answer, and
//! tool-call argument pieces that concatenate to JSON naming the command.

use serde_json::{Value, json};
use tether_fake_model::FakeModel;
use tether_fake_model::script::{HELLO, INTRO, REFUSED};
use tether_testkit::Request;

/// Posts `body` and splits the (finished) SSE body into `(event name, data)` pairs;
/// `data: [DONE]` comes back as the string "[DONE]".
async fn events(model: &FakeModel, path: &str, body: Value) -> Vec<(String, Value)> {
    let response = Request::post(path)
        .json(&body)
        .send(model.addr)
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), 200, "{}", response.text());
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ASCII")
        .to_string();
    assert_eq!(content_type, "text/event-stream");
    assert!(response.head.chunked, "SSE must be chunked");
    response
        .text()
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
            (name, data)
        })
        .collect()
}

fn strs<'a>(
    events: &'a [(String, Value)],
    pick: impl Fn(&'a Value) -> Option<&'a Value>,
) -> Vec<&'a str> {
    events
        .iter()
        .filter_map(|(_, d)| pick(d))
        .filter_map(Value::as_str)
        .collect()
}

/// Checks joined argument pieces: at least two, valid JSON, returned parsed.
fn arguments(pieces: &[&str]) -> Value {
    assert!(
        pieces.len() >= 2,
        "arguments must arrive in pieces: {pieces:?}"
    );
    serde_json::from_str(&pieces.concat()).expect("the pieces join to JSON")
}

fn anthropic(messages: Value, with_tools: bool) -> Value {
    let bash = json!({"name": "mcp__acp__Bash", "input_schema": {"type": "object", "required": ["command", "timeout"],
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}, "description": {"type": "string"}}}});
    let read = json!({"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {}}}});
    let tools = if with_tools {
        json!([read, bash])
    } else {
        json!([])
    };
    json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "stream": true,
           "system": [{"type": "text", "text": "You are Claude Code."}], "tools": tools, "messages": messages})
}

fn anthropic_text(events: &[(String, Value)]) -> String {
    strs(events, |d| d.pointer("/delta/text")).concat()
}

#[tokio::test]
async fn anthropic_streams_text_then_a_bash_call_in_pieces() {
    let model = FakeModel::start().await.unwrap();
    // Claude Code puts a system message after the user's: the user's one counts.
    let body = anthropic(
        json!([{"role": "user", "content": [{"type": "text", "text": "Please RUN_TOOL[echo hello]"}]},
               {"role": "system", "content": "Available agent types: …"}]),
        true,
    );
    let events = events(&model, "/v1/messages?beta=true", body).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    assert_eq!(anthropic_text(&events), INTRO);
    let tool = events
        .iter()
        .find_map(|(_, d)| {
            d.pointer("/content_block")
                .filter(|b| b["type"] == "tool_use")
        })
        .unwrap();
    assert_eq!(tool["name"], "mcp__acp__Bash");
    assert!(tool["id"].as_str().unwrap().starts_with("toolu_"));
    let input = arguments(&strs(&events, |d| d.pointer("/delta/partial_json")));
    assert_eq!(input["command"], "echo hello");
    assert_eq!(input["timeout"], 120000);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let logged = model.requests();
    assert_eq!(logged[0]["path"], "/v1/messages?beta=true");
    assert_eq!(logged[0]["body"]["model"], "claude-sonnet-4-5-20250929");
}

#[tokio::test]
async fn anthropic_quotes_tool_results_and_accepts_refusals() {
    let model = FakeModel::start().await.unwrap();
    let turn = |result: &str| {
        anthropic(
            json!([{"role": "user", "content": "Please RUN_TOOL[echo hello]"},
                   {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "mcp__acp__Bash", "input": {}}]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                 "content": [{"type": "text", "text": result}]}]}]),
            true,
        )
    };
    let done = events(&model, "/v1/messages", turn("hello")).await;
    assert_eq!(anthropic_text(&done), "Done. The command printed: hello");
    assert_eq!(done[done.len() - 2].1["delta"]["stop_reason"], "end_turn");
    let refused = events(
        &model,
        "/v1/messages",
        turn("User refused permission to run tool"),
    )
    .await;
    assert_eq!(anthropic_text(&refused), REFUSED);

    // After a cancelled SLOW prompt Claude Code sends one merged user message.
    let merged = anthropic(
        json!([{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>date</system-reminder>"},
            {"type": "text", "text": "Please SLOW"},
            {"type": "text", "text": "[Request interrupted by user]"},
            {"type": "text", "text": "Say hi"}]}]),
        true,
    );
    assert_eq!(
        anthropic_text(&events(&model, "/v1/messages", merged).await),
        HELLO
    );
}

#[tokio::test]
async fn anthropic_plain_replies_come_word_by_word_and_unstreamed() {
    let model = FakeModel::start().await.unwrap();
    // No tools: a title request, so even RUN_TOOL gets plain text.
    let title = anthropic(
        json!([{"role": "user", "content": "Title for: RUN_TOOL[ls]"}]),
        false,
    );
    let plain = events(&model, "/v1/messages", title).await;
    assert_eq!(anthropic_text(&plain), HELLO);
    assert_eq!(strs(&plain, |d| d.pointer("/delta/text")).len(), 5);

    let scripted = anthropic(
        json!([{"role": "user", "content": "REPLY[one two three]"}]),
        true,
    );
    assert_eq!(
        anthropic_text(&events(&model, "/v1/messages", scripted).await),
        "one two three"
    );

    let mut whole = anthropic(json!([{"role": "user", "content": "RUN_TOOL[pwd]"}]), true);
    whole["stream"] = json!(false);
    let reply = Request::post("/v1/messages")
        .json(&whole)
        .send(model.addr)
        .await
        .unwrap();
    let reply: Value = reply.json().unwrap();
    assert_eq!(reply["stop_reason"], "tool_use");
    assert_eq!(reply["content"][1]["input"]["command"], "pwd");
    assert!(reply["usage"]["input_tokens"].as_u64().unwrap() > 0);
}

fn codex(input: Value) -> Value {
    let exec = json!({"type": "function", "name": "exec_command", "parameters": {"type": "object",
        "properties": {"cmd": {"type": "string"}, "sandbox_permissions": {}, "justification": {}}, "required": ["cmd"]}});
    json!({"model": "gpt-5.5", "stream": true, "instructions": "", "tool_choice": "auto", "store": false,
           "tools": [exec, {"type": "web_search", "external_web_access": false}], "input": input})
}

fn user_item(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

#[tokio::test]
async fn responses_stream_an_escalated_exec_command_call() {
    let model = FakeModel::start().await.unwrap();
    let input = json!([{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
                       user_item("<environment_context>cwd</environment_context>"),
                       user_item("Please ESCALATE RUN_TOOL[touch x]")]);
    let events = events(&model, "/v1/responses", codex(input)).await;
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    assert_eq!(events[0].0, "response.created");
    assert_eq!(events.last().unwrap().0, "response.completed");
    let text = strs(&events, |d| {
        (d["type"] == "response.output_text.delta").then(|| &d["delta"])
    });
    assert_eq!(text.concat(), INTRO);
    let pieces = strs(&events, |d| {
        (d["type"] == "response.function_call_arguments.delta").then(|| &d["delta"])
    });
    let args = arguments(&pieces);
    assert_eq!(
        args,
        json!({"cmd": "touch x", "sandbox_permissions": "require_escalated", "justification": "Need to run it"})
    );
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["output"][1]["name"], "exec_command");
    assert!(
        done["output"][1]["call_id"]
            .as_str()
            .unwrap()
            .starts_with("call_")
    );
    let usage = &done["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn responses_quote_the_function_call_output() {
    let model = FakeModel::start().await.unwrap();
    let input = json!([user_item("Please RUN_TOOL[echo hello]"),
        {"type": "function_call", "name": "exec_command", "arguments": "{\"cmd\":\"echo hello\"}", "call_id": "call_1"},
        {"type": "function_call_output", "call_id": "call_1", "output": "Process exited with code 0\nOutput:\nhello\n"}]);
    let events = events(&model, "/v1/responses", codex(input)).await;
    let text = strs(&events, |d| {
        (d["type"] == "response.output_text.delta").then(|| &d["delta"])
    });
    assert_eq!(
        text.concat(),
        "Done. The command printed: Process exited with code 0\nOutput:\nhello\n"
    );
    assert!(
        !events
            .iter()
            .any(|(n, _)| n.starts_with("response.function_call"))
    );
}

fn opencode(messages: Value) -> Value {
    let bash = json!({"type": "function", "function": {"name": "bash", "parameters": {"type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"}}, "required": ["command"]}}});
    json!({"model": "fake-model", "max_tokens": 32000, "stream": true, "stream_options": {"include_usage": true},
           "tool_choice": "auto", "tools": [bash], "messages": messages})
}

fn chat_text(events: &[(String, Value)]) -> String {
    strs(events, |d| d.pointer("/choices/0/delta/content")).concat()
}

#[tokio::test]
async fn chat_completions_stream_a_bash_call_then_usage_and_done() {
    let model = FakeModel::start().await.unwrap();
    let body = opencode(json!([{"role": "system", "content": "You are opencode"},
                               {"role": "user", "content": [{"type": "text", "text": "Please RUN_TOOL[echo hello]"}]}]));
    let events = events(&model, "/v1/chat/completions", body).await;
    assert_eq!(
        events[0].1["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chat_text(&events), INTRO);
    let calls: Vec<&Value> = events
        .iter()
        .filter_map(|(_, d)| d.pointer("/choices/0/delta/tool_calls/0"))
        .collect();
    assert_eq!(calls[0]["function"]["name"], "bash");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    let pieces: Vec<&str> = calls[1..]
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    let args = arguments(&pieces);
    assert_eq!(args["command"], "echo hello");
    let n = events.len();
    assert_eq!(events[n - 3].1["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(events[n - 2].1["choices"], json!([]));
    assert!(events[n - 2].1["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(events[n - 1].1, "[DONE]");
}

#[tokio::test]
async fn chat_completions_answer_tool_messages_titles_and_plain_json() {
    let model = FakeModel::start().await.unwrap();
    let body = opencode(
        json!([{"role": "user", "content": "Please RUN_TOOL[echo hello]"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
                                                             "function": {"name": "bash", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "hello\n"}]),
    );
    let done = events(&model, "/v1/chat/completions", body).await;
    assert_eq!(chat_text(&done), "Done. The command printed: hello\n");

    let title = json!({"model": "fake-model", "stream": true, "messages": [
        {"role": "system", "content": "You are a title generator"},
        {"role": "user", "content": "Generate a title for this conversation: SLOW RUN_TOOL[ls]"}]});
    assert_eq!(
        chat_text(&events(&model, "/v1/chat/completions", title).await),
        HELLO
    );

    let mut whole = opencode(json!([{"role": "user", "content": "RUN_TOOL[ls -la]"}]));
    whole["stream"] = json!(false);
    let reply = Request::post("/chat/completions")
        .json(&whole)
        .send(model.addr)
        .await
        .unwrap();
    let reply: Value = reply.json().unwrap();
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    let args = reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap()["command"],
        "ls -la"
    );
}
