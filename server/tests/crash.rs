//! The server dying: kill -9 mid-command, and a graceful SIGTERM.

mod common;

use std::time::{Duration, Instant};

use app::protocol::{MessageType, RunStatus, ToolStatus};
use common::{
    ProcessGuard, TestServer, assert_closed, assert_dense, marker, single_result, tool_calls,
    wait_no_processes,
};

#[tokio::test]
async fn kill_9_during_a_flood_loses_nothing_and_closes_the_call() {
    let mut server = TestServer::start();
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;
    // `exec -a` puts the marker in seq's command line, for the cleanup guard.
    server
        .chat(&id, &format!("exec -a seq{m} seq 1 1000000000"))
        .await;
    sse.wait_until("30 output chunks", common::WAIT, |s| {
        s.messages()
            .iter()
            .filter(|msg| msg.kind == MessageType::ToolOutput)
            .count()
            >= 30
    })
    .await;
    server.kill9();
    // Whatever reached the client before the connection died counts as seen.
    sse.wait_ended(common::WAIT).await;
    let seen = sse.raw_messages();
    sse.assert_dense_from(0);
    let call = tool_calls(&sse.messages())[0].clone();
    assert!(
        single_result_count(&sse, &call.tool_call_id) == 0,
        "the call cannot have ended"
    );

    server.restart();
    let log = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    assert!(log.len() > seen.len());
    for (idx, raw) in &seen {
        assert_eq!(
            &log[*idx as usize], raw,
            "message {idx} differs after the crash"
        );
    }
    let closing = assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);
    assert_eq!(closing.kind, MessageType::Agent);
    assert_eq!(closing.idx, messages.len() as u64 - 1);
    let result = single_result(&messages, &call.tool_call_id);
    assert_eq!(result.tool_error, Some(true));
    let state = server.state(&id).await;
    assert_eq!(state.status, RunStatus::Idle);
    assert!(state.outstanding_tool_calls.is_empty());
    assert_eq!(state.message_count, messages.len() as u64);

    // Recovery happens once: another restart adds nothing.
    server.restart();
    assert_eq!(server.messages_json(&id).await, log);
    // And the conversation works again.
    let mut sse = server.stream_from(&id, log.len() as u64).await;
    server.chat(&id, "echo alive").await;
    sse.wait_end_of_turns(1).await;
    sse.assert_dense_from(log.len() as u64);
    assert!(sse.all_output().contains("alive"));
}

fn single_result_count(sse: &common::Sse, tool_call_id: &str) -> usize {
    common::results_of(&sse.messages(), tool_call_id).len()
}

#[tokio::test]
async fn kill_9_during_a_quiet_command_with_a_queued_message() {
    let mut server = TestServer::start();
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;
    server
        .chat(&id, &format!("echo started; sleep 1000.{m}"))
        .await;
    let queued = server.chat(&id, "echo never").await;
    assert!(queued.queued);
    sse.wait_output_contains("started\r\n").await;
    sse.wait_idx(queued.idx).await;
    server.kill9();
    sse.wait_ended(common::WAIT).await;
    let seen = sse.raw_messages();
    let call = tool_calls(&sse.messages())[0].clone();

    server.restart();
    let log = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    for (idx, raw) in &seen {
        assert_eq!(
            &log[*idx as usize], raw,
            "message {idx} differs after the crash"
        );
    }
    let closing = assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);
    assert!(
        closing.content.contains("1 queued message(s) were not run"),
        "the closing message mentions the unrun message: {}",
        closing.content
    );
    // The queued message was not run after the restart.
    assert_eq!(tool_calls(&messages).len(), 1);
    assert_eq!(closing.idx, messages.len() as u64 - 1);
    let state = server.state(&id).await;
    assert_eq!(state.status, RunStatus::Idle);
    assert_eq!(state.queued_messages, 0);
}

/// Regression: a SIGTERM sent the moment the address was printed was lost (tokio's
/// handler was installed, but nothing listened yet), and the server ran on.
#[tokio::test]
async fn sigterm_right_after_the_address_is_printed_stops_the_server() {
    for _ in 0..3 {
        let mut server = TestServer::start();
        let status = server.terminate(Duration::from_secs(10));
        assert!(status.success(), "exit status {status:?}");
    }
}

#[tokio::test]
async fn sigterm_ends_streams_and_closes_running_calls() {
    let mut server = TestServer::start();
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;
    let mut events = server.events().await;
    server
        .chat(&id, &format!("echo started; sleep 1000.{m}"))
        .await;
    sse.wait_output_contains("started\r\n").await;
    let call = tool_calls(&sse.messages())[0].clone();

    let started = Instant::now();
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    sse.wait_ended(Duration::from_secs(5)).await;
    events.wait_ended(Duration::from_secs(5)).await;
    if let Err(pids) = wait_no_processes(&m, Duration::from_secs(5)).await {
        panic!("the command outlived the server: {pids:?}");
    }
    let seen = sse.raw_messages();

    server.restart();
    let log = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    for (idx, raw) in &seen {
        assert_eq!(&log[*idx as usize], raw, "message {idx} differs");
    }
    let closing = assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);
    // The server closed the call itself on the way down (not crash recovery).
    let result = single_result(&messages, &call.tool_call_id);
    assert!(
        result
            .content
            .starts_with("interrupted: the server is shutting down"),
        "{}",
        result.content
    );
    assert_eq!(
        closing.content,
        "Turn stopped: the server is shutting down."
    );
    assert_eq!(closing.idx, messages.len() as u64 - 1);
    assert_eq!(server.state(&id).await.status, RunStatus::Idle);
}

/// Regression: a stream whose client stopped reading is stuck in a write and never
/// sees the shutdown; it used to keep the server from ever exiting.
#[tokio::test]
async fn sigterm_is_not_held_up_by_a_stalled_reader() {
    let mut server = TestServer::start();
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;
    server.chat(&id, "seq 1 1000000").await;
    sse.wait_end_of_turns(1).await;
    // Far more than the socket buffers hold, and this reader never reads it.
    let mut stalled = server.raw_stream_from(&id, 0).await;
    stalled
        .wait_until("the first event", common::WAIT, |s| !s.events.is_empty())
        .await;
    server
        .chat(&id, &format!("echo started; sleep 1000.{m}"))
        .await;
    sse.wait_output_contains("started\r\n").await;
    let call = tool_calls(&sse.messages())[1].clone();

    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    sse.wait_ended(Duration::from_secs(5)).await;
    drop(stalled);
    if let Err(pids) = wait_no_processes(&m, Duration::from_secs(5)).await {
        panic!("the command outlived the server: {pids:?}");
    }
    server.restart();
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);
    assert_eq!(server.state(&id).await.status, RunStatus::Idle);
}
