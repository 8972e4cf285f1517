//! Bad requests get a JSON error with the right status, and change nothing.

mod common;

use common::{Request, StatusCode};
use common::{TestServer, assert_error};
use serde_json::{Value, json};

/// A conversation with one finished turn, and a snapshot of everything observable.
async fn setup(server: &TestServer) -> (String, Snapshot) {
    let id = server.create_default().await;
    let mut sse = server.stream(&id).await;
    server.chat(&id, "echo hello").await;
    sse.wait_end_of_turns(1).await;
    server
        .wait_state(&id, "idle", |s| s.status == app::protocol::RunStatus::Idle)
        .await;
    let snapshot = Snapshot::take(server, &id).await;
    (id, snapshot)
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    state: Value,
    messages: Vec<Value>,
    list: Value,
}

impl Snapshot {
    async fn take(server: &TestServer, id: &str) -> Self {
        Snapshot {
            state: server.state_json(id).await,
            messages: server.messages_json(id).await,
            list: server.get("conversations").await.1,
        }
    }
}

async fn unchanged(server: &TestServer, id: &str, before: &Snapshot, after_what: &str) {
    let now = Snapshot::take(server, id).await;
    assert_eq!(&now, before, "something changed after {after_what}");
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let server = TestServer::in_process();
    let (id, before) = setup(&server).await;
    let chat = format!("conversations/{id}/chat");

    let r = server.post_raw(&chat, r#"{"message": "#).await;
    assert_error("malformed JSON", &r, StatusCode::BAD_REQUEST);
    unchanged(&server, &id, &before, "malformed JSON").await;

    let r = server.post_raw(&chat, r#"{"message": 5}"#).await;
    assert_error("wrong type", &r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = server
        .post_raw(&chat, r#"{"message": "ls", "extra": 1}"#)
        .await;
    assert_error("unknown field", &r, StatusCode::UNPROCESSABLE_ENTITY);
    let response = server
        .send(Request::post(&server.api(&chat)).body(r#"{"message": "ls"}"#))
        .await;
    let r = common::json_of(&response);
    assert_error("no content type", &r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    unchanged(&server, &id, &before, "invalid chat bodies").await;

    // Over 1 MiB, as a chat and as an optional-JSON body.
    let big = json!({ "message": "x".repeat(1024 * 1024 + 10) }).to_string();
    let r = server.post_raw(&chat, big.clone()).await;
    assert_error("1 MiB chat", &r, StatusCode::PAYLOAD_TOO_LARGE);
    let r = server
        .post_raw(&format!("conversations/{id}/cancel"), big.clone())
        .await;
    assert_error("1 MiB cancel", &r, StatusCode::PAYLOAD_TOO_LARGE);
    let r = server.post_raw("conversations", big).await;
    assert_error("1 MiB create", &r, StatusCode::PAYLOAD_TOO_LARGE);
    unchanged(&server, &id, &before, "oversized bodies").await;

    let r = server
        .post_raw(&format!("conversations/{id}/cancel"), "{nope")
        .await;
    assert_error("malformed cancel", &r, StatusCode::BAD_REQUEST);
    let r = server
        .post_raw(&format!("conversations/{id}/restart"), "[1,")
        .await;
    assert_error("malformed restart", &r, StatusCode::BAD_REQUEST);
    let r = server.post_raw("conversations", "{").await;
    assert_error("malformed create", &r, StatusCode::BAD_REQUEST);
    unchanged(&server, &id, &before, "malformed bodies").await;
}

#[tokio::test]
async fn unknown_things_are_404() {
    let server = TestServer::in_process();
    let (id, before) = setup(&server).await;
    let nope = "0123456789abcdef0123456789abcdef";

    for path in [
        "state",
        "messages",
        "stream",
        "download",
        "suggest-reprompt",
    ] {
        let r = server.get(&format!("conversations/{nope}/{path}")).await;
        assert_error(path, &r, StatusCode::NOT_FOUND);
    }
    let r = server
        .post(
            &format!("conversations/{nope}/chat"),
            json!({ "message": "ls" }),
        )
        .await;
    assert_error("chat to nobody", &r, StatusCode::NOT_FOUND);
    let r = server
        .post(&format!("conversations/{nope}/cancel"), json!({}))
        .await;
    assert_error("cancel nobody", &r, StatusCode::NOT_FOUND);

    let r = server.get("no-such-endpoint").await;
    assert_error("unknown endpoint", &r, StatusCode::NOT_FOUND);
    let response = server
        .send(Request::new("DELETE", &server.api("conversations")))
        .await;
    let r = common::json_of(&response);
    assert_error("wrong method", &r, StatusCode::METHOD_NOT_ALLOWED);
    let r = server
        .post(&format!("conversations/{id}/nope"), json!({}))
        .await;
    assert_error("unknown conversation endpoint", &r, StatusCode::NOT_FOUND);

    let r = server
        .cancel(&id, json!({ "tool_call_id": "call_does_not_exist" }))
        .await;
    assert_error("cancel an unknown call", &r, StatusCode::NOT_FOUND);
    let r = server
        .post(
            &format!("conversations/{id}/input"),
            json!({ "tool_call_id": "call_does_not_exist", "data": "y\r" }),
        )
        .await;
    assert_error("input to an unknown call", &r, StatusCode::NOT_FOUND);
    unchanged(&server, &id, &before, "requests for unknown things").await;
}

#[tokio::test]
async fn bad_cursors_and_queries_are_400() {
    let server = TestServer::in_process();
    let (id, before) = setup(&server).await;
    let len = before.messages.len();

    for from in [
        "abc",
        "-1",
        "1.5",
        "",
        &(len + 1).to_string(),
        "99999999999999999999",
    ] {
        let r = server
            .get(&format!("conversations/{id}/stream?from={from}"))
            .await;
        assert_error(&format!("from={from}"), &r, StatusCode::BAD_REQUEST);
    }
    for last in ["abc", "-1", &len.to_string()] {
        let response = server
            .send(Request::get(&server.conv(&id, "stream")).header("Last-Event-ID", last))
            .await;
        let r = common::json_of(&response);
        assert_error(
            &format!("Last-Event-ID {last}"),
            &r,
            StatusCode::BAD_REQUEST,
        );
    }
    for query in ["start=abc", "end=-2", "start=3&end=1"] {
        let r = server
            .get(&format!("conversations/{id}/messages?{query}"))
            .await;
        assert_error(query, &r, StatusCode::BAD_REQUEST);
    }
    let r = server
        .get(&format!("conversations/{id}/download?format=xml"))
        .await;
    assert_error("download format", &r, StatusCode::BAD_REQUEST);
    let r = server
        .get(&format!("conversations/{id}/commit-description"))
        .await;
    assert_error("no revision", &r, StatusCode::BAD_REQUEST);
    unchanged(&server, &id, &before, "bad queries").await;
}

#[tokio::test]
async fn empty_messages_and_missing_directories_are_400() {
    let server = TestServer::in_process();
    let (id, before) = setup(&server).await;

    for message in ["", "   ", "\n\t"] {
        let r = server
            .post(
                &format!("conversations/{id}/chat"),
                json!({ "message": message }),
            )
            .await;
        assert_error(&format!("chat {message:?}"), &r, StatusCode::BAD_REQUEST);
    }
    unchanged(&server, &id, &before, "empty chats").await;

    let missing = server.work_dir("work").join("does-not-exist");
    let r = server
        .post("conversations", json!({ "cwd": missing.to_str() }))
        .await;
    assert_error("missing cwd", &r, StatusCode::BAD_REQUEST);
    let file = server.work_dir("work").join("a-file");
    std::fs::write(&file, "").expect("write");
    let r = server
        .post("conversations", json!({ "cwd": file.to_str() }))
        .await;
    assert_error("cwd is a file", &r, StatusCode::BAD_REQUEST);
    unchanged(&server, &id, &before, "bad directories").await;
    assert_eq!(server.summaries().await.len(), 1);
}
