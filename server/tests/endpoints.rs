//! The read endpoints, terminal input, downloads and the global event stream.

mod common;

use app::protocol::{MessageType, RunStatus, ToolStatus};
use common::{Request, StatusCode, header};
use common::{TestServer, WAIT, assert_closed, output_of, tool_calls};
use serde_json::{Value, json};

#[tokio::test]
async fn list_messages_and_state() {
    let server = TestServer::in_process();
    let dir_a = server.work_dir("a");
    let dir_b = server.work_dir("b");
    let a = server.create(&dir_a).await;
    let b = server.create(&dir_b).await;
    let mut sse = server.stream(&b).await;
    server.chat(&b, "echo one; echo two").await;
    sse.wait_end_of_turns(1).await;
    let state_b = server
        .wait_state(&b, "idle", |s| s.status == RunStatus::Idle)
        .await;

    let (status, list) = server.get("conversations").await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().expect("a list").clone();
    assert_eq!(list.len(), 2);
    for row in &list {
        for key in [
            "id",
            "title",
            "cwd",
            "status",
            "message_count",
            "updated_at",
        ] {
            assert!(row.get(key).is_some(), "{key} missing from {row}");
        }
    }
    // Most recently active first.
    assert_eq!(list[0]["id"], b.as_str());
    assert_eq!(list[1]["id"], a.as_str());
    assert_eq!(list[0]["title"], "echo one; echo two");
    assert_eq!(list[0]["cwd"], dir_b.to_str().expect("utf-8"));
    assert_eq!(list[0]["status"], "idle");
    assert_eq!(list[0]["message_count"], state_b.message_count);
    assert_eq!(list[0]["updated_at"], state_b.updated_at.as_str());
    assert_eq!(list[1]["message_count"], 0);
    assert_eq!(list[1]["title"], "");
    assert_eq!(list[1]["cwd"], dir_a.to_str().expect("utf-8"));

    // State.
    assert_eq!(state_b.conversation_id, b);
    assert_eq!(state_b.working_dir, dir_b.to_str().expect("utf-8"));
    assert_eq!(state_b.agent, "shell");
    assert_eq!(state_b.first_message_index, 0);
    assert!(state_b.outstanding_tool_calls.is_empty());
    assert_eq!(state_b.queued_messages, 0);
    assert_eq!(state_b.title, "echo one; echo two");

    // Messages, whole and in ranges (end exclusive).
    let all = server.messages_json(&b).await;
    let len = all.len() as u64;
    assert_eq!(len, state_b.message_count);
    assert_eq!(
        all.iter().map(|m| m["idx"].as_u64()).collect::<Vec<_>>(),
        (0..len).map(Some).collect::<Vec<_>>()
    );
    for (start, end) in [(1, 3), (0, 1), (2, len), (len, len), (0, len + 100)] {
        let (status, page) = server
            .get(&format!(
                "conversations/{b}/messages?start={start}&end={end}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        let expected = &all[start as usize..end.min(len) as usize];
        assert_eq!(page.as_array().expect("a list"), expected, "{start}..{end}");
    }
    let (_, page) = server
        .get(&format!("conversations/{b}/messages?start=2"))
        .await;
    assert_eq!(page.as_array().expect("a list"), &all[2..]);
    let (_, page) = server.get(&format!("conversations/{a}/messages")).await;
    assert_eq!(page, json!([]));
    // The messages are the ones streamed.
    let streamed: Vec<Value> = sse.raw_messages().into_iter().map(|(_, v)| v).collect();
    assert_eq!(streamed, all);
}

#[tokio::test]
async fn downloads() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let mut sse = server.stream(&id).await;
    server
        .chat(&id, r"printf '\033[1;31mRED\033[0m plain\n'")
        .await;
    sse.wait_end_of_turns(1).await;
    server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
    let output = sse.all_output();
    assert!(
        output.contains('\u{1b}'),
        "the raw output has escapes: {output:?}"
    );

    let response = server
        .send(Request::get(&server.conv(&id, "download")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response
        .headers()
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .expect("a Content-Disposition")
        .to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains(".json"), "{disposition}");
    let body: Value = response.json().expect("JSON");
    assert_eq!(body["state"], server.state_json(&id).await);
    assert_eq!(
        body["messages"].as_array().expect("messages"),
        &server.messages_json(&id).await
    );

    let response = server
        .send(Request::get(&format!(
            "{}?format=text",
            server.conv(&id, "download")
        )))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response
        .headers()
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains(".txt"), "{disposition}");
    let text = response.text();
    assert!(text.contains("RED plain"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes left in: {text:?}");
    assert!(
        text.contains("printf"),
        "the command is in the transcript: {text}"
    );
}

#[tokio::test]
async fn input_answers_a_prompt() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let mut sse = server.stream(&id).await;
    server.chat(&id, r#"read -p "ok? " a; echo "got:$a""#).await;
    sse.wait_output_contains("ok? ").await;
    let call = tool_calls(&sse.messages())[0].clone();
    let (status, body) = server
        .post(
            &format!("conversations/{id}/input"),
            json!({ "tool_call_id": call.tool_call_id, "data": "y\r" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["written"], 2);
    sse.wait_end_of_turns(1).await;
    let messages = sse.messages();
    let output = output_of(&messages, &call.tool_call_id);
    assert!(output.contains("got:y"), "{output:?}");
    assert_closed(&messages, &call.tool_call_id, ToolStatus::Completed);
}

#[tokio::test]
async fn global_events_follow_status_changes() {
    let server = TestServer::in_process();
    let mut events = server.events().await;
    let id = server.create_default().await;
    let gate = server.work_dir("work").join("gate");
    events
        .wait_until("the new conversation", WAIT, |s| {
            s.summaries().iter().any(|c| c.id == id)
        })
        .await;
    server
        .chat(&id, "while [ ! -e gate ]; do sleep 0.02; done; echo done")
        .await;
    events
        .wait_until("running", WAIT, |s| {
            s.summaries()
                .last()
                .is_some_and(|c| c.id == id && c.status == RunStatus::Running)
        })
        .await;
    assert_eq!(
        events.summaries().last().map(|c| c.title.as_str()),
        Some("while [ ! -e gate ]; do sleep 0.02; done; echo done")
    );
    std::fs::write(&gate, b"").expect("open the gate");
    events
        .wait_until("idle again", WAIT, |s| {
            s.summaries()
                .last()
                .is_some_and(|c| c.id == id && c.status == RunStatus::Idle)
        })
        .await;
    let last = events
        .summaries()
        .last()
        .copied()
        .cloned()
        .expect("a summary");
    let messages = server.messages(&id).await;
    assert!(
        messages
            .iter()
            .any(|m| m.end_of_turn && m.kind == MessageType::Agent)
    );
    assert!(!last.last_error);
    assert_eq!(last.message_count, messages.len() as u64);
}
