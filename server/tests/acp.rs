//! ACP agents through Tether, over real HTTP and SSE, with the scriptable fake agent
//! (`fake-agent/`): its prompt is the script it runs (`say`, `ask-run`, `run`,
//! `crash`, …), so each test states exactly what the agent does.

mod common;

use app::protocol::{Message, MessageType, ToolStatus};
use common::{
    StatusCode, TestServer, WAIT, assert_dense, assert_error, output_of, reply_text, results_of,
    tool_calls,
};
use serde_json::json;

/// Chats `script` and waits for its turn's end; returns the whole log.
async fn run(server: &TestServer, id: &str, script: &str) -> Vec<Message> {
    let turns_before = server
        .messages(id)
        .await
        .iter()
        .filter(|m| m.end_of_turn)
        .count();
    let mut stream = server.stream(id).await;
    server.chat(id, script).await;
    stream.wait_end_of_turns(turns_before + 1).await;
    let log = server.messages(id).await;
    assert_dense(&log, 0);
    log
}

fn permission_requests(log: &[Message]) -> Vec<&Message> {
    log.iter()
        .filter(|m| m.kind == MessageType::Permission)
        .collect()
}

#[tokio::test]
async fn the_agent_is_offered_and_its_reply_streams_into_the_log() {
    let server = TestServer::with_fake_agent("");
    let (status, agents) = server.get("agents").await;
    assert_eq!(status, StatusCode::OK);
    let fake = agents
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "fake"))
        .cloned()
        .expect("the fake agent is listed");
    assert_eq!(fake["available"], true, "{fake}");
    assert!(
        fake["command"]
            .as_str()
            .is_some_and(|c| c.contains("fake-acp-agent"))
    );

    let id = server.create_fake().await;
    assert_eq!(server.state(&id).await.agent, "fake");
    let log = run(
        &server,
        &id,
        "think let me see\nsay hello brave new world\nplan read; write; test\nplan-done 1",
    )
    .await;
    assert_eq!(reply_text(&log), "hello brave new world");
    let thoughts: String = log
        .iter()
        .filter(|m| m.kind == MessageType::Thought)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(thoughts, "let me see");
    let plans: Vec<_> = log.iter().filter_map(|m| m.plan.clone()).collect();
    assert_eq!(plans.len(), 2, "each plan update is one message");
    assert_eq!(plans[1][0].status, "completed");
    assert_eq!(plans[1][1].status, "in_progress");
    let end = log.last().expect("a closing message");
    assert!(end.end_of_turn);
    assert_eq!(end.content, "Done.");
    // The session's modes are in the state, and can be changed.
    let state = server.state(&id).await;
    let modes = state.modes.expect("the agent's modes");
    assert_eq!(modes.current, "ask");
    let (status, body) = server
        .post(&format!("conversations/{id}/mode"), json!({ "id": "plan" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["choices"]["current"], "plan");
    assert_eq!(
        server.state(&id).await.modes.expect("modes").current,
        "plan"
    );
    let refused = server
        .post(
            &format!("conversations/{id}/mode"),
            json!({ "id": "nonesuch" }),
        )
        .await;
    assert_error("unknown mode", &refused, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_approved_command_runs_in_a_tether_terminal_and_streams_into_its_card() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let mut stream = server.stream(&id).await;
    server.chat(&id, "ask-run echo approved-$((40+2))").await;
    let state = server
        .wait_state(&id, "a pending permission request", |s| {
            !s.pending_permissions.is_empty()
        })
        .await;
    let request = &state.pending_permissions[0];
    let allow = request
        .options
        .iter()
        .find(|o| o.kind == "allow_once")
        .expect("an allow-once option");
    assert_eq!(allow.option_id, "yes", "the agent's own option id");
    let (status, body) = server
        .post(
            &format!("conversations/{id}/permission"),
            json!({ "request_id": request.request_id, "option_id": allow.option_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answer"]["outcome"], "allow_once");
    let again = server
        .post(
            &format!("conversations/{id}/permission"),
            json!({ "request_id": request.request_id, "option_id": "no" }),
        )
        .await;
    assert_error("a second answer", &again, StatusCode::CONFLICT);
    stream.wait_end_of_turns(1).await;
    let log = server.messages(&id).await;
    let calls = tool_calls(&log);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0].tool_call_id;
    assert!(output_of(&log, call).contains("approved-42"), "{log:#?}");
    let results = results_of(&log, call);
    assert_eq!(results.len(), 1, "exactly one result");
    assert_eq!(results[0].status, Some(ToolStatus::Completed));
    assert_eq!(permission_requests(&log).len(), 1);
    assert!(log.iter().any(|m| m.kind == MessageType::PermissionAnswer));
    assert!(
        reply_text(&log).contains("exit 0: approved-42"),
        "{}",
        reply_text(&log)
    );
    assert!(server.state(&id).await.pending_permissions.is_empty());
}

#[tokio::test]
async fn a_rejected_command_does_not_run_and_the_agent_is_told() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let mut stream = server.stream(&id).await;
    server.chat(&id, "ask-run touch should-not-exist").await;
    let state = server
        .wait_state(&id, "a pending permission request", |s| {
            !s.pending_permissions.is_empty()
        })
        .await;
    let request = &state.pending_permissions[0];
    let reject = request
        .options
        .iter()
        .find(|o| o.kind == "reject_once")
        .expect("a reject option");
    let (status, _) = server
        .post(
            &format!("conversations/{id}/permission"),
            json!({ "request_id": request.request_id, "option_id": reject.option_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    stream.wait_end_of_turns(1).await;
    let log = server.messages(&id).await;
    assert!(reply_text(&log).contains("rejected touch should-not-exist"));
    assert!(!server.work_dir("work").join("should-not-exist").exists());
    let call = &tool_calls(&log)[0].tool_call_id;
    assert_eq!(results_of(&log, call).len(), 1);
    assert_eq!(results_of(&log, call)[0].status, Some(ToolStatus::Error));
}

#[tokio::test]
async fn cancelling_one_agent_terminal_stops_that_command_and_the_turn_goes_on() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let mut stream = server.stream(&id).await;
    server
        .chat(&id, "run echo started; sleep 60\nsay still here")
        .await;
    stream.wait_output_contains("started").await;
    let state = server
        .wait_state(&id, "a running agent terminal", |s| {
            !s.outstanding_tool_calls.is_empty()
        })
        .await;
    let call = state.outstanding_tool_calls[0].clone();
    let (status, body) = server.cancel(&id, json!({ "tool_call_id": call })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    stream.wait_end_of_turns(1).await;
    let log = server.messages(&id).await;
    assert!(
        reply_text(&log).contains("still here"),
        "the turn went on: {}",
        reply_text(&log)
    );
    assert_eq!(results_of(&log, &call).len(), 1);
    assert_eq!(log.last().map(|m| m.content.as_str()), Some("Done."));
}

#[tokio::test]
async fn stopping_the_turn_cancels_the_agent_and_closes_its_open_calls() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let mut stream = server.stream(&id).await;
    server.chat(&id, "open left open\nsleep 60").await;
    stream
        .wait_until("the open call", WAIT, |s| {
            !common::tool_calls(&s.messages()).is_empty()
        })
        .await;
    let (status, _) = server.cancel(&id, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    stream.wait_end_of_turns(1).await;
    let log = server.messages(&id).await;
    let call = &tool_calls(&log)[0].tool_call_id;
    let results = results_of(&log, call);
    assert_eq!(
        results.len(),
        1,
        "the turn's end closes the call the agent left open"
    );
    assert_eq!(results[0].status, Some(ToolStatus::Cancelled));
    assert!(
        log.last()
            .is_some_and(|m| m.content.starts_with("Turn stopped"))
    );
    // The agent is still there for the next message.
    let log = run(&server, &id, "say again").await;
    assert!(reply_text(&log).ends_with("again"));
}

#[tokio::test]
async fn an_agent_that_crashes_ends_the_turn_with_its_last_words_and_starts_afresh() {
    let server = TestServer::with_fake_agent("--stderr-lines 3");
    let id = server.create_fake().await;
    let log = run(&server, &id, "say before\nopen doomed\nsleep 0.3\ncrash").await;
    let error = log
        .iter()
        .find(|m| m.kind == MessageType::Error)
        .expect("an error message");
    assert!(error.content.contains("exit code 3"), "{}", error.content);
    assert!(
        error.content.contains("crashing on purpose"),
        "{}",
        error.content
    );
    let call = &tool_calls(&log)[0].tool_call_id;
    assert_eq!(
        results_of(&log, call)[0].status,
        Some(ToolStatus::Interrupted)
    );
    let log = run(&server, &id, "say back again").await;
    assert!(reply_text(&log).ends_with("back again"));
    assert!(
        log.iter()
            .any(|m| m.kind == MessageType::Notice && m.content.contains("does not remember")),
        "the reset of the agent's memory is visible"
    );
}

#[tokio::test]
async fn garbage_on_the_agents_stdout_is_an_error_not_a_hang() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let log = run(&server, &id, "say ok\ngarbage\nsleep 60").await;
    let error = log
        .iter()
        .find(|m| m.kind == MessageType::Error)
        .expect("an error message");
    assert!(error.content.contains("not JSON-RPC"), "{}", error.content);
}

#[tokio::test]
async fn an_agent_that_cannot_start_fails_the_turn_clearly() {
    let server = TestServer::with_fake_agent("--exit-at-once");
    let id = server.create_fake().await;
    let log = run(&server, &id, "say never").await;
    let error = log
        .iter()
        .find(|m| m.kind == MessageType::Error)
        .expect("an error message");
    assert!(
        error.content.contains("refuses to start"),
        "{}",
        error.content
    );

    let missing = TestServer::in_process_with(&["--agent", "gone=/no/such/agent"]);
    let (_, agents) = missing.get("agents").await;
    let gone = agents
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "gone"))
        .cloned()
        .expect("listed");
    assert_eq!(gone["available"], false);
    assert!(
        gone["problem"]
            .as_str()
            .is_some_and(|p| p.contains("/no/such/agent"))
    );
}

#[tokio::test]
async fn files_are_confined_to_the_conversation_and_writes_show_as_diffs() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let log = run(
        &server,
        &id,
        "write notes/a.txt first\\nsecond\nread notes/a.txt\nread ../outside.txt\nread /etc/hostname\nwrite ../escape.txt x",
    )
    .await;
    let work = server.work_dir("work");
    assert_eq!(
        std::fs::read_to_string(work.join("notes/a.txt")).expect("written"),
        "first\nsecond"
    );
    assert!(!work.parent().expect("a parent").join("escape.txt").exists());
    let reply = reply_text(&log);
    assert!(reply.contains("read: first\nsecond"), "{reply}");
    assert_eq!(reply.matches("read failed").count(), 2, "{reply}");
    assert!(reply.contains("write failed"), "{reply}");
    assert!(
        log.iter().any(|m| m
            .tool_update
            .as_ref()
            .and_then(|u| u.content.as_ref())
            .is_some_and(|c| c
                .iter()
                .any(|c| matches!(c, app::protocol::ToolContent::Diff { .. })))),
        "the write is in the log as a diff"
    );
}

#[tokio::test]
async fn the_agent_does_not_inherit_tethers_secrets() {
    let flag = common::fake_agent_flag("");
    let server = TestServer::start_with_env(
        &["--agent", &flag, "--env-deny", "PROBE_SECRET"],
        &[
            ("TETHER_PROBE", "leak"),
            ("PROBE_SECRET", "leak"),
            ("PROBE_PLAIN", "kept"),
        ],
    );
    let id = server.create_fake().await;
    let log = run(
        &server,
        &id,
        "env TETHER_PROBE\nenv PROBE_SECRET\nenv PROBE_PLAIN\ncwd",
    )
    .await;
    let reply = reply_text(&log);
    assert!(reply.contains("env TETHER_PROBE=(unset)"), "{reply}");
    assert!(reply.contains("env PROBE_SECRET=(unset)"), "{reply}");
    assert!(reply.contains("env PROBE_PLAIN=kept"), "{reply}");
    let work = server.work_dir("work").canonicalize().expect("canonical");
    assert!(
        reply.contains(work.to_str().expect("utf-8")),
        "runs in the conversation's directory: {reply}"
    );
}

#[tokio::test]
async fn a_flood_of_updates_is_kept_whole_and_in_order() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let log = run(&server, &id, "flood 3000").await;
    let expected: String = (1..=3000).map(|k| format!("chunk {k} ")).collect();
    assert_eq!(reply_text(&log), expected);
    let pieces = log
        .iter()
        .filter(|m| m.kind == MessageType::AgentText)
        .count();
    assert!(
        pieces < 3000,
        "pieces are coalesced into fewer messages ({pieces})"
    );
}
