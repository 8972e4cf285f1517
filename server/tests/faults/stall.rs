//! c. A reader that stops reading for 30 s during a flood (the binary: the bound is on
//! the server process's own memory).

use std::time::{Duration, Instant};

use app::protocol::RunStatus;

use crate::common::{TestServer, WAIT, output_of, seq_output, tool_calls};
use crate::support::{MIB, RssSampler, SERIAL, mib, rss_bytes};

/// Allowed growth of the server's RSS over its pre-flood baseline while a reader is
/// stalled. What the server may legitimately hold: the log's in-memory tail (at most
/// 16 MiB of frames, `TAIL_MAX_BYTES`), the stalled stream's one batch (256 entries of
/// ~8 KB, 2 MiB, if it fell behind the tail), SQLite page caches (2 MiB per connection,
/// 5 connections), socket and hyper buffers, and allocator slack. Measured here at
/// +24 to +32 MiB over a ~24 MiB baseline; a stalled reader that buffered the flood (~20 MiB of
/// frames per flood) or the log growing in memory would blow through it.
const STALL_RSS_BOUND: u64 = 64 * MIB;

#[tokio::test]
async fn stalled_reader_for_30s_bounded_memory_others_unaffected() {
    let _serial = SERIAL.lock().await;
    const LINES: u64 = 2_000_000;
    const STALL: Duration = Duration::from_secs(30);
    let server = TestServer::start();
    let pid = server.pid().as_raw();
    let id = server.create_default().await;
    let baseline = rss_bytes(pid);
    let expected = seq_output(LINES);

    // 1. The flood with one reader and nobody stalled: the reference speed.
    let sampler = RssSampler::start(pid);
    let mut alone = server.stream(&id).await;
    let t = Instant::now();
    server.chat(&id, &format!("seq 1 {LINES}")).await;
    alone
        .wait_until("the first flood's end", Duration::from_secs(120), |s| {
            s.messages().iter().any(|m| m.end_of_turn)
        })
        .await;
    let alone_time = t.elapsed();
    let alone_peak = sampler.peak();
    drop(sampler);
    let first_len = server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await
        .message_count;
    drop(alone);

    // 2. The same flood while one reader does not read for 30 s.
    let sampler = RssSampler::start(pid);
    let mut stalled = server.raw_stream_from(&id, first_len).await;
    stalled
        .wait_until("the stalled reader's first event", WAIT, |s| {
            !s.events.is_empty()
        })
        .await;
    let stall_began = Instant::now();
    let mut other = server.stream_from(&id, first_len).await;
    let t = Instant::now();
    server.chat(&id, &format!("seq 1 {LINES}")).await;
    other
        .wait_until(
            "the other reader's end of turn",
            Duration::from_secs(120),
            |s| s.messages().iter().any(|m| m.end_of_turn),
        )
        .await;
    let other_time = t.elapsed();
    let state = server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
    assert!(
        stall_began.elapsed() < STALL,
        "the other reader finished only after the stall ({:?})",
        stall_began.elapsed()
    );
    tokio::time::sleep(STALL.saturating_sub(stall_began.elapsed())).await;
    let stalled_peak = sampler.peak();
    let stalled_received = stalled.events.len();

    // The stalled reader resumes and gets everything, exactly.
    let t = Instant::now();
    stalled
        .wait_until(
            "the stalled reader's end of turn",
            Duration::from_secs(120),
            |s| s.messages().iter().any(|m| m.end_of_turn),
        )
        .await;
    let catch_up = t.elapsed();
    let peak = sampler.peak();
    drop(sampler);
    stalled.assert_dense_from(first_len);
    other.assert_dense_from(first_len);
    let got = stalled.raw_messages();
    let reference = other.raw_messages();
    assert_eq!(got.len() as u64, state.message_count - first_len);
    assert_eq!(got.len(), reference.len());
    for ((i, a), (_, b)) in got.iter().zip(&reference) {
        assert_eq!(a, b, "message {i}");
    }
    let messages = stalled.messages();
    let call = &tool_calls(&messages)[0];
    assert!(
        output_of(&messages, &call.tool_call_id) == expected,
        "stalled reader's output"
    );
    let messages = other.messages();
    assert!(
        output_of(&messages, &call.tool_call_id) == expected,
        "other reader's output"
    );
    let frames: u64 = got
        .iter()
        .map(|(_, raw)| raw.to_string().len() as u64)
        .sum();

    let mbps = |d: Duration| mib(expected.len() as u64) / d.as_secs_f64();
    println!(
        "[stall] flood: seq 1 {LINES} = {:.1} MiB of output, {} messages, {:.1} MiB of frames",
        mib(expected.len() as u64),
        got.len(),
        mib(frames)
    );
    println!(
        "[stall] reader alone: {:.2} s ({:.1} MiB/s); other reader while one is stalled: {:.2} s ({:.1} MiB/s)",
        alone_time.as_secs_f64(),
        mbps(alone_time),
        other_time.as_secs_f64(),
        mbps(other_time)
    );
    println!(
        "[stall] stalled reader had {stalled_received} event(s) after {:.1} s, then caught up in {:.2} s",
        STALL.as_secs_f64(),
        catch_up.as_secs_f64()
    );
    println!(
        "[stall] RSS: baseline {:.1} MiB; peak {:.1} MiB during the lone flood, {:.1} MiB during the stall, \
         {:.1} MiB overall (+{:.1} MiB; bound +{:.0} MiB)",
        mib(baseline),
        mib(alone_peak),
        mib(stalled_peak),
        mib(peak),
        mib(peak.saturating_sub(baseline)),
        mib(STALL_RSS_BOUND)
    );
    assert!(
        peak <= baseline + STALL_RSS_BOUND,
        "RSS grew by {:.1} MiB over the baseline ({:.1} MiB); the bound is {:.0} MiB",
        mib(peak - baseline),
        mib(baseline),
        mib(STALL_RSS_BOUND)
    );
    assert!(
        other_time < Duration::from_secs(60),
        "the other reader took {other_time:?}"
    );
}
