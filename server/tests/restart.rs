//! Restarting a conversation: markers, initial prompts, git revisions, and the
//! endpoints that feed the restart dialog.

mod common;

use std::path::Path;

use app::protocol::{MessageType, RunStatus, ToolStatus};
use common::StatusCode;
use common::{
    ProcessGuard, TestServer, assert_closed, assert_error, git, marker, output_of, tool_calls,
};
use serde_json::{Value, json};

async fn suggest(server: &TestServer, id: &str) -> String {
    let (status, body) = server
        .get(&format!("conversations/{id}/suggest-reprompt"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["prompt"].as_str().expect("a prompt").to_string()
}

#[tokio::test]
async fn restart_without_revision_keeps_history_and_runs_the_prompt() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;
    server.chat(&id, "echo before").await;
    sse.wait_end_of_turns(1).await;
    assert_eq!(suggest(&server, &id).await, "echo before");

    // A second turn still running when the restart comes.
    server
        .chat(&id, &format!("echo running; sleep 1000.{m}"))
        .await;
    sse.wait_output_contains("running\r\n").await;
    assert_eq!(suggest(&server, &id).await, "echo before");
    let before = sse.raw_messages();

    let (status, body) = server
        .post(
            &format!("conversations/{id}/restart"),
            json!({ "initial_prompt": "echo after" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let restart_idx = body["restart_idx"].as_u64().expect("restart_idx");
    assert_eq!(body["state"]["first_message_index"], restart_idx);

    sse.wait_end_of_turns(3).await;
    sse.assert_dense_from(0);
    let messages = sse.messages();
    let calls = tool_calls(&messages);
    assert_eq!(calls.len(), 3);
    // The running call was stopped before the marker.
    let closing = assert_closed(&messages, &calls[1].tool_call_id, ToolStatus::Cancelled);
    assert_eq!(
        closing.content,
        "Turn stopped: the conversation was restarted."
    );
    assert!(closing.idx < restart_idx);
    let marker_msg = messages[restart_idx as usize];
    assert_eq!(marker_msg.kind, MessageType::Restart);
    assert_eq!(marker_msg.revision, None);
    // The initial prompt is a new turn after the marker.
    let prompt = messages[restart_idx as usize + 1];
    assert_eq!(prompt.kind, MessageType::User);
    assert_eq!(prompt.content, "echo after");
    assert_eq!(output_of(&messages, &calls[2].tool_call_id), "after\r\n");
    assert_closed(&messages, &calls[2].tool_call_id, ToolStatus::Completed);

    let state = server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
    assert_eq!(state.first_message_index, restart_idx);
    // History is intact.
    let log = server.messages_json(&id).await;
    assert_eq!(log.len() as u64, state.message_count);
    for (idx, raw) in &before {
        assert_eq!(&log[*idx as usize], raw, "message {idx} changed");
    }
    assert_eq!(suggest(&server, &id).await, "echo after");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read a file")
}

#[tokio::test]
async fn restart_to_a_revision_checks_it_out_or_refuses() {
    let server = TestServer::in_process();
    let repo = server.work_dir("repo");
    git(&repo, &["init", "-q"]);
    let file = repo.join("a.txt");
    std::fs::write(&file, "one\n").expect("write");
    git(&repo, &["add", "a.txt"]);
    git(&repo, &["commit", "-q", "-m", "first commit"]);
    std::fs::write(&file, "two\n").expect("write");
    git(
        &repo,
        &[
            "commit",
            "-q",
            "-a",
            "-m",
            "second commit\n\nwith a body line",
        ],
    );
    let first = git(&repo, &["rev-parse", "HEAD~1"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    let id = server.create(&repo).await;
    let mut sse = server.stream(&id).await;
    server.chat(&id, "cat a.txt").await;
    sse.wait_end_of_turns(1).await;

    // The dialog's description of a commit.
    let (status, body) = server
        .get(&format!(
            "conversations/{id}/commit-description?revision=HEAD"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], second.as_str());
    let description = body["description"].as_str().expect("a description");
    assert!(description.contains("second commit"), "{description}");
    assert!(description.contains("with a body line"), "{description}");
    let unknown = server
        .get(&format!(
            "conversations/{id}/commit-description?revision=no-such-rev"
        ))
        .await;
    assert_error(
        "describe an unknown revision",
        &unknown,
        StatusCode::BAD_REQUEST,
    );

    let restart = |body: Value| {
        let server = &server;
        let id = id.clone();
        async move {
            server
                .post(&format!("conversations/{id}/restart"), body)
                .await
        }
    };
    let unchanged = server.state_json(&id).await;

    // A dirty tree: refused, nothing touched.
    std::fs::write(&file, "dirty\n").expect("write");
    let refused = restart(json!({ "revision": first })).await;
    assert_error("restart with a dirty tree", &refused, StatusCode::CONFLICT);
    assert_eq!(read(&file), "dirty\n");
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), second);
    assert_eq!(server.state_json(&id).await, unchanged);
    git(&repo, &["checkout", "-q", "--", "a.txt"]);

    // An unknown revision: 400, nothing touched.
    let refused = restart(json!({ "revision": "no-such-rev" })).await;
    assert_error(
        "restart to an unknown revision",
        &refused,
        StatusCode::BAD_REQUEST,
    );
    let refused = restart(json!({ "revision": "--orphan" })).await;
    assert_error("restart to an option", &refused, StatusCode::BAD_REQUEST);
    assert_eq!(server.state_json(&id).await, unchanged);
    assert_eq!(read(&file), "two\n");

    // A clean tree: checked out, and the marker says where.
    let (status, body) = restart(json!({ "revision": first })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let restart_idx = body["restart_idx"].as_u64().expect("restart_idx");
    assert_eq!(read(&file), "one\n");
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), first);
    sse.wait_idx(restart_idx).await;
    let messages = sse.messages();
    let marker_msg = messages[restart_idx as usize];
    assert_eq!(marker_msg.kind, MessageType::Restart);
    assert_eq!(marker_msg.revision.as_deref(), Some(first.as_str()));
    assert!(
        marker_msg.content.contains("first commit"),
        "{}",
        marker_msg.content
    );
    let state = server.state(&id).await;
    assert_eq!(state.first_message_index, restart_idx);
    assert_eq!(state.message_count, restart_idx + 1);

    // Not a git repository: 409, nothing touched.
    let plain = server.work_dir("plain");
    let other = server.create(&plain).await;
    let before = server.state_json(&other).await;
    let refused = server
        .post(
            &format!("conversations/{other}/restart"),
            json!({ "revision": "HEAD" }),
        )
        .await;
    assert_error("restart outside git", &refused, StatusCode::CONFLICT);
    let describe = server
        .get(&format!(
            "conversations/{other}/commit-description?revision=HEAD"
        ))
        .await;
    assert_error("describe outside git", &describe, StatusCode::CONFLICT);
    assert_eq!(server.state_json(&other).await, before);
}
