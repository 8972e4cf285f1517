//! A real ACP agent from npm — Zed's Claude Code adapter, pinned in
//! `agents/package-lock.json` — driving whole turns through Tether, offline: the
//! only fake is the model API (`fake-model/`, Anthropic's Messages dialect).
//! `scripts/test.sh` installs the agent; run `npm ci` in `agents/` to run this alone.

mod common;

use std::path::PathBuf;

use app::protocol::{MessageType, ToolStatus};
use common::{StatusCode, TestServer, WAIT, output_of, reply_text, results_of, tool_calls};
use serde_json::json;
use tether_fake_model::FakeModel;

fn claude_code_acp() -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../agents/node_modules/@zed-industries/claude-code-acp/dist/index.js");
    assert!(
        script.exists(),
        "claude-code-acp is not installed: run `npm ci` in agents/ (scripts/test.sh does)"
    );
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_asks_runs_in_a_tether_terminal_answers_and_stops() {
    let model = FakeModel::start().await.expect("the fake model server");
    let home = tempfile::tempdir().expect("a home directory");
    let flag = format!("claude=node {}", claude_code_acp().display());
    let url = model.url();
    let server = TestServer::start_with_env(
        &["--agent", &flag],
        &[
            ("HOME", home.path().to_str().expect("utf-8")),
            ("ANTHROPIC_BASE_URL", &url),
            ("ANTHROPIC_API_KEY", "sk-ant-fake"),
            ("DISABLE_TELEMETRY", "1"),
            ("DISABLE_ERROR_REPORTING", "1"),
            ("DISABLE_AUTOUPDATER", "1"),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ],
    );
    let dir = server.work_dir("work");
    let (status, created) = server
        .post(
            "conversations",
            json!({ "cwd": dir.to_str().expect("utf-8"), "agent": "claude" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("an id").to_string();
    let mut stream = server.stream(&id).await;

    // A command: the agent asks, Tether's terminal runs it, the agent answers.
    server
        .chat(&id, "Please RUN_TOOL[echo hello-from-$((6*7))]")
        .await;
    let state = server
        .wait_state(&id, "Claude's permission request", |s| {
            !s.pending_permissions.is_empty()
        })
        .await;
    assert_eq!(
        state.modes.as_ref().map(|m| m.current.as_str()),
        Some("default"),
        "Tether asks for the ask-first mode"
    );
    let request = &state.pending_permissions[0];
    let allow = request
        .options
        .iter()
        .find(|o| o.kind == "allow_once")
        .expect("an allow-once option");
    let (status, body) = server
        .post(
            &format!("conversations/{id}/permission"),
            json!({ "request_id": request.request_id, "option_id": allow.option_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    stream.wait_end_of_turns(1).await;
    let log = server.messages(&id).await;
    let calls = tool_calls(&log);
    let call = &calls.first().expect("a tool call").tool_call_id;
    assert!(
        output_of(&log, call).contains("hello-from-42"),
        "the command ran in Tether's terminal: {log:#?}"
    );
    let results = results_of(&log, call);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, Some(ToolStatus::Completed));
    let reply = reply_text(&log);
    assert!(reply.contains("I will run it."), "{reply}");
    assert!(
        reply.contains("hello-from-42"),
        "the final answer quotes the output: {reply}"
    );

    // A slow reply, stopped from Tether.
    server.chat(&id, "Please SLOW").await;
    stream
        .wait_until("the slow reply to start", WAIT, |s| {
            s.messages()
                .iter()
                .filter(|m| m.kind == MessageType::AgentText)
                .any(|m| m.content.contains("tick"))
        })
        .await;
    let (status, _) = server.cancel(&id, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    stream.wait_end_of_turns(2).await;
    let log = server.messages(&id).await;
    assert!(
        log.last()
            .is_some_and(|m| m.content.starts_with("Turn stopped"))
    );
    assert!(
        model.requests().iter().all(|r| r["path"]
            .as_str()
            .is_some_and(|p| p.contains("/v1/messages"))),
        "the agent only talked to the model server"
    );
}
