//! b. kill -9 during floods, three times over (the binary: it needs a process to kill).

use std::time::{Duration, Instant};

use app::protocol::{MessageType, RunStatus, ToolStatus};
use serde_json::Value;

use crate::common::{
    ProcessGuard, TestServer, WAIT, assert_closed, assert_dense, marker, output_of, results_of,
    tool_calls, wait_no_processes,
};
use crate::support::{Rng, SERIAL, assert_seq_prefix, tool_output_count};

#[tokio::test]
async fn kill_9_during_floods_three_cycles() {
    let _serial = SERIAL.lock().await;
    let mut server = TestServer::start();
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut rng = Rng::new(0xb);
    let mut seen_all: Vec<(u64, Value)> = Vec::new();
    let mut calls = Vec::new();
    for cycle in 0..3u64 {
        let from = server.state(&id).await.message_count;
        let mut sse = server.stream_from(&id, from).await;
        server
            .chat(&id, &format!("exec -a seq{m} seq 1 1000000000"))
            .await;
        // Kill early, mid-way or late in the flood.
        let chunks = [1 + rng.below(10), 20 + rng.below(100), 150 + rng.below(250)][cycle as usize];
        let chunks = chunks as usize;
        sse.wait_until(&format!("{chunks} output chunks"), WAIT, |s| {
            tool_output_count(s) >= chunks
        })
        .await;
        server.kill9();
        sse.wait_ended(WAIT).await;
        sse.assert_dense_from(from);
        let seen = sse.raw_messages();
        let call = tool_calls(&sse.messages())[0].clone();
        assert!(
            results_of(&sse.messages(), &call.tool_call_id).is_empty(),
            "the call cannot have ended before the kill"
        );
        // The terminal's hangup ends the flood with the server.
        if let Err(pids) = wait_no_processes(&format!("seq{m}"), Duration::from_secs(10)).await {
            panic!("the flood outlived the killed server: {pids:?}");
        }

        let restarted = Instant::now();
        server.restart();
        let log = server.messages_json(&id).await;
        let messages = server.messages(&id).await;
        let recovery = restarted.elapsed();
        assert_dense(&messages, 0);
        seen_all.extend(seen.iter().cloned());
        for (idx, raw) in &seen_all {
            assert_eq!(
                &log[*idx as usize], raw,
                "message {idx} changed across the crash(es)"
            );
        }
        let closing = assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);
        assert_eq!(closing.kind, MessageType::Agent);
        assert_eq!(
            closing.idx,
            messages.len() as u64 - 1,
            "the closing message is last"
        );
        let lines = assert_seq_prefix(&output_of(&messages, &call.tool_call_id));
        let state = server.state(&id).await;
        assert_eq!(state.status, RunStatus::Idle);
        assert!(state.outstanding_tool_calls.is_empty());
        assert_eq!(state.message_count, messages.len() as u64);
        println!(
            "[kill-9] cycle {}: killed after {} chunks seen by the client ({} messages seen); \
             {} messages stored, {} output lines saved, {} stored beyond what the client saw, then the 2 closing messages of recovery; restart + read {:.2} s",
            cycle + 1,
            tool_output_count(&sse),
            seen.len(),
            messages.len(),
            lines,
            messages.len() as u64 - from - seen.len() as u64 - 2,
            recovery.as_secs_f64()
        );
        calls.push(call);
    }
    // Every earlier call is still closed exactly once: recovery never repeats itself.
    let messages = server.messages(&id).await;
    for call in &calls {
        assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);
    }
    let closings = messages.iter().filter(|m| m.end_of_turn).count();
    assert_eq!(closings, 3, "one end_of_turn per turn");
    // A full replay over SSE is exactly the stored log, and the conversation still works.
    let mut sse = server.stream(&id).await;
    server.chat(&id, "echo alive").await;
    sse.wait_end_of_turns(4).await;
    sse.assert_dense_from(0);
    let log = server.messages_json(&id).await;
    for (idx, raw) in sse.raw_messages() {
        assert_eq!(raw, log[idx as usize], "replayed message {idx}");
    }
    assert!(sse.all_output().ends_with("alive\r\n"));
}
