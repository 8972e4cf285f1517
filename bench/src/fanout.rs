//! Fan-out: one conversation's output delivered to 1, 100 and 1,000 clients at once,
//! against a plain axum SSE broadcast of the same frames (the ceiling).
//!
//! Two ways, because they answer different questions:
//! - **live**: the clients are connected before the command starts. With one client
//!   this measures how fast the command produces output through the PTY, not how fast
//!   Tether delivers it (the ceiling's frames are ready in memory), so the one-client
//!   live figure is a throughput figure and has no target.
//! - **from a finished log**: the command has ended, then the clients connect from
//!   index 0; the ceiling's frames are all appended before its clients connect. This
//!   is delivery alone, on both sides.

use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::check::base64_bytes;
use crate::client::ConvStream;
use crate::procs::{self, Tether};
use crate::workloads::open_many;
use crate::{Ctx, Report, ceiling};
use tether_testkit::http::{self, Result};

/// Whether the clients connect before the output exists or after all of it is stored.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Live,
    Stored,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Stored => "from a finished log",
        }
    }
}

pub async fn fanout(ctx: &Ctx, rep: &mut Report) -> std::result::Result<(), String> {
    let sizes: &[usize] = if ctx.smoke {
        &[1, 10, 50]
    } else {
        &[1, 100, 1000]
    };
    let ceiling = procs::start_ceiling().await?;
    for run in 0..ctx.runs {
        for mode in [Mode::Live, Mode::Stored] {
            for &n in sizes {
                eprintln!("fan-out {n} clients {} run {}", mode.label(), run + 1);
                let source = fan_source_bytes(n, ctx.smoke);
                let t = Tether::start(&ctx.tether).await?;
                let tf = tether_fanout(&t, n, source, mode).await;
                t.stop().await;
                let tf = match tf {
                    Ok(tf) => tf,
                    Err(e) => {
                        rep.problem(format!("Tether fan-out {n} {}: {e}", mode.label()));
                        continue;
                    }
                };
                // The same number of frames (of full `CHUNK_CHARS` chunks) through the ceiling.
                let frames = base64_bytes(source).div_ceil(ceiling::CHUNK_CHARS) + 1;
                let cf = ceiling_fanout(ceiling.addr, n, frames, mode).await?;
                let target = match mode {
                    Mode::Live => (n >= 1000).then_some((">=", 0.5)),
                    Mode::Stored => Some((">=", 0.5)),
                };
                let what = match mode {
                    Mode::Live => format!("fan-out {n} clients"),
                    Mode::Stored => format!("fan-out {n} clients {}", mode.label()),
                };
                rep.add(&format!("{what}: Tether"), "events/s", None, tf.events_s);
                rep.add(
                    &format!("{what}: axum ceiling"),
                    "events/s",
                    None,
                    cf.events_s,
                );
                rep.add(
                    &format!("{what}: Tether / ceiling"),
                    "ratio",
                    target,
                    tf.events_s / cf.events_s,
                );
                eprintln!(
                    "  tether {} frames/client, ceiling {}",
                    tf.frames, cf.frames
                );
            }
        }
    }
    ceiling.stop().await;
    Ok(())
}

/// On NATS: the same clients on one replica, then spread over three (the one that
/// runs the command and two that follow it), side by side in one run.
pub async fn over_replicas(ctx: &Ctx, rep: &mut Report) -> std::result::Result<(), String> {
    let n = if ctx.smoke { 30 } else { 1000 };
    for run in 0..ctx.runs {
        for mode in [Mode::Live, Mode::Stored] {
            let source = fan_source_bytes(n, ctx.smoke);
            let mut figures = Vec::new();
            for replicas in [1, 3] {
                eprintln!(
                    "fan-out {n} clients {} over {replicas} replica(s) run {}",
                    mode.label(),
                    run + 1
                );
                let t = Tether::start(&ctx.tether).await?;
                let others = t.more_replicas(&ctx.tether, replicas - 1).await?;
                let mut addrs = vec![t.addr()];
                addrs.extend(others.iter().map(Tether::addr));
                let fan = tether_fanout_over(&t, &addrs, n, source, mode).await;
                for f in others {
                    f.stop().await;
                }
                t.stop().await;
                match fan {
                    Ok(fan) => figures.push(fan.events_s),
                    Err(e) => {
                        rep.problem(format!("fan-out over {replicas} replicas: {e}"));
                        break;
                    }
                }
            }
            let [one, three] = figures[..] else { continue };
            let what = format!("fan-out {n} clients {}", mode.label());
            rep.add(&format!("{what}: 1 replica"), "events/s", None, one);
            rep.add(&format!("{what}: over 3 replicas"), "events/s", None, three);
            rep.add(
                &format!("{what}: 3 replicas / 1"),
                "ratio",
                None,
                three / one,
            );
        }
    }
    Ok(())
}

