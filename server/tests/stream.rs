//! The conversation stream: replay from a cursor, live continuation, slow readers,
//! large and multibyte output, heartbeats.

mod common;

use std::time::Duration;

use app::protocol::{MessageType, RunStatus};
use common::{
    Ev, Request, Sse, StatusCode, TestServer, WAIT, assert_dense, output_of, seq_output, tool_calls,
};
use server::tools::chunk::MAX_CHUNK_CHARS;

/// The first event of every conversation stream is a `state`.
fn assert_starts_with_state(sse: &Sse) {
    match sse.events.first() {
        Some(Ev::State(_)) => {}
        other => panic!("the first event must be `state`, got {other:?}"),
    }
}

/// Idle conversation with two finished turns; returns (id, log length).
async fn two_turns(server: &TestServer) -> (String, u64) {
    let id = server.create_default().await;
    let mut live = server.stream(&id).await;
    server
        .chat(&id, "for i in 1 2 3 4 5; do echo line$i; sleep 0.06; done")
        .await;
    live.wait_end_of_turns(1).await;
    server.chat(&id, "echo second").await;
    live.wait_end_of_turns(2).await;
    let state = server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
    let len = live.messages().last().expect("messages").idx + 1;
    assert_eq!(state.message_count, len);
    live.assert_dense_from(0);
    (id, len)
}

#[tokio::test]
async fn replay_from_every_index_then_continue_live() {
    let server = TestServer::in_process();
    let (id, len) = two_turns(&server).await;
    assert!(
        len >= 9,
        "expected a few output chunks, log has {len} messages"
    );
    let log = server.messages_json(&id).await;
    assert_eq!(log.len() as u64, len);

    // One stream from every index, including the end of the log.
    let mut streams = Vec::new();
    for from in 0..=len {
        let mut sse = server.stream_from(&id, from).await;
        if from < len {
            sse.wait_idx(len - 1).await;
        } else {
            sse.wait_until("the first event", WAIT, |s| !s.events.is_empty())
                .await;
        }
        assert_starts_with_state(&sse);
        if let Some(Ev::State(state)) = sse.events.first() {
            assert_eq!(state.message_count, len);
        }
        sse.assert_dense_from(from);
        assert_eq!(sse.idxs(), (from..len).collect::<Vec<_>>(), "from={from}");
        // Replayed messages are exactly the stored ones.
        for (idx, raw) in sse.raw_messages() {
            assert_eq!(raw, log[idx as usize], "message {idx} replayed from {from}");
        }
        streams.push((from, sse));
    }

    // A third turn: every stream moves from replay to live without a gap or duplicate.
    server.chat(&id, "echo third").await;
    let mut live = server.stream_from(&id, len).await;
    live.wait_end_of_turns(1).await;
    let new_len = live.messages().last().expect("messages").idx + 1;
    for (from, sse) in &mut streams {
        sse.wait_idx(new_len - 1).await;
        sse.assert_dense_from(*from);
        assert_eq!(
            sse.idxs(),
            (*from..new_len).collect::<Vec<_>>(),
            "from={from}"
        );
    }
    let final_log = server.messages_json(&id).await;
    assert_eq!(final_log.len() as u64, new_len);
    assert_eq!(&final_log[..len as usize], &log[..], "history changed");
}

