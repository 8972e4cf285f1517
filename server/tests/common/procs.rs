//! Processes: unique markers for finding a test's commands, /proc scans, a guard that
//! kills what a crash test leaves behind, and `git`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A marker unique to this test run, for finding processes by their command line.
pub fn marker() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Digits only, so `sleep 1000.<marker>` is a valid duration no other process has.
    format!("{}{:03}{:09}", std::process::id(), n, nanos)
}

/// Live processes whose command line contains `needle`: (pid, command line with
/// the arguments joined by spaces).
pub fn processes_with(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Pids of live processes whose command line contains `needle`.
pub fn pids_with(needle: &str) -> Vec<i32> {
    processes_with(needle)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// Polls /proc until some process has `needle` in its command line; returns their
/// pids, or none once `timeout` passes. Polled rather than read once: a process in
/// the middle of `execve` can show an empty command line for a moment.
pub async fn wait_processes(needle: &str, timeout: Duration) -> Vec<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let pids = pids_with(needle);
        if !pids.is_empty() || Instant::now() > deadline {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls /proc until no process has `needle` in its command line.
pub async fn wait_no_processes(needle: &str, timeout: Duration) -> Result<(), Vec<i32>> {
    let deadline = Instant::now() + timeout;
    loop {
        let pids = pids_with(needle);
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(pids);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// SIGKILLs whatever is left with the marker when dropped (cleanup after crash tests).
pub struct ProcessGuard(pub String);

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        for pid in pids_with(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Runs `git` in `dir` with a fixed identity; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Tether Test",
            "-c",
            "user.email=test@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