/// What one fan-out client saw.
struct ClientResult {
    events: u64,
    hash: u64,
    done_at: Instant,
    content_bytes: Option<u64>,
}

/// Reads until the `tool` message, hashing every message's data. The first client also
/// parses the JSON to count the output bytes.
async fn fan_client(mut s: ConvStream, parse: bool) -> Result<ClientResult> {
    let mut hasher = DefaultHasher::new();
    let mut events = 0;
    let mut content = parse.then_some(0u64);
    loop {
        let (_, data) = s.next_raw().await?;
        hasher.write(&data);
        if let Some(total) = &mut content {
            let msg: crate::client::Msg =
                serde_json::from_slice(&data).map_err(|e| e.to_string())?;
            if msg.kind == "tool_output" {
                *total += msg.content.len() as u64;
            }
        }
        // `"type":"tool"` followed by `,` or `}` (not `"type":"tool_output"`).
        let is_tool = data
            .windows(14)
            .any(|w| w.starts_with(br#""type":"tool""#) && matches!(w[13], b',' | b'}'));
        events += 1;
        if is_tool {
            return Ok(ClientResult {
                events,
                hash: hasher.finish(),
                done_at: Instant::now(),
                content_bytes: content,
            });
        }
    }
}

/// Events delivered per second over all clients, after checking every client got the
/// same, complete output.
struct FanOut {
    events_s: f64,
    frames: u64,
}

async fn run_fan(
    streams: Vec<ConvStream>,
    expected_bytes: Option<u64>,
    start: impl std::future::Future<Output = Result<Instant>>,
) -> Result<FanOut> {
    let mut tasks = Vec::with_capacity(streams.len());
    for (i, s) in streams.into_iter().enumerate() {
        tasks.push(tokio::spawn(fan_client(s, i == 0)));
    }
    let t0 = start.await?;
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(
            tokio::time::timeout(Duration::from_secs(300), t)
                .await
                .map_err(|_| "a fan-out client timed out")?
                .map_err(|e| e.to_string())??,
        );
    }
    let first = &results[0];
    if let (Some(expected), Some(got)) = (expected_bytes, first.content_bytes)
        && expected != got
    {
        return Err(format!(
            "fan-out: {got} bytes of output, expected {expected}"
        ));
    }
    for (i, r) in results.iter().enumerate() {
        if r.hash != first.hash || r.events != first.events {
            return Err(format!(
                "fan-out: client {i} saw {} events (hash {:x}), client 0 saw {} (hash {:x})",
                r.events, r.hash, first.events, first.hash
            ));
        }
    }
    let end = results.iter().map(|r| r.done_at).max().unwrap_or(t0);
    let total: u64 = results.iter().map(|r| r.events).sum();
    Ok(FanOut {
        events_s: total as f64 / (end - t0).as_secs_f64(),
        frames: first.events,
    })
}

fn fan_source_bytes(clients: usize, smoke: bool) -> u64 {
    match (smoke, clients) {
        (true, _) => 64_000,
        (false, 1) => 32_000_000,
        (false, c) if c <= 100 => 4_000_000,
        _ => 1_000_000,
    }
}

/// Client `i` streams from `addrs[i % addrs.len()]`: the replicas share the clients.
async fn open_spread(
    addrs: &[SocketAddr],
    clients: usize,
    id: &Arc<String>,
) -> Result<Vec<ConvStream>> {
    let addrs = Arc::new(addrs.to_vec());
    open_many(clients, |i| {
        let id = id.clone();
        let addr = addrs[i % addrs.len()];
        async move { ConvStream::open(addr, &id, 0).await }
    })
    .await
}

async fn tether_live(
    t: &Tether,
    addrs: &[SocketAddr],
    clients: usize,
    source: u64,
) -> Result<FanOut> {
    let id = Arc::new(t.create_conversation().await?);
    let streams = open_spread(addrs, clients, &id).await?;
    let command = format!("head -c {source} /dev/urandom | base64");
    run_fan(streams, Some(base64_bytes(source)), async {
        let t0 = Instant::now();
        t.chat(&id, &command).await?;
        Ok(t0)
    })
    .await
}

/// The same number of frames of the same size, through the plain axum broadcast.
async fn ceiling_live(addr: SocketAddr, clients: usize, frames: u64) -> Result<FanOut> {
    let setup = json!({ "frames": frames, "content_len": crate::ceiling::CHUNK_CHARS });
    http::json(addr, "POST", "/setup", Some(&setup)).await?;
    let streams = open_many(clients, |_| async move {
        ConvStream::open_path(addr, "/stream").await
    })
    .await?;
    run_fan(streams, None, async {
        let t0 = Instant::now();
        http::json(addr, "POST", "/start", Some(&json!({}))).await?;
        Ok(t0)
    })
    .await
}

async fn tether_fanout(t: &Tether, clients: usize, source: u64, mode: Mode) -> Result<FanOut> {
    tether_fanout_over(t, &[t.addr()], clients, source, mode).await
}

/// `t` runs the command; the clients stream from `addrs` (the replicas following
/// it too).
async fn tether_fanout_over(
    t: &Tether,
    addrs: &[SocketAddr],
    clients: usize,
    source: u64,
    mode: Mode,
) -> Result<FanOut> {
    match mode {
        Mode::Live => tether_live(t, addrs, clients, source).await,
        Mode::Stored => tether_stored(t, addrs, clients, source).await,
    }
}

async fn ceiling_fanout(
    addr: SocketAddr,
    clients: usize,
    frames: u64,
    mode: Mode,
) -> Result<FanOut> {
    match mode {
        Mode::Live => ceiling_live(addr, clients, frames).await,
        Mode::Stored => ceiling_stored(addr, clients, frames).await,
    }
}

/// Runs the command to its end with one client watching, then times `clients` new
/// streams reading it all from index 0.
async fn tether_stored(
    t: &Tether,
    addrs: &[SocketAddr],
    clients: usize,
    source: u64,
) -> Result<FanOut> {
    let id = Arc::new(t.create_conversation().await?);
    let addr = t.addr();
    let probe = ConvStream::open(addr, &id, 0).await?;
    t.chat(&id, &format!("head -c {source} /dev/urandom | base64"))
        .await?;
    timeout(fan_client(probe, false)).await?;
    let t0 = Instant::now();
    let streams = open_spread(addrs, clients, &id).await?;
    run_fan(streams, Some(base64_bytes(source)), async move { Ok(t0) }).await
}

/// Appends all the frames with one client watching, then times `clients` new streams.
async fn ceiling_stored(addr: SocketAddr, clients: usize, frames: u64) -> Result<FanOut> {
    let setup = json!({ "frames": frames, "content_len": ceiling::CHUNK_CHARS });
    http::json(addr, "POST", "/setup", Some(&setup)).await?;
    let probe = ConvStream::open_path(addr, "/stream").await?;
    http::json(addr, "POST", "/start", Some(&json!({}))).await?;
    timeout(fan_client(probe, false)).await?;
    let t0 = Instant::now();
    let streams = open_many(clients, |_| async move {
        ConvStream::open_path(addr, "/stream").await
    })
    .await?;
    run_fan(streams, None, async move { Ok(t0) }).await
}

async fn timeout<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(Duration::from_secs(300), f)
        .await
        .map_err(|_| "fan-out: the output did not end in time".to_string())?
}
