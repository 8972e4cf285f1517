//! Turns: queueing, cancelling one tool call, stopping a whole turn.

mod common;

use std::time::{Duration, Instant};

use app::protocol::{MessageType, RunStatus, ToolStatus};
use common::{
    ProcessGuard, TestServer, WAIT, assert_closed, assert_error, marker, output_of, pids_with,
    processes_with, tool_calls, wait_no_processes,
};
use common::{Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn cancel_one_tool_call_kills_a_group_that_ignores_signals() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;
    let command = format!(
        "bash -c 'trap \"\" INT TERM; sleep 1000.{m}1; true' & \
         trap \"\" INT TERM; echo started; sleep 1000.{m}2; wait"
    );
    server.chat(&id, &command).await;
    sse.wait_output_contains("started\r\n").await;
    // Both sleeps (and their shells) are up before we cancel.
    let sleeps = [format!("sleep 1000.{m}1"), format!("sleep 1000.{m}2")];
    let deadline = Instant::now() + WAIT;
    loop {
        let procs = processes_with(&m);
        if sleeps.iter().all(|s| procs.iter().any(|(_, cmd)| cmd == s)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sleeps did not start: {procs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let group = pids_with(&m);
    assert!(group.len() >= 3, "expected shells and 2 sleeps: {group:?}");

    let messages = sse.messages();
    let call = tool_calls(&messages)[0].clone();
    let state = server.state(&id).await;
    assert_eq!(
        state.outstanding_tool_calls,
        vec![call.tool_call_id.clone()]
    );

    let cancelled_at = Instant::now();
    let (status, body) = server
        .cancel(&id, json!({ "tool_call_id": call.tool_call_id }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // SIGINT and SIGTERM are ignored: only the SIGKILL step can end them.
    let left = Duration::from_secs(5).saturating_sub(cancelled_at.elapsed());
    if let Err(pids) = wait_no_processes(&m, left).await {
        panic!(
            "processes of the group still alive 5 s after the cancel: {pids:?}; server log:\n{}",
            server.logs()
        );
    }
    sse.wait_end_of_turns(1).await;
    sse.assert_dense_from(0);
    let messages = sse.messages();
    let closing = assert_closed(&messages, &call.tool_call_id, ToolStatus::Cancelled);
    assert_eq!(closing.kind, MessageType::Agent);
    assert_eq!(closing.content, "Command cancelled.");
    let result = common::single_result(&messages, &call.tool_call_id);
    assert_eq!(result.tool_error, Some(true));
    assert!(
        result.content.contains("SIGKILL"),
        "the group ignores INT and TERM, so SIGKILL ended it: {}",
        result.content
    );
    assert_eq!(output_of(&messages, &call.tool_call_id), "started\r\n");

    let state = server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
    assert!(state.outstanding_tool_calls.is_empty());
    // The call is over: cancelling it again is a 404, and the log does not change.
    let again = server
        .cancel(&id, json!({ "tool_call_id": call.tool_call_id }))
        .await;
    assert_error("cancel a finished call", &again, StatusCode::NOT_FOUND);
    let stored = server.messages(&id).await;
    assert_eq!(stored.len() as u64, state.message_count);
    assert_eq!(common::results_of(&stored, &call.tool_call_id).len(), 1);
}

#[tokio::test]
async fn stopping_a_turn_cancels_the_tool_and_drops_the_queue() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;

    let first = server
        .chat(&id, &format!("echo go; sleep 1000.{m}; echo after-sleep"))
        .await;
    assert!(!first.queued);
    let queued_text = format!("echo SHOULD_NOT_RUN_{m}");
    let second = server.chat(&id, &queued_text).await;
    assert!(second.queued, "a chat during a turn is queued");
    sse.wait_output_contains("go\r\n").await;
    let state = server.state(&id).await;
    assert_eq!(state.queued_messages, 1);
    assert_eq!(state.status, RunStatus::Running);

    let (status, body) = server
        .cancel(&id, json!({ "reason": "stopped by the test" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    sse.wait_end_of_turns(1).await;
    sse.wait_until("an idle state", WAIT, |s| {
        let end = s
            .messages()
            .iter()
            .find(|msg| msg.end_of_turn)
            .map(|msg| msg.idx);
        s.states().last().is_some_and(|st| {
            st.status == RunStatus::Idle && end.is_some_and(|end| st.message_count > end)
        })
    })
    .await;

    let messages = sse.messages();
    let calls = tool_calls(&messages);
    assert_eq!(calls.len(), 1, "the queued message must not run: {calls:?}");
    let closing = assert_closed(&messages, &calls[0].tool_call_id, ToolStatus::Cancelled);
    assert_eq!(closing.kind, MessageType::Agent);
    assert_eq!(
        closing.content,
        "Turn stopped: stopped by the test. 1 queued message(s) were not run."
    );
    assert!(!sse.all_output().contains("after-sleep"));
    assert!(!sse.all_output().contains("SHOULD_NOT_RUN"));
    if let Err(pids) = wait_no_processes(&m, Duration::from_secs(5)).await {
        panic!("the stopped command is still running: {pids:?}");
    }
    // The worker turns idle just after the closing message is in the log.
    let state = server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
    assert_eq!(state.queued_messages, 0);
    // Nothing happens later either: the log is exactly what the stream saw.
    let stored = server.messages(&id).await;
    assert_eq!(stored.len(), messages.len());
    assert_eq!(
        stored
            .iter()
            .filter(|msg| msg.kind == MessageType::User)
            .count(),
        2
    );

    // Idle: nothing to stop.
    let idle = server.cancel(&id, json!({})).await;
    assert_error("cancel while idle", &idle, StatusCode::CONFLICT);
    assert_eq!(server.state(&id).await.message_count, state.message_count);

    // An empty body stops with the default reason.
    server.chat(&id, &format!("echo go2; sleep 1000.{m}")).await;
    sse.wait_output_contains("go2\r\n").await;
    let response = server
        .send(Request::post(&server.conv(&id, "cancel")))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    sse.wait_end_of_turns(2).await;
    let messages = sse.messages();
    let calls = tool_calls(&messages);
    assert_eq!(calls.len(), 2);
    let closing = assert_closed(&messages, &calls[1].tool_call_id, ToolStatus::Cancelled);
    assert_eq!(closing.content, "Turn stopped: cancelled by the user.");
    sse.assert_dense_from(0);
}

#[tokio::test]
async fn queued_chats_run_in_order() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let gate = server.work_dir("work").join("gate");
    let mut sse = server.stream(&id).await;

    let first_cmd = "while [ ! -e gate ]; do sleep 0.02; done; echo first";
    let second_cmd = "echo second";
    let first = server.chat(&id, first_cmd).await;
    let second = server.chat(&id, second_cmd).await;
    assert!(!first.queued);
    assert!(second.queued);
    assert!(second.idx > first.idx);
    let state = server.state(&id).await;
    assert_eq!(state.queued_messages, 1);
    std::fs::write(&gate, b"").expect("open the gate");

    sse.wait_end_of_turns(2).await;
    sse.assert_dense_from(0);
    let messages = sse.messages();
    let calls = tool_calls(&messages);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].input["command"], first_cmd);
    assert_eq!(calls[1].input["command"], second_cmd);
    assert_eq!(output_of(&messages, &calls[0].tool_call_id), "first\r\n");
    assert_eq!(output_of(&messages, &calls[1].tool_call_id), "second\r\n");
    let end0 = assert_closed(&messages, &calls[0].tool_call_id, ToolStatus::Completed);
    let end1 = assert_closed(&messages, &calls[1].tool_call_id, ToolStatus::Completed);
    // The card says it completed; the closing message adds nothing.
    assert_eq!(end0.content, "");
    // The second turn starts only after the first has ended.
    let second_call_at = messages
        .iter()
        .find(|msg| {
            msg.tool_calls
                .iter()
                .any(|c| c.tool_call_id == calls[1].tool_call_id)
        })
        .expect("the second call")
        .idx;
    assert!(end0.idx < second_call_at);
    assert!(second.idx < second_call_at);
    assert_eq!(messages[second.idx as usize].content, second_cmd);
    assert!(second_call_at < end1.idx);
    assert_eq!(messages.last().expect("messages").idx, end1.idx);
    let eots: Vec<_> = messages.iter().filter(|msg| msg.end_of_turn).collect();
    assert_eq!(eots.len(), 2);
    let state = server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
    assert_eq!(state.message_count, end1.idx + 1);
}
