//! A file listing the long-lived processes Tether started (agents), so a Tether that
//! was killed without a chance to clean up ends them on its next start. Terminals
//! need no such list: the kernel hangs them up when their PTY closes. Agents only
//! have a pipe, and the Zed adapters ignore their stdin closing.

use std::path::PathBuf;
use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// One line per process group: `PID START_TIME` (the start time tells a reused pid
/// from ours).
pub struct ProcessLedger {
    /// The file; `None` keeps no list (tests that build a toolbox by hand).
    path: Option<PathBuf>,
    /// Serializes rewrites of the file.
    lock: Mutex<()>,
}

impl ProcessLedger {
    pub fn disabled() -> Self {
        ProcessLedger {
            path: None,
            lock: Mutex::new(()),
        }
    }

    pub fn at(path: PathBuf) -> Self {
        ProcessLedger {
            path: Some(path),
            lock: Mutex::new(()),
        }
    }

    fn entries(&self) -> Vec<(i32, u64)> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (pid, start) = line.split_once(' ')?;
                Some((pid.parse().ok()?, start.parse().ok()?))
            })
            .collect()
    }

    fn write(&self, entries: &[(i32, u64)]) {
        let Some(path) = &self.path else { return };
        let text: String = entries
            .iter()
            .map(|(pid, start)| format!("{pid} {start}\n"))
            .collect();
        if let Err(err) = std::fs::write(path, text) {
            tracing::warn!(%err, path = %path.display(), "cannot update the list of agent processes");
        }
    }

    /// Notes a process group Tether leads.
    pub fn record(&self, pid: i32) {
        let Some(start) = start_time(pid) else { return };
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut entries = self.entries();
        entries.push((pid, start));
        self.write(&entries);
    }

    /// The group is gone (or about to be killed by us).
    pub fn forget(&self, pid: i32) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut entries = self.entries();
        entries.retain(|(p, _)| *p != pid);
        self.write(&entries);
    }

    /// Kills the groups an earlier run left behind; returns how many.
    pub fn reap(&self) -> usize {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut killed = 0;
        for (pid, start) in self.entries() {
            if start_time(pid) == Some(start) && killpg(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
            {
                killed += 1;
            }
        }
        self.write(&[]);
        killed
    }
}

/// The process's start time in clock ticks since boot (`/proc/PID/stat`, field 22).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn a_recorded_group_left_running_is_killed_on_the_next_start_and_a_reused_pid_is_not() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ledger = ProcessLedger::at(dir.path().join("agents.pids"));
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = i32::try_from(child.id()).expect("a pid");
        ledger.record(pid);
        // A stale line for our own pid with another start time must be left alone.
        let me = i32::try_from(std::process::id()).expect("a pid");
        let mut entries = ledger.entries();
        entries.push((me, 1));
        ledger.write(&entries);

        let next_run = ProcessLedger::at(dir.path().join("agents.pids"));
        assert_eq!(next_run.reap(), 1);
        let status = child.wait().expect("wait");
        assert!(!status.success(), "the sleep was killed");
        assert!(next_run.entries().is_empty());
    }

    #[test]
    fn forgetting_removes_the_line() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ledger = ProcessLedger::at(dir.path().join("agents.pids"));
        let me = i32::try_from(std::process::id()).expect("a pid");
        ledger.record(me);
        assert_eq!(ledger.entries().len(), 1);
        ledger.forget(me);
        assert!(ledger.entries().is_empty());
    }
}
