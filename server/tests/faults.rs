//! Fault injection: clients that drop and resume at random during a flood, kill -9 of
//! the server mid-flood (several times), a reader that stops reading for 30 s, a data
//! directory that cannot be written, a disk that fills up during a flood, and 200
//! conversations running at once.
//!
//! Every test is bounded in count and time, talks to loopback only, and prints its
//! figures (`cargo test -p server --test faults -- --nocapture` shows them). The heavy
//! ones run one at a time (see `SERIAL`) so their timings and memory figures are not
//! skewed by each other on a small machine. `docs/faults.md` describes them.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use app::protocol::{Message, MessageType, RunStatus, ToolStatus};
use common::{
    ProcessGuard, Sse, TestServer, WAIT, assert_closed, assert_dense, marker, output_of,
    results_of, seq_output, single_result, tool_calls, wait_no_processes,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The heavy tests take this for their whole run: on 2 cores, two floods at once would
/// make every time and memory figure meaningless.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// A tiny deterministic xorshift64 generator: the same seed replays the same faults.
struct Rng(u64);

impl Rng {
    /// `TETHER_FAULT_SEED` overrides the fixed default seed; `salt` separates tests.
    fn new(salt: u64) -> Self {
        let seed = std::env::var("TETHER_FAULT_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0x7e7e_5eed_2024_0001);
        let mut rng = Rng((seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).max(1));
        // Mix the seed a little so nearby seeds diverge at once.
        for _ in 0..8 {
            rng.next();
        }
        println!("[rng] seed {seed} (set TETHER_FAULT_SEED to change it), salt {salt}");
        rng
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in `0..n` for picking fault points.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Resident memory of a process, in bytes (`VmRSS` in /proc/PID/status).
fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Samples a process's RSS every 20 ms on a thread until dropped; `peak()` is the
/// largest value seen. A thread, not a task: the test's runtime is busy reading.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: i32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                p.fetch_max(rss_bytes(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Panics unless `output` is what `seq 1 N` prints through a terminal for some N,
/// possibly cut anywhere in the last line (a flood stopped mid-way). Returns N.
fn assert_seq_prefix(output: &str) -> u64 {
    let mut n = 0u64;
    let mut rest = output;
    while let Some(at) = rest.find("\r\n") {
        let line = &rest[..at];
        n += 1;
        assert_eq!(
            line,
            n.to_string(),
            "line {n} of the flood's output is wrong (lost or duplicated output)"
        );
        rest = &rest[at + 2..];
    }
    // The unfinished last line is a prefix of the next number (and maybe a lone \r).
    let partial = rest.trim_end_matches('\r');
    assert!(
        (n + 1).to_string().starts_with(partial),
        "the output ends with {partial:?} after line {n}"
    );
    n
}

/// Every tool call either has exactly one result, or is in the last turn and that turn
/// is still open: a later `end_of_turn` would hide it from crash recovery for good.
fn assert_no_hidden_open_calls(messages: &[Message]) {
    for m in messages {
        for call in &m.tool_calls {
            match results_of(messages, &call.tool_call_id).len() {
                1 => {}
                0 => assert!(
                    !messages
                        .iter()
                        .any(|later| later.idx > m.idx && later.end_of_turn),
                    "tool call {} has no result, yet a later turn closed: {}",
                    call.tool_call_id,
                    messages
                        .iter()
                        .skip(m.idx as usize)
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                n => panic!("tool call {} has {n} results", call.tool_call_id),
            }
        }
    }
}

/// One line about a message, for the printed figures.
fn describe(m: &Message) -> String {
    let content: String = m.content.chars().take(70).collect();
    format!(
        "#{} {:?} eot={} status={:?} calls={} {content:?}",
        m.idx,
        m.kind,
        m.end_of_turn,
        m.status,
        m.tool_calls.len()
    )
}

fn tool_output_count(sse: &Sse) -> usize {
    sse.messages()
        .iter()
        .filter(|m| m.kind == MessageType::ToolOutput)
        .count()
}

// ---------------------------------------------------------------------------------
// a. Chaos: 1,000 random drops and resumes during a flood
// ---------------------------------------------------------------------------------

/// What one chaotic client has put together so far.
#[derive(Default)]
struct Reassembly {
    /// The next index the client expects (= how many messages it holds).
    next: u64,
    raw: Vec<Value>,
    messages: Vec<Message>,
    /// Messages that arrived with an index above `next` (counted, then accepted).
    lost: u64,
    /// Messages that arrived with an index below `next` (counted, then ignored).
    duplicated: u64,
    /// Body bytes read over every connection, re-reads included.
    body_bytes: u64,
    /// Connections dropped with part of a frame received (and thrown away).
    frames_cut: u64,
    /// The flood's closing `end_of_turn` message has arrived.
    ended: bool,
}

enum Resume {
    /// `?from=N`.
    From(u64),
    /// `Last-Event-ID: N`, sometimes with a `from` that must be ignored.
    LastEventId { last: u64, decoy_from: Option<u64> },
}

enum Until {
    /// Drop after this many messages.
    Messages(usize),
    /// Drop after this many body bytes, wherever they fall.
    Bytes(usize),
    /// Read until the closing message.
    EndOfTurn,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One connection of the chaotic client: HTTP/1.0 over a raw socket (so the body is
/// the plain SSE bytes and a drop can fall on any byte), resumed as `resume` says,
/// dropped as `until` says. Complete message frames go into `r`; a partial one is lost
/// with the connection, as it would be for a real client.
async fn chaos_session(
    addr: SocketAddr,
    id: &str,
    resume: &Resume,
    until: &Until,
    r: &mut Reassembly,
) {
    let (query, header) = match resume {
        Resume::From(from) => (format!("?from={from}"), String::new()),
        Resume::LastEventId { last, decoy_from } => (
            decoy_from.map(|f| format!("?from={f}")).unwrap_or_default(),
            format!("Last-Event-ID: {last}\r\n"),
        ),
    };
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /api/conversations/{id}/stream{query} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{header}\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut chunk = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    let body_at = loop {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("response headers in time")
            .expect("read the response");
        assert!(n > 0, "the server closed before sending headers");
        head.extend_from_slice(&chunk[..n]);
        if let Some(at) = find(&head, b"\r\n\r\n") {
            break at + 4;
        }
    };
    let status_line = String::from_utf8_lossy(&head[..head.len().min(40)]).to_string();
    assert!(
        status_line.starts_with("HTTP/1.0 200") || status_line.starts_with("HTTP/1.1 200"),
        "resume {query:?} / {header:?}: {status_line}"
    );
    let budget = match until {
        Until::Bytes(b) => *b,
        _ => usize::MAX,
    };
    let ended_at_start = r.ended;
    let mut got = 0usize;
    let mut taken = 0usize;
    let mut body: Vec<u8> = Vec::new();
    let mut fresh = head.split_off(body_at);
    loop {
        let take = fresh.len().min(budget - taken);
        body.extend_from_slice(&fresh[..take]);
        taken += take;
        r.body_bytes += take as u64;
        while let Some(at) = find(&body, b"\n\n") {
            let frame: Vec<u8> = body.drain(..at + 2).collect();
            let frame = String::from_utf8(frame).expect("an SSE frame is UTF-8");
            if let Some(message) = take_frame(&frame, r) {
                got += 1;
                if message.end_of_turn {
                    // Nothing follows the closing message: stop rather than wait for
                    // heartbeats.
                    return;
                }
                if matches!(until, Until::Messages(k) if got >= *k) {
                    return;
                }
            } else if ended_at_start || matches!(until, Until::Messages(0)) {
                // Caught up with a finished log: the state frame is all there is.
                return;
            }
        }
        if taken >= budget {
            if !body.is_empty() {
                r.frames_cut += 1;
            }
            return;
        }
        let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("stream data in time")
            .expect("read the stream");
        assert!(n > 0, "the server ended the stream");
        fresh = chunk[..n].to_vec();
    }
}

/// Parses one SSE frame; a `message` is checked against the reassembly and added.
fn take_frame(frame: &str, r: &mut Reassembly) -> Option<Message> {
    let (mut event, mut id, mut data) = ("", None, None);
    for line in frame.split('\n') {
        if let Some(v) = line.strip_prefix("event: ") {
            event = v;
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v);
        } else if let Some(v) = line.strip_prefix("data: ") {
            assert!(data.is_none(), "a frame with two data lines: {frame:?}");
            data = Some(v);
        }
    }
    let data = data.unwrap_or_else(|| panic!("a frame without data: {frame:?}"));
    if event != "message" {
        assert!(
            matches!(event, "state" | "heartbeat"),
            "unexpected event {event:?}"
        );
        serde_json::from_str::<Value>(data).expect("event data is JSON");
        return None;
    }
    let message: Message = serde_json::from_str(data)
        .unwrap_or_else(|e| panic!("a message frame that is not a Message ({e}): {data}"));
    assert_eq!(id, Some(&*message.idx.to_string()), "SSE id != idx");
    if message.idx < r.next {
        r.duplicated += 1;
        return Some(message);
    }
    if message.idx > r.next {
        r.lost += message.idx - r.next;
    }
    r.next = message.idx + 1;
    r.ended |= message.end_of_turn;
    r.raw.push(serde_json::from_str(data).expect("JSON"));
    r.messages.push(message.clone());
    Some(message)
}

#[tokio::test]
async fn chaos_1000_random_drops_and_resumes_during_a_flood() {
    let _serial = SERIAL.lock().await;
    const RECONNECTS: usize = 1000;
    const LINES: u64 = 3_000_000;
    let server = TestServer::start();
    let id = server.create_default().await;
    let mut rng = Rng::new(0xa);
    let started = Instant::now();
    server.chat(&id, &format!("seq 1 {LINES}")).await;
    let mut r = Reassembly::default();
    let (mut by_header, mut by_from, mut decoys, mut before_end) = (0, 0, 0, 0);
    for k in 0..RECONNECTS {
        let resume = match (r.next, k % 2) {
            (0, _) => Resume::From(0),
            (next, 0) => {
                by_header += 1;
                // Every other header resume also carries a `from` the server must ignore.
                let decoy_from = (k % 4 == 0).then_some(0);
                decoys += usize::from(decoy_from.is_some());
                Resume::LastEventId {
                    last: next - 1,
                    decoy_from,
                }
            }
            (next, _) => {
                by_from += 1;
                Resume::From(next)
            }
        };
        let until = if rng.below(2) == 0 {
            Until::Messages(rng.below(6) as usize)
        } else {
            // Up to ~6 frames of 8 KB: the drop lands anywhere, mostly mid-frame.
            Until::Bytes(1 + rng.below(48 * 1024) as usize)
        };
        if !r.ended {
            before_end += 1;
        }
        chaos_session(server.addr, &id, &resume, &until, &mut r).await;
    }
    let chaos_time = started.elapsed();
    if !r.ended {
        let resume = Resume::LastEventId {
            last: r.next - 1,
            decoy_from: None,
        };
        chaos_session(server.addr, &id, &resume, &Until::EndOfTurn, &mut r).await;
    }
    let elapsed = started.elapsed();

    println!(
        "[chaos] {RECONNECTS} reconnects ({by_header} by Last-Event-ID, {decoys} of them with a decoy `from`; \
         {by_from} by ?from=), {before_end} before the closing message arrived, {} dropped mid-frame",
        r.frames_cut
    );
    println!(
        "[chaos] {} messages checked, {:.1} MiB of SSE read over all connections, lost {}, duplicated {}; \
         {:.1} s for the reconnects, {:.1} s in all",
        r.messages.len(),
        mib(r.body_bytes),
        r.lost,
        r.duplicated,
        chaos_time.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    assert_eq!(r.lost, 0, "messages lost across reconnects");
    assert_eq!(r.duplicated, 0, "messages duplicated across reconnects");
    assert!(r.ended, "the flood's closing message never arrived");
    assert_dense(&r.messages, 0);
    assert!(
        before_end >= RECONNECTS / 2,
        "most reconnects should fall during the flood (only {before_end} did)"
    );
    let call = &tool_calls(&r.messages)[0];
    let output = output_of(&r.messages, &call.tool_call_id);
    assert_eq!(output.len(), seq_output(LINES).len(), "output length");
    assert!(
        output == seq_output(LINES),
        "the reassembled output differs"
    );
    let result = single_result(&r.messages, &call.tool_call_id);
    assert_eq!(result.status, Some(ToolStatus::Completed));
    // Byte for byte what the server stored.
    let stored = server.messages_json(&id).await;
    assert_eq!(stored.len(), r.raw.len());
    for (i, (a, b)) in stored.iter().zip(&r.raw).enumerate() {
        assert_eq!(a, b, "message {i} differs from the stored one");
    }
}

// ---------------------------------------------------------------------------------
// b. kill -9 during floods, three times over
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// c. A reader that stops reading for 30 s during a flood
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// d. An unwritable data directory, and a disk that fills up
// ---------------------------------------------------------------------------------

/// Runs the binary on `data_dir`, expecting it to refuse to start. Returns the exit
/// code and stderr.
fn start_expecting_failure(data_dir: &Path) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("--addr")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tether binary");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not exit on the bad data directory {}",
                data_dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("collect the output");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        !stdout.contains("Tether is serving"),
        "it claimed to serve with a bad data directory: {stdout}"
    );
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal instead of exiting: {status:?}"));
    (code, String::from_utf8_lossy(&output.stderr).to_string())
}

#[test]
fn unusable_data_directory_is_refused_at_start_naming_the_path() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let file = root.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write a file");
    let db_is_dir = root.path().join("db-is-a-dir");
    std::fs::create_dir_all(db_is_dir.join("tether.db")).expect("mkdir");
    let garbage = root.path().join("garbage-db");
    std::fs::create_dir_all(&garbage).expect("mkdir");
    std::fs::write(garbage.join("tether.db"), vec![0x5a; 8192]).expect("write garbage");
    let cases = [
        ("a regular file where the directory should be", file.clone()),
        ("a path under a regular file", file.join("data")),
        (
            "a path under /proc",
            Path::new("/proc/tether-faults-test/data").to_path_buf(),
        ),
        ("tether.db is a directory", db_is_dir),
        ("tether.db is not a database", garbage),
    ];
    for (what, dir) in cases {
        let started = Instant::now();
        let (code, stderr) = start_expecting_failure(&dir);
        let shown = dir.display().to_string();
        println!(
            "[data-dir] {what}: exit {code} in {:.2} s: {}",
            started.elapsed().as_secs_f64(),
            stderr.trim()
        );
        assert_ne!(code, 0, "{what}: exit code");
        assert!(
            stderr.contains(&shown),
            "{what}: stderr does not name {shown}: {stderr}"
        );
        assert_eq!(
            stderr.matches("cannot open the data directory").count(),
            1,
            "{what}: unclear error: {stderr}"
        );
    }
}

/// Size limit for files the server writes (`ulimit -f`, KiB): enough for the first
/// commands, far less than the flood. The WAL (which grows up to ~4 MiB before its
/// first checkpoint) hits it first.
const FSIZE_LIMIT_KIB: u64 = 3 * 1024;

#[tokio::test]
async fn disk_full_during_a_flood_stops_the_command_and_keeps_the_log() {
    let _serial = SERIAL.lock().await;
    // SIGXFSZ ignored: a write past the limit fails with EFBIG, as on a full disk,
    // instead of killing the process.
    let script = format!("trap '' XFSZ; ulimit -f {FSIZE_LIMIT_KIB}; exec \"$0\" \"$@\"");
    let mut server = TestServer::start_wrapped(&["bash", "-c", &script], &[], &[]);
    let limit = std::fs::read_to_string(format!("/proc/{}/limits", server.pid()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max file size"))
        .unwrap_or_default()
        .to_string();
    assert!(
        limit.contains(&(FSIZE_LIMIT_KIB * 1024).to_string()),
        "the limit is not in force: {limit}"
    );
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;
    server.chat(&id, "echo before").await;
    sse.wait_end_of_turns(1).await;
    let started = Instant::now();
    server
        .chat(&id, &format!("exec -a seq{m} seq 1 1000000000"))
        .await;
    // The command must be stopped: its process goes away and the conversation is idle.
    let state = server
        .wait_state(&id, "the flood to stop", |s| {
            s.status == RunStatus::Idle && s.outstanding_tool_calls.is_empty()
        })
        .await;
    let stopped_after = started.elapsed();
    if let Err(pids) = wait_no_processes(&format!("seq{m}"), Duration::from_secs(10)).await {
        panic!("the flood still runs although nothing can be saved: {pids:?}");
    }
    // The server is still up and serves everything it stored.
    let log = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    assert_eq!(state.message_count, messages.len() as u64);
    sse.wait_idx(state.message_count - 1).await;
    sse.assert_dense_from(0);
    for (idx, raw) in sse.raw_messages() {
        assert_eq!(raw, log[idx as usize], "streamed message {idx}");
    }
    let mut replay = server.stream_from(&id, 0).await;
    replay.wait_idx(state.message_count - 1).await;
    assert_eq!(replay.raw_messages().len(), log.len());
    let call = tool_calls(&messages)[1].clone();
    let lines = assert_seq_prefix(&output_of(&messages, &call.tool_call_id));
    let results = results_of(&messages, &call.tool_call_id);
    let closed_live = match results.as_slice() {
        [] => false,
        [result] => {
            assert_eq!(result.status, Some(ToolStatus::Error), "{result:#?}");
            assert!(
                result.content.contains("could not be saved"),
                "an unclear result: {}",
                result.content
            );
            assert_closed(&messages, &call.tool_call_id, ToolStatus::Error);
            true
        }
        more => panic!("several results: {more:#?}"),
    };
    let db_size =
        |name: &str| std::fs::metadata(server.data_dir().join(name)).map_or(0, |m| m.len());
    println!(
        "[disk-full] limit {FSIZE_LIMIT_KIB} KiB: flood stopped after {:.2} s with {} messages stored \
         ({lines} lines of output); tether.db {} B, tether.db-wal {} B",
        stopped_after.as_secs_f64(),
        messages.len(),
        db_size("tether.db"),
        db_size("tether.db-wal")
    );
    match results.first() {
        Some(result) => println!(
            "[disk-full] result while full: {:?}: {}",
            result.status, result.content
        ),
        None => println!(
            "[disk-full] result while full: none; the log shows the call still open until the restart closes it"
        ),
    }
    // A new command while the disk is full: refused clearly, or accepted if space
    // happened to remain; never a hang or a crash.
    let (status, body) = server
        .post(
            &format!("conversations/{id}/chat"),
            serde_json::json!({ "message": "echo during" }),
        )
        .await;
    println!("[disk-full] chat while full: {status} {body}");
    assert!(
        status == reqwest::StatusCode::ACCEPTED
            || (status == reqwest::StatusCode::INTERNAL_SERVER_ERROR
                && body["error"].as_str().is_some_and(|e| !e.is_empty())),
        "chat while full: {status} {body}"
    );
    server
        .wait_state(&id, "idle again", |s| s.status == RunStatus::Idle)
        .await;
    let during = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    assert_no_hidden_open_calls(&messages);

    // Room again: everything stored is intact and the open turn gets closed.
    server.set_wrapper(&[]);
    server.restart();
    let after = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    assert!(after.len() >= during.len());
    assert_eq!(
        &after[..during.len()],
        &during[..],
        "stored messages changed over the restart"
    );
    for m in messages.iter().skip(during.len().saturating_sub(4)) {
        println!("[disk-full]   {}", describe(m));
    }
    for line in server
        .logs()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
    {
        println!("[disk-full]   log: {line}");
    }
    let status = single_result(&messages, &call.tool_call_id)
        .status
        .expect("a status");
    if closed_live {
        assert_eq!(status, ToolStatus::Error);
    } else {
        // Closed after the disk-full period (at a retry) or by crash recovery.
        assert!(
            matches!(status, ToolStatus::Error | ToolStatus::Interrupted),
            "{status:?}"
        );
    }
    assert_closed(&messages, &call.tool_call_id, status);
    assert_no_hidden_open_calls(&messages);
    for m in &messages {
        if m.kind == MessageType::Agent && !m.tool_calls.is_empty() {
            // Every call in the log has exactly one result.
            single_result(&messages, &m.tool_calls[0].tool_call_id);
        }
    }
    let state = server.state(&id).await;
    assert_eq!(state.status, RunStatus::Idle);
    println!(
        "[disk-full] after the restart without the limit: {} messages, dense and parseable; the flood's call closed as {status:?}",
        messages.len()
    );
    let mut sse = server.stream_from(&id, after.len() as u64).await;
    server.chat(&id, "echo after").await;
    sse.wait_end_of_turns(1).await;
    assert!(sse.all_output().contains("after\r\n"));
}

// ---------------------------------------------------------------------------------
// e. 200 conversations at once
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn two_hundred_conversations_at_once() {
    let _serial = SERIAL.lock().await;
    const N: usize = 200;
    const LINES: u64 = 2000;
    let server = TestServer::start();
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
