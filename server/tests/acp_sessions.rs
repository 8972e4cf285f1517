//! An ACP agent's session across turns, restarts of the conversation and restarts
//! of Tether, its usage report, and agents that never get going — with the
//! scriptable fake agent (`fake-agent/`).

mod common;

use std::time::Duration;

use app::protocol::{Message, MessageType};
use common::{TestServer, marker, reply_text, wait_no_processes};
use serde_json::{Value, json};

async fn run(server: &TestServer, id: &str, script: &str) -> Vec<Message> {
    let turns = server
        .messages(id)
        .await
        .iter()
        .filter(|m| m.end_of_turn)
        .count();
    let mut stream = server.stream(id).await;
    server.chat(id, script).await;
    stream.wait_end_of_turns(turns + 1).await;
    server.messages(id).await
}

/// The ACP session ids Tether noted, in order.
fn sessions(log: &[Message]) -> Vec<String> {
    log.iter()
        .filter(|m| m.kind == MessageType::Notice)
        .filter_map(|m| {
            m.input
                .as_ref()?
                .get("acp_session_id")?
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

fn forgot(log: &[Message]) -> bool {
    log.iter()
        .any(|m| m.kind == MessageType::Notice && m.content.contains("does not remember"))
}

#[tokio::test]
async fn one_session_serves_every_turn_until_the_conversation_restarts() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    run(&server, &id, "say one").await;
    let log = run(&server, &id, "say two").await;
    assert_eq!(
        sessions(&log).len(),
        1,
        "the second turn reuses the session"
    );
    let (status, body) = server
        .post(&format!("conversations/{id}/restart"), json!({}))
        .await;
    assert_eq!(status, common::StatusCode::OK, "{body}");
    let log = run(&server, &id, "say three").await;
    let ids = sessions(&log);
    assert_eq!(ids.len(), 2, "a restart opens a new session");
    assert_ne!(ids[0], ids[1]);
    assert!(
        !forgot(&log),
        "a restart forgets on purpose: no note about it"
    );
}

#[tokio::test]
async fn after_tether_restarts_the_agent_reloads_its_session_when_it_can() {
    for (flags, reloads) in [("--load", true), ("", false)] {
        let flag = common::fake_agent_flag(flags);
        let mut server = TestServer::start_with(&["--agent", &flag]);
        let id = server.create_fake().await;
        run(&server, &id, "say before").await;
        server.restart();
        let log = run(&server, &id, "say after").await;
        let ids = sessions(&log);
        assert_eq!(ids.len(), 2, "{flags:?}: {ids:?}");
        if reloads {
            assert_eq!(ids[0], ids[1], "session/load reopens the same session");
            assert!(!forgot(&log));
        } else {
            assert!(forgot(&log), "without session/load the reset is visible");
        }
        assert!(reply_text(&log).ends_with("after"));
    }
}

#[tokio::test]
async fn a_turn_reports_the_agents_token_counts_and_context() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let log = run(&server, &id, "usage 120 30\nsay counted").await;
    let usage: Value = log
        .last()
        .and_then(|m| m.usage.clone())
        .expect("the closing message carries usage");
    assert_eq!(usage["input_tokens"], 120, "{usage}");
    assert_eq!(usage["output_tokens"], 30, "{usage}");
    assert_eq!(usage["context_used"], 150, "{usage}");
}

#[tokio::test]
async fn stopping_a_turn_kills_the_commands_tether_runs_for_the_agent() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let tag = marker();
    let mut stream = server.stream(&id).await;
    server
        .chat(&id, &format!("run echo {tag}; sleep 600.{tag}"))
        .await;
    stream.wait_output_contains(&tag).await;
    assert!(
        !common::wait_processes(&tag, Duration::from_secs(15))
            .await
            .is_empty(),
        "the command runs"
    );
    let (status, _) = server.cancel(&id, json!({})).await;
    assert_eq!(status, common::StatusCode::ACCEPTED);
    stream.wait_end_of_turns(1).await;
    wait_no_processes(&tag, Duration::from_secs(15))
        .await
        .expect("the command's processes are gone");
}

#[tokio::test]
async fn an_agent_that_never_answers_initialize_fails_the_turn_after_the_timeout() {
    let server = TestServer::with_fake_agent("--no-init");
    let id = server.create_fake().await;
    let mut stream = server.stream(&id).await;
    server.chat(&id, "say never").await;
    // The start timeout is 30 s: wait on the turn's end, not on a clock.
    stream
        .wait_until("the failed turn", Duration::from_secs(60), |s| {
            s.messages().iter().any(|m| m.end_of_turn)
        })
        .await;
    let log = server.messages(&id).await;
    let error = log
        .iter()
        .find(|m| m.kind == MessageType::Error)
        .expect("an error message");
    assert!(error.content.contains("initialize"), "{}", error.content);
    // The conversation takes messages again.
    server
        .wait_state(&id, "idle", |s| s.status == app::protocol::RunStatus::Idle)
        .await;
}

#[tokio::test]
async fn agents_left_behind_by_a_killed_tether_are_ended_on_its_next_start() {
    // An "agent" that never speaks and outlives its stdin, like Zed's adapters.
    let tag = marker();
    let flag = format!("stubborn=sleep 600.{tag}");
    let mut server = TestServer::start_with(&["--agent", &flag]);
    let dir = server.work_dir("work");
    let (status, created) = server
        .post(
            "conversations",
            json!({ "cwd": dir.to_str().expect("utf-8"), "agent": "stubborn" }),
        )
        .await;
    assert_eq!(status, common::StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("an id").to_string();
    server.chat(&id, "hello").await;
    // The server's own command line names the tag too: count the agent only.
    let agents = || {
        common::processes_with(&tag)
            .into_iter()
            .filter(|(_, cmdline)| cmdline.starts_with("sleep "))
            .count()
    };
    let deadline = std::time::Instant::now() + common::WAIT;
    while agents() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The process is visible a moment before Tether lists it: wait for the list.
    let listed = server.data_dir().join("agents.pids");
    while std::fs::read_to_string(&listed)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent was never listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    assert_eq!(agents(), 1, "the agent outlived Tether");
    server.restart();
    let deadline = std::time::Instant::now() + common::WAIT;
    while agents() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the next start did not end it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
