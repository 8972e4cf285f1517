//! e. 200 conversations at once.

use std::time::{Duration, Instant};

use app::protocol::{RunStatus, ToolStatus};

use crate::common::{TestServer, assert_closed, output_of, seq_output, tool_calls};
use crate::support::SERIAL;

#[tokio::test]
async fn two_hundred_conversations_at_once() {
    let _serial = SERIAL.lock().await;
    const N: usize = 200;
    const LINES: u64 = 2000;
    let server = TestServer::in_process();
    let dir = server.work_dir("many");
    let started = Instant::now();
    let mut ids = Vec::with_capacity(N);
    for _ in 0..N {
        ids.push(server.create(&dir).await);
    }
    let streams = futures::future::join_all(ids.iter().map(|id| server.stream(id))).await;
    let opened = started.elapsed();
    let t = Instant::now();
    futures::future::join_all(ids.iter().enumerate().map(|(i, id)| {
        let server = &server;
        async move {
            server
                .chat(id, &format!("seq 1 {LINES}; echo done-{i}"))
                .await
        }
    }))
    .await;
    let finished = futures::future::join_all(streams.into_iter().enumerate().map(
        |(i, mut sse)| async move {
            sse.wait_until(
                &format!("conversation {i}'s end of turn"),
                Duration::from_secs(120),
                |s| s.messages().iter().any(|m| m.end_of_turn),
            )
            .await;
            (i, sse)
        },
    ))
    .await;
    let run_time = t.elapsed();
    let mut messages_checked = 0;
    for (i, sse) in &finished {
        sse.assert_dense_from(0);
        let messages = sse.messages();
        messages_checked += messages.len();
        let call = &tool_calls(&messages)[0];
        let mut expected = seq_output(LINES);
        expected.push_str(&format!("done-{i}\r\n"));
        assert!(
            output_of(&messages, &call.tool_call_id) == expected,
            "conversation {i}'s output differs"
        );
        assert_closed(&messages, &call.tool_call_id, ToolStatus::Completed);
    }
    let summaries = server.summaries().await;
    assert_eq!(summaries.len(), N);
    assert!(
        summaries
            .iter()
            .all(|s| s.status == RunStatus::Idle && !s.last_error)
    );
    println!(
        "[many] {N} conversations, one stream each: created and opened in {:.2} s; all {N} commands \
         (seq 1 {LINES}; echo done-i) done and reassembled in {:.2} s; {messages_checked} messages checked; {:.2} s in all",
        opened.as_secs_f64(),
        run_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
