//! a. Chaos: 1,000 random drops and resumes during a flood.

use std::net::SocketAddr;
use std::time::Instant;

use app::protocol::{Message, ToolStatus};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{
    TestServer, WAIT, assert_dense, output_of, seq_output, single_result, tool_calls,
};
use crate::support::{Rng, SERIAL, mib};

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
    let server = TestServer::in_process();
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