#[tokio::test]
async fn last_event_id_wins_over_from_and_resumes_after_it() {
    let server = TestServer::in_process();
    let (id, len) = two_turns(&server).await;
    let log = server.messages_json(&id).await;

    for (k, from) in [(0, len), (3, 0), (len - 2, 1), (len - 1, 0)] {
        let mut sse = server
            .stream_with(&id, &format!("from={from}"), Some(&k.to_string()))
            .await;
        if k + 1 < len {
            sse.wait_idx(len - 1).await;
        } else {
            sse.wait_until("the first event", WAIT, |s| !s.events.is_empty())
                .await;
        }
        assert_starts_with_state(&sse);
        sse.assert_dense_from(k + 1);
        assert_eq!(
            sse.idxs(),
            (k + 1..len).collect::<Vec<_>>(),
            "Last-Event-ID {k} with from={from}"
        );
        for (idx, raw) in sse.raw_messages() {
            assert_eq!(raw, log[idx as usize]);
        }
    }

    // Resuming after the last message: the next thing received is the next message.
    let mut sse = server
        .stream_with(&id, "from=0", Some(&(len - 1).to_string()))
        .await;
    server.chat(&id, "echo more").await;
    sse.wait_end_of_turns(1).await;
    assert_starts_with_state(&sse);
    assert_eq!(sse.messages()[0].idx, len);
    assert_eq!(sse.messages()[0].kind, MessageType::User);
    sse.assert_dense_from(len);

    // Past the end, by header as by query.
    let new_len = server.state(&id).await.message_count;
    let response = server
        .send(
            Request::get(&server.conv(&id, "stream")).header("Last-Event-ID", new_len.to_string()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn live_continuation_mid_command() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let dir = server.work_dir("work");
    let gate = dir.join("gate");
    let mut first = server.stream(&id).await;
    server
        .chat(
            &id,
            "for i in $(seq 1 20); do echo line$i; done; \
             while [ ! -e gate ]; do sleep 0.02; done; \
             for i in $(seq 21 60); do echo line$i; sleep 0.005; done",
        )
        .await;
    first.wait_output_contains("line20\r\n").await;
    let mid = first.messages().last().expect("messages").idx;

    // Join while the command runs: one from the start, one from the middle, one from now.
    let mut from_start = server.stream(&id).await;
    let mut from_mid = server.stream_from(&id, mid).await;
    let now = server.state(&id).await.message_count;
    let mut from_now = server.stream_from(&id, now).await;
    for sse in [&mut from_start, &mut from_mid, &mut from_now] {
        sse.wait_until("the first state", WAIT, |s| !s.events.is_empty())
            .await;
        assert_starts_with_state(sse);
        let Some(Ev::State(state)) = sse.events.first() else {
            unreachable!()
        };
        assert_eq!(state.status, RunStatus::Running, "joined mid-command");
        assert_eq!(state.outstanding_tool_calls.len(), 1);
    }
    std::fs::write(&gate, b"").expect("open the gate");

    let expected: String = (1..=60).map(|i| format!("line{i}\r\n")).collect();
    for (sse, start) in [
        (&mut first, 0),
        (&mut from_start, 0),
        (&mut from_mid, mid),
        (&mut from_now, now),
    ] {
        sse.wait_end_of_turns(1).await;
        sse.assert_dense_from(start);
        let messages = sse.messages();
        assert!(messages.windows(2).all(|w| w[0].idx < w[1].idx));
        assert!(messages.last().expect("messages").end_of_turn);
    }
    let all = first.messages();
    let call = &tool_calls(&all)[0];
    assert_eq!(output_of(&all, &call.tool_call_id), expected);
    assert_eq!(
        output_of(&from_start.messages(), &call.tool_call_id),
        expected
    );
    // The late joiners got the same messages, identically.
    let reference = first.raw_messages();
    for sse in [&from_start, &from_mid, &from_now] {
        for (idx, raw) in sse.raw_messages() {
            assert_eq!(raw, reference[idx as usize].1, "message {idx}");
        }
    }
}

/// The most a TCP send buffer can grow to here (Linux autotuning), so the test can
/// check it wrote more than the kernel could have buffered for the stalled reader.
fn max_send_buffer() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|n| n.parse().ok()))
        .unwrap_or(4 * 1024 * 1024)
}

#[tokio::test]
async fn stalled_reader_does_not_block_and_catches_up_exactly() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    // A reader with a tiny socket buffer that stops reading after the first event.
    let mut stalled = server.raw_stream_from(&id, 0).await;
    stalled
        .wait_until("the first state", WAIT, |s| !s.events.is_empty())
        .await;
    let mut other = server.stream(&id).await;
    // About 11 MB of SSE frames: far more than the socket buffers between the server
    // and the stalled reader can hold, so its writer really is stuck.
    let lines = 1_000_000;
    server.chat(&id, &format!("seq 1 {lines}")).await;
    // The turn finishes although one reader is not reading.
    other.wait_end_of_turns(1).await;
    let state = server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;

    // Now the stalled reader resumes and gets everything, in order.
    stalled.wait_end_of_turns(1).await;
    stalled.assert_dense_from(0);
    let expected = other.raw_messages();
    let got = stalled.raw_messages();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got.len() as u64, state.message_count);
    for ((i, a), (j, b)) in got.iter().zip(&expected) {
        assert_eq!(i, j);
        assert_eq!(a, b, "message {i}");
    }
    let messages = stalled.messages();
    let call = &tool_calls(&messages)[0];
    let output = output_of(&messages, &call.tool_call_id);
    assert_eq!(output, seq_output(lines));
    // The server wrote far more than the kernel can buffer for a reader that does not
    // read (the send buffer's payload is at most its size), so it really was stuck.
    let frames: usize = got.iter().map(|(_, raw)| raw.to_string().len()).sum();
    assert!(
        frames > 2 * max_send_buffer(),
        "the stream ({frames} bytes) is too small to stall the server's writes"
    );
}

