//! The workloads. Each function does one measurement and checks the output it got.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::check::{OutputCheck, Ticks, base64_bytes, now_ns, quantile, seq_bytes, yes_bytes};
use crate::client::{ConvStream, ttyd_session};
use crate::cpu::MachineCpu;
use crate::limit;
use crate::procs::{self, Tether};
use tether_testkit::http::Result;

/// A throughput workload: the command and the exact output it must produce.
#[derive(Clone)]
pub struct Throughput {
    pub name: &'static str,
    pub command: String,
    pub expected: u64,
    pub seq_exact: bool,
}

pub fn throughput_workloads(smoke: bool) -> Vec<Throughput> {
    let (seq, b64, yes) = if smoke {
        (20_000, 200_000, 100_000)
    } else {
        (3_000_000, 200_000_000, 150_000_000)
    };
    vec![
        Throughput {
            name: "seq",
            command: format!("seq 1 {seq}"),
            expected: seq_bytes(seq),
            seq_exact: true,
        },
        Throughput {
            name: "base64",
            command: format!("head -c {b64} /dev/urandom | base64"),
            expected: base64_bytes(b64),
            seq_exact: false,
        },
        Throughput {
            name: "yes",
            command: format!("yes | head -c {yes}"),
            expected: yes_bytes(yes),
            seq_exact: false,
        },
    ]
}

/// Output rate and whether the output was complete.
pub struct Rate {
    pub mb_s: f64,
    /// Server CPU seconds per MB of output (Tether only).
    pub cpu_ms_per_mb: Option<f64>,
    /// CPUs the whole machine kept busy during the run (of `nproc`).
    pub busy_cores: Option<f64>,
    /// `Err` with what was wrong when the output was not exactly as expected.
    pub complete: std::result::Result<(), String>,
}

fn mb_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

