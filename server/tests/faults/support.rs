//! What the fault tests share: the lock that runs the heavy ones one at a time, a
//! seeded generator, memory sampling, and checks over a flood's log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use app::protocol::{Message, MessageType};

use crate::common::{Sse, results_of};

/// The heavy tests take this for their whole run: on 2 cores, two floods at once would
/// make every time and memory figure meaningless.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const MIB: u64 = 1024 * 1024;

/// A tiny deterministic xorshift64 generator: the same seed replays the same faults.
pub struct Rng(u64);

impl Rng {
    /// `TETHER_FAULT_SEED` overrides the fixed default seed; `salt` separates tests.
    pub fn new(salt: u64) -> Self {
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

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in `0..n` for picking fault points.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Resident memory of a process, in bytes (`VmRSS` in /proc/PID/status).
pub fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Samples a process's RSS every 20 ms on a thread until dropped; `peak()` is the
/// largest value seen. A thread, not a task: the test's runtime is busy reading.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    pub fn start(pid: i32) -> Self {
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

    pub fn peak(&self) -> u64 {
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
pub fn assert_seq_prefix(output: &str) -> u64 {
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
pub fn assert_no_hidden_open_calls(messages: &[Message]) {
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
pub fn describe(m: &Message) -> String {
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

pub fn tool_output_count(sse: &Sse) -> usize {
    sse.messages()
        .iter()
        .filter(|m| m.kind == MessageType::ToolOutput)
        .count()
}