#[tokio::test]
async fn large_output_is_reassembled_exactly_in_bounded_chunks() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let mut sse = server.stream(&id).await;
    server.chat(&id, "seq 1 200000").await;
    sse.wait_end_of_turns(1).await;
    sse.assert_dense_from(0);
    let messages = sse.messages();
    let call = &tool_calls(&messages)[0];
    let chunks: Vec<_> = messages
        .iter()
        .filter(|m| m.kind == MessageType::ToolOutput)
        .collect();
    assert!(
        chunks.len() >= 2,
        "output came in {} chunk(s)",
        chunks.len()
    );
    for chunk in &chunks {
        let n = chunk.content.chars().count();
        assert!(n <= MAX_CHUNK_CHARS, "chunk {} has {n} chars", chunk.idx);
        assert!(n > 0, "chunk {} is empty", chunk.idx);
        assert_eq!(chunk.tool_call_id.as_deref(), Some(&*call.tool_call_id));
    }
    let expected = seq_output(200_000);
    assert_eq!(output_of(&messages, &call.tool_call_id), expected);
    // The stored log says the same.
    let stored = server.messages(&id).await;
    assert_eq!(output_of(&stored, &call.tool_call_id), expected);
    assert_dense(&stored, 0);
    let result = common::single_result(&messages, &call.tool_call_id);
    assert_eq!(result.exit_code, Some(0));
    assert_eq!(result.status, Some(app::protocol::ToolStatus::Completed));
}

#[tokio::test]
async fn multibyte_output_is_reassembled_exactly() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let mut sse = server.stream(&id).await;
    // Many small writes, then one big write the terminal splits at arbitrary bytes.
    server
        .chat(
            &id,
            "for i in $(seq 1 6000); do printf 'a%dé😀漢' $i; done; \
             s=$(for i in $(seq 1 6000); do printf 'b%d漢😀é' $i; done); printf '%s' \"$s\"; \
             printf 'end\\n'",
        )
        .await;
    sse.wait_end_of_turns(1).await;
    let mut expected = String::new();
    for i in 1..=6000 {
        expected.push_str(&format!("a{i}é😀漢"));
    }
    for i in 1..=6000 {
        expected.push_str(&format!("b{i}漢😀é"));
    }
    expected.push_str("end\r\n");
    let messages = sse.messages();
    let call = &tool_calls(&messages)[0];
    let output = output_of(&messages, &call.tool_call_id);
    assert!(!output.contains('\u{FFFD}'), "a character was mangled");
    assert_eq!(output, expected);
    assert!(
        messages
            .iter()
            .filter(|m| m.kind == MessageType::ToolOutput)
            .count()
            >= 2,
        "expected the output to span several chunks"
    );
    for m in messages
        .iter()
        .filter(|m| m.kind == MessageType::ToolOutput)
    {
        assert!(m.content.chars().count() <= MAX_CHUNK_CHARS);
    }
}

#[tokio::test]
async fn quiet_stream_gets_heartbeats() {
    let server = TestServer::in_process_with(&["--heartbeat-secs", "1"]);
    let id = server.create_default().await;
    let mut sse = server.stream(&id).await;
    sse.wait_until("two heartbeats", Duration::from_secs(5), |s| {
        s.heartbeats() >= 2
    })
    .await;
    assert_starts_with_state(&sse);
    for e in &sse.events {
        if let Ev::Heartbeat(data) = e {
            assert!(data["time"].is_string(), "heartbeat data: {data}");
        }
    }
    assert!(sse.messages().is_empty());
    // The global stream beats too.
    let mut events = server.events().await;
    events
        .wait_until("two heartbeats", Duration::from_secs(5), |s| {
            s.heartbeats() >= 2
        })
        .await;
}

/// A `state` event never runs ahead of the log: when it says a tool call is no longer
/// running its result was already streamed, and when it says idle every turn seen so
/// far has been closed.
#[tokio::test]
async fn state_events_never_run_ahead_of_messages() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let mut sse = server.stream(&id).await;
    for i in 0..4 {
        server
            .chat(&id, &format!("for j in 1 2 3; do echo t{i}-$j; done"))
            .await;
    }
    sse.wait_end_of_turns(4).await;
    sse.wait_until("an idle state", WAIT, |s| {
        s.states()
            .last()
            .is_some_and(|st| st.status == RunStatus::Idle)
    })
    .await;
    let mut results = std::collections::HashSet::new();
    let mut running: std::collections::HashSet<String> = std::collections::HashSet::new();
    let (mut users, mut closed) = (0, 0);
    for event in &sse.events {
        match event {
            Ev::Message { message, .. } => match message.kind {
                MessageType::User => users += 1,
                MessageType::Tool => {
                    results.insert(message.tool_call_id.clone().unwrap_or_default());
                }
                _ if message.end_of_turn => closed += 1,
                _ => {}
            },
            Ev::State(state) => {
                for gone in running
                    .iter()
                    .filter(|id| !state.outstanding_tool_calls.contains(id))
                {
                    assert!(
                        results.contains(gone),
                        "state dropped {gone} before its result"
                    );
                }
                running = state.outstanding_tool_calls.iter().cloned().collect();
                if state.status == RunStatus::Idle {
                    assert_eq!(
                        closed, users,
                        "an idle state arrived before a turn's closing message"
                    );
                }
            }
            _ => {}
        }
    }
}