/// The raw PTY limit for `w`: every reader of `limit::READERS` in turn; the fastest
/// one whose output was complete is the limit. Also returns each reader's rate (or
/// what was wrong with its output).
pub async fn raw_throughput(w: &Throughput) -> Result<(Rate, Vec<(String, Rate)>)> {
    let w = w.clone();
    tokio::task::spawn_blocking(move || {
        let mut each = Vec::new();
        for &reader in limit::READERS {
            let run = limit::run(reader, &w.command, w.seq_exact)?;
            each.push((
                reader.name(),
                Rate {
                    mb_s: mb_s(run.check.bytes, run.took),
                    cpu_ms_per_mb: None,
                    busy_cores: run.busy_cores,
                    complete: run.check.verify(w.expected),
                },
            ));
        }
        let best = each
            .iter()
            .map(|(_, r)| r)
            .filter(|r| r.complete.is_ok())
            .max_by(|a, b| a.mb_s.total_cmp(&b.mb_s));
        let limit = Rate {
            mb_s: best.map_or(0.0, |r| r.mb_s),
            cpu_ms_per_mb: None,
            busy_cores: best.and_then(|r| r.busy_cores),
            complete: best
                .map(|_| ())
                .ok_or_else(|| "no reader got the whole output".to_string()),
        };
        Ok((limit, each))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// PTY → log → SSE: from POST chat to the `tool` message.
pub async fn tether_throughput(t: &Tether, w: &Throughput) -> Result<Rate> {
    let id = t.create_conversation().await?;
    let mut stream = ConvStream::open(t.addr(), &id, 0).await?;
    let mut check = OutputCheck::new(w.seq_exact);
    let cpu_before = t.server.cpu_secs();
    let machine = MachineCpu::now();
    let start = Instant::now();
    t.chat(&id, &w.command).await?;
    let (status, tool_at) = stream.read_turn(|s| check.feed(s.as_bytes())).await?;
    if status != "completed" {
        return Err(format!("{}: tool status {status}", w.name));
    }
    let cpu = t.server.cpu_secs() - cpu_before;
    Ok(Rate {
        mb_s: mb_s(check.bytes, tool_at - start),
        cpu_ms_per_mb: Some(cpu * 1000.0 / (check.bytes as f64 / 1e6)),
        busy_cores: machine.and_then(|m| m.busy_cores_since()),
        complete: check.verify(w.expected),
    })
}

pub async fn ttyd_throughput(ttyd: &Path, w: &Throughput) -> Result<Rate> {
    let server = procs::start_ttyd(ttyd, &w.command).await?;
    let mut check = OutputCheck::new(w.seq_exact);
    let machine = MachineCpu::now();
    let took = ttyd_session(server.addr, |b| check.feed(b)).await;
    let busy_cores = machine.and_then(|m| m.busy_cores_since());
    server.stop().await;
    let took = took?;
    Ok(Rate {
        mb_s: mb_s(check.bytes, took),
        cpu_ms_per_mb: None,
        busy_cores,
        complete: check.verify(w.expected),
    })
}

/// p50 / p99 / max in ms, and the number of samples.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// `exact`: every line must have arrived (Tether). ttyd is known to drop the last
/// output when the command exits, so for it 95 % is enough.
fn latency_of(ticks: &Ticks, count: usize, exact: bool) -> Result<Latency> {
    let v = &ticks.samples_ms;
    let enough = if exact {
        v.len() == count
    } else {
        v.len() * 100 >= count * 95
    };
    if !enough {
        return Err(format!("got {} of {count} timestamped lines", v.len()));
    }
    Ok(Latency {
        p50: quantile(v, 0.5),
        p99: quantile(v, 0.99),
        max: quantile(v, 1.0),
    })
}

fn tick_command(count: usize) -> Result<String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Ok(format!("'{}' tick {count} 10", exe.display()))
}

/// The flood used as background load: base64 of zeros, as fast as the PTY takes it.
pub const FLOOD: &str = "base64 /dev/zero";

/// Latency from the child's write to the SSE client, optionally while another
/// conversation floods (with its own client draining it).
pub async fn tether_latency(t: &Tether, count: usize, flood: bool) -> Result<Latency> {
    let flood_task = if flood {
        let fid = t.create_conversation().await?;
        let mut fstream = ConvStream::open(t.addr(), &fid, 0).await?;
        t.chat(&fid, FLOOD).await?;
        let drain = tokio::spawn(async move {
            let mut bytes = 0u64;
            let _ = fstream.read_turn(|s| bytes += s.len() as u64).await;
            bytes
        });
        // Let the flood get going.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some((fid, drain))
    } else {
        None
    };
    let id = t.create_conversation().await?;
    let mut stream = ConvStream::open(t.addr(), &id, 0).await?;
    let mut ticks = Ticks::default();
    t.chat(&id, &tick_command(count)?).await?;
    let res = stream.read_turn(|s| ticks.feed(s.as_bytes())).await;
    if let Some((fid, drain)) = flood_task {
        t.cancel(&fid).await?;
        let flooded = tokio::time::timeout(Duration::from_secs(30), drain)
            .await
            .map_err(|_| "flood did not stop")?
            .map_err(|e| e.to_string())?;
        if flooded == 0 {
            return Err("the flood produced no output".into());
        }
    }
    res?;
    latency_of(&ticks, count, true)
}

pub async fn ttyd_latency(ttyd: &Path, count: usize, flood: bool) -> Result<Latency> {
    let flood_server = if flood {
        let server = procs::start_ttyd(ttyd, FLOOD).await?;
        let addr = server.addr;
        let drain = tokio::spawn(async move { ttyd_session(addr, |_| {}).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some((server, drain))
    } else {
        None
    };
    let server = procs::start_ttyd(ttyd, &tick_command(count)?).await?;
    let mut ticks = Ticks::default();
    let res = ttyd_session(server.addr, |b| ticks.feed(b)).await;
    server.stop().await;
    if let Some((fserver, drain)) = flood_server {
        fserver.stop().await;
        drain.abort();
    }
    res?;
    latency_of(&ticks, count, false)
}

/// Opens `n` streams, at most 200 connecting at a time; `open(i)` opens the i-th.
pub async fn open_many<F, Fut>(n: usize, open: F) -> Result<Vec<ConvStream>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<ConvStream>> + Send + 'static,
{
    let mut out = Vec::with_capacity(n);
    let mut pending = tokio::task::JoinSet::new();
    let mut started = 0;
    while out.len() < n {
        while started < n && pending.len() < 200 {
            pending.spawn(open(started));
            started += 1;
        }
        match pending.join_next().await {
            Some(res) => out.push(res.map_err(|e| e.to_string())??),
            None => break,
        }
    }
    Ok(out)
}

/// Server RSS per idle open stream, in bytes.
pub async fn idle_streams(t: &Tether, n: usize) -> Result<f64> {
    let id = Arc::new(t.create_conversation().await?);
    let addr = t.addr();
    // Warm up: one stream, so lazily allocated per-process state is not counted.
    drop(ConvStream::open(addr, &id, 0).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = t.server.rss();
    // Servers may cap streams per client address (Tether: 2,000 by default), so the
    // streams come from 127.0.0.2, 127.0.0.3, …, 1,000 from each: 10,000 clients.
    let streams = open_many(n, |i| {
        let id = id.clone();
        let local = std::net::IpAddr::from([127, 0, 0, 2 + (i / 1000) as u8]);
        async move { ConvStream::open_from(addr, &id, 0, Some(local)).await }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = t.server.rss();
    if streams.len() != n {
        return Err(format!("opened {} of {n} streams", streams.len()));
    }
    drop(streams);
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

/// Writes a log of `n` messages (one turn: user, agent, n-4 chunks, tool, closing
/// agent) straight into a stopped server's database. Content: one 80-column line each.
pub fn fill_log(data_dir: &Path, id: &str, n: u64) -> Result<u64> {
    let db = rusqlite::Connection::open(data_dir.join("tether.db")).map_err(|e| e.to_string())?;
    let tx_err = |e: rusqlite::Error| e.to_string();
    db.execute_batch("BEGIN").map_err(tx_err)?;
    let call = "call_00000000000000000000000000000001";
    let ts = "2026-01-01T00:00:00.000Z";
    let mut json_bytes = 0u64;
    {
        let mut stmt = db
            .prepare("INSERT INTO messages (conversation_id, idx, kind, end_of_turn, json) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(tx_err)?;
        for idx in 0..n {
            let (kind, eot, body) = if idx == 0 {
                (
                    "user",
                    false,
                    json!({"idx": idx, "type": "user", "conversation_id": id, "timestamp": ts, "content": "replay", "end_of_turn": false}),
                )
            } else if idx == 1 {
                (
                    "agent",
                    false,
                    json!({"idx": idx, "type": "agent", "conversation_id": id, "timestamp": ts, "content": "", "end_of_turn": false,
                    "tool_calls": [{"name": "bash", "input": {"command": "replay"}, "tool_call_id": call}]}),
                )
            } else if idx == n - 2 {
                (
                    "tool",
                    false,
                    json!({"idx": idx, "type": "tool", "conversation_id": id, "timestamp": ts, "content": "exit code 0", "end_of_turn": false,
                    "tool_name": "bash", "tool_call_id": call, "tool_error": false, "exit_code": 0, "status": "completed", "end_time": ts}),
                )
            } else if idx == n - 1 {
                (
                    "agent",
                    true,
                    json!({"idx": idx, "type": "agent", "conversation_id": id, "timestamp": ts, "content": "Command completed.", "end_of_turn": true}),
                )
            } else {
                let content = format!("{idx:>78}\r\n");
                (
                    "tool_output",
                    false,
                    json!({"idx": idx, "type": "tool_output", "conversation_id": id, "timestamp": ts, "content": content, "end_of_turn": false, "tool_call_id": call}),
                )
            };
            let text = body.to_string();
            json_bytes += text.len() as u64;
            stmt.execute(rusqlite::params![id, idx as i64, kind, eot, text])
                .map_err(tx_err)?;
        }
    }
    db.execute_batch("COMMIT").map_err(tx_err)?;
    Ok(json_bytes)
}

/// Messages per second replaying `n` stored messages from 0 to one client.
pub async fn replay(addr: SocketAddr, id: &str, n: u64) -> Result<f64> {
    let start = Instant::now();
    let mut s = ConvStream::open(addr, id, 0).await?;
    let mut last = 0;
    for _ in 0..n {
        last = s.next_raw().await?.0;
    }
    let took = start.elapsed();
    if last != n - 1 {
        return Err(format!("replay ended at idx {last}, expected {}", n - 1));
    }
    Ok(n as f64 / took.as_secs_f64())
}

/// `tether-bench tick N MS`: prints `T<unix ns>` every MS milliseconds, N times.
pub fn tick(count: usize, interval_ms: u64) {
    use std::io::Write;
    let interval = Duration::from_millis(interval_ms);
    let mut next = Instant::now();
    let mut out = std::io::stdout().lock();
    for _ in 0..count {
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let _ = writeln!(out, "T{}", now_ns());
        let _ = out.flush();
    }
}
