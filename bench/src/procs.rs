//! Starting and stopping the systems under test: the Tether server, ttyd and the
//! harness's own ceiling server (a child process, so it does not share a runtime with
//! the clients).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use tether_testkit::http::{self, Result};

/// A running child that prints its address on a line of stdout (or stderr).
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Resident set size of the server process, in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    /// CPU time (user + system) the server process has used so far, in seconds.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs_of(self.pid())
    }

    /// SIGTERM, then SIGKILL if it has not exited in 10 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

pub fn cpu_secs_of(pid: u32) -> f64 {
    let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / tck)
        })
        .unwrap_or(f64::NAN)
}

pub fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Waits for a line containing `marker` followed by an address or port.
async fn wait_for_addr<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: R,
    marker: &str,
    parse: impl Fn(&str) -> Option<SocketAddr>,
) -> Result<SocketAddr> {
    let mut lines = BufReader::new(reader).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split(marker).nth(1)
                && let Some(addr) = parse(rest)
            {
                return Some((addr, lines));
            }
        }
        None
    })
    .await
    .map_err(|_| format!("no {marker:?} line within 30 s"))?;
    let (addr, mut lines) = found.ok_or_else(|| format!("exited before printing {marker:?}"))?;
    // Keep draining so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(addr)
}

/// The NATS server every Tether of this run keeps its data in (`--nats`); unset,
/// SQLite in the data directory.
static NATS_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn use_nats(url: String) {
    let _ = NATS_URL.set(url);
}

/// Starts `tether` on 127.0.0.1:0 with `data_dir` (and on NATS, a prefix of its own
/// named after the data directory).
pub async fn start_tether(bin: &Path, data_dir: &Path) -> Result<Server> {
    start_replica(bin, data_dir, None).await
}

/// Like `start_tether`; with `share`, on NATS under that prefix, as one more replica
/// beside those already running there.
async fn start_replica(bin: &Path, data_dir: &Path, share: Option<&str>) -> Result<Server> {
    let mut cmd = Command::new(bin);
    cmd.arg("--addr")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(url) = NATS_URL.get() {
        let name = match share {
            Some(prefix) => prefix.to_string(),
            None => prefix_of(data_dir),
        };
        cmd.arg("--nats").arg(url).arg("--nats-prefix").arg(name);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TETHER_") || k.to_string_lossy().starts_with("LEPTOS_")
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "warn");
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let addr = wait_for_addr(stdout, "Tether is serving http://", |rest| {
        rest.split('/').next()?.parse().ok()
    })
    .await?;
    Ok(Server { addr, child })
}

fn prefix_of(data_dir: &Path) -> String {
    data_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("bench")
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
}

/// Whether the servers of this run keep their data in NATS.
pub fn on_nats() -> bool {
    NATS_URL.get().is_some()
}

/// Starts ttyd on a random loopback port, accepting one client, running `bash -c cmd`.
pub async fn start_ttyd(bin: &Path, command: &str) -> Result<Server> {
    let mut child = Command::new(bin)
        .args([
            "-p",
            "0",
            "-i",
            "127.0.0.1",
            "-o",
            "-d",
            "7",
            "bash",
            "-c",
            command,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let addr = wait_for_addr(stderr, "Listening on port: ", |rest| {
        let port: u16 = rest.trim().parse().ok()?;
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    })
    .await?;
    Ok(Server { addr, child })
}

/// Starts this binary's `ceiling-server` subcommand.
pub async fn start_ceiling() -> Result<Server> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("ceiling-server")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the ceiling server: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let addr = wait_for_addr(stdout, "ceiling serving ", |rest| rest.trim().parse().ok()).await?;
    Ok(Server { addr, child })
}

/// A Tether server in its own temporary data directory, plus a scratch cwd.
pub struct Tether {
    pub server: Server,
    pub cwd: tempfile::TempDir,
    // Kept last so it is removed after the server stopped.
    pub data: tempfile::TempDir,
}

impl Tether {
    pub async fn start(bin: &Path) -> Result<Self> {
        Self::start_sharing(bin, None).await
    }

    /// With `share`, on NATS under that prefix, as one more replica beside those
    /// already running there.
    async fn start_sharing(bin: &Path, share: Option<&str>) -> Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("tether-bench-data-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let cwd = tempfile::Builder::new()
            .prefix("tether-bench-cwd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let server = start_replica(bin, data.path(), share).await?;
        Ok(Tether { server, cwd, data })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// On NATS: `more` replicas beside this one, on the same store. What this one
    /// creates it runs; the others follow it.
    pub async fn more_replicas(&self, bin: &Path, more: usize) -> Result<Vec<Tether>> {
        let prefix = prefix_of(self.data.path());
        let mut out = Vec::with_capacity(more);
        for _ in 0..more {
            out.push(Self::start_sharing(bin, Some(&prefix)).await?);
        }
        Ok(out)
    }

    pub async fn create_conversation(&self) -> Result<String> {
        let body = json!({ "cwd": self.cwd.path() });
        let summary = http::json(self.addr(), "POST", "/api/conversations", Some(&body)).await?;
        summary["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no id in {summary}"))
    }

    pub async fn chat(&self, id: &str, message: &str) -> Result<()> {
        let body = json!({ "message": message });
        http::json(
            self.addr(),
            "POST",
            &format!("/api/conversations/{id}/chat"),
            Some(&body),
        )
        .await
        .map(drop)
    }

    pub async fn cancel(&self, id: &str) -> Result<()> {
        let body = json!({});
        http::json(
            self.addr(),
            "POST",
            &format!("/api/conversations/{id}/cancel"),
            Some(&body),
        )
        .await
        .map(drop)
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// `target/release/tether` relative to the workspace (the default `--tether`).
pub fn default_tether() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.join("target/release/tether")
}
