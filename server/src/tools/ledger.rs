//! A file listing the long-lived processes Tether started (agents), so a Tether that
//! was killed without a chance to clean up ends them on its next start. Terminals
//! need no such list: the kernel hangs them up when their PTY closes. Agents only
//! have a pipe, and the Zed adapters ignore their stdin closing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A process as the kernel tells it from a later one with the same pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Process {
    pid: i32,
    /// Clock ticks since boot when it started.
    start: u64,
}

impl Process {
    fn this() -> Option<Self> {
        let pid = i32::try_from(std::process::id()).ok()?;
        Some(Process {
            pid,
            start: start_time(pid)?,
        })
    }

    fn is_running(self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// One line per process group: `PID START TETHER_PID TETHER_START`, the group and
/// the Tether that leads it. Replicas sharing a data directory share the file, and
/// each ends only what a Tether that is no longer running left behind. A line of
/// two fields (written before replicas shared it) counts as left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    group: Process,
    tether: Option<Process>,
}

pub struct ProcessLedger {
    /// The file; `None` keeps no list (tests that build a toolbox by hand).
    path: Option<PathBuf>,
    /// This process, as it writes itself in the file.
    me: Option<Process>,
    /// Serializes this process's rewrites; other processes are kept out by a lock
    /// on the file itself.
    lock: Mutex<()>,
}

impl ProcessLedger {
    pub fn disabled() -> Self {
        ProcessLedger {
            path: None,
            me: None,
            lock: Mutex::new(()),
        }
    }

    pub fn at(path: PathBuf) -> Self {
        ProcessLedger {
            path: Some(path),
            me: Process::this(),
            lock: Mutex::new(()),
        }
    }

    /// Runs `change` on the entries with the file locked against other processes,
    /// and writes back what it leaves.
    fn update<T>(&self, change: impl FnOnce(&mut Vec<Entry>) -> T) -> Option<T> {
        let path = self.path.as_ref()?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = (|| -> std::io::Result<T> {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            file.lock()?;
            let mut entries = read(&mut file)?;
            let result = change(&mut entries);
            write(&mut file, &entries)?;
            Ok(result)
        })();
        match result {
            Ok(result) => Some(result),
            Err(err) => {
                tracing::warn!(%err, path = %path.display(), "cannot update the list of agent processes");
                None
            }
        }
    }

    /// Notes a process group this Tether leads.
    pub fn record(&self, pid: i32) {
        let Some(start) = start_time(pid) else { return };
        let entry = Entry {
            group: Process { pid, start },
            tether: self.me,
        };
        self.update(|entries| entries.push(entry));
    }

    /// The group is gone (or about to be killed by us).
    pub fn forget(&self, pid: i32) {
        self.update(|entries| entries.retain(|e| e.group.pid != pid));
    }

    /// Kills the groups a Tether that no longer runs left behind (an earlier run of
    /// this one, or a replica sharing the data directory that crashed); returns how
    /// many. Groups of Tethers still running are theirs to end.
    pub fn reap(&self) -> usize {
        self.update(|entries| {
            let mut killed = 0;
            entries.retain(|entry| {
                if entry.tether.is_some_and(Process::is_running) {
                    return true;
                }
                if entry.group.is_running()
                    && killpg(Pid::from_raw(entry.group.pid), Signal::SIGKILL).is_ok()
                {
                    killed += 1;
                }
                false
            });
            killed
        })
        .unwrap_or(0)
    }
}

fn read(file: &mut File) -> std::io::Result<Vec<Entry>> {
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text.lines().filter_map(parse).collect())
}

fn parse(line: &str) -> Option<Entry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let process = |pid: &str, start: &str| -> Option<Process> {
        Some(Process {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    };
    match fields[..] {
        [pid, start] => Some(Entry {
            group: process(pid, start)?,
            tether: None,
        }),
        [pid, start, tether_pid, tether_start] => Some(Entry {
            group: process(pid, start)?,
            tether: Some(process(tether_pid, tether_start)?),
        }),
        _ => None,
    }
}

fn write(file: &mut File, entries: &[Entry]) -> std::io::Result<()> {
    let text: String = entries
        .iter()
        .map(|e| match e.tether {
            Some(t) => format!("{} {} {} {}\n", e.group.pid, e.group.start, t.pid, t.start),
            None => format!("{} {}\n", e.group.pid, e.group.start),
        })
        .collect();
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())
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

    fn sleeper() -> (std::process::Child, Process) {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = i32::try_from(child.id()).expect("a pid");
        let start = start_time(pid).expect("the sleep's start time");
        (child, Process { pid, start })
    }

    fn entries(path: &std::path::Path) -> Vec<Entry> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().filter_map(parse).collect()
    }

    #[test]
    fn only_groups_left_by_a_tether_that_is_gone_are_killed_and_a_reused_pid_never() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("agents.pids");
        let me = Process::this().expect("this process");
        let (mut orphan, orphan_group) = sleeper();
        let (mut kept, kept_group) = sleeper();
        let (mut legacy, legacy_group) = sleeper();
        // The orphan's Tether had this pid but another start time: it is gone. The
        // kept group's Tether is this (running) process. A line for this test's own
        // pid with another start time is a reused pid and must not be signalled.
        let text = format!(
            "{} {} {} 1\n{} {} {} {}\n{} {}\n{} 1\n",
            orphan_group.pid,
            orphan_group.start,
            me.pid,
            kept_group.pid,
            kept_group.start,
            me.pid,
            me.start,
            legacy_group.pid,
            legacy_group.start,
            me.pid,
        );
        std::fs::write(&path, text).expect("write the ledger");

        let next_run = ProcessLedger::at(path.clone());
        assert_eq!(next_run.reap(), 2);
        assert!(
            !orphan.wait().expect("wait").success(),
            "the orphan was killed"
        );
        assert!(
            !legacy.wait().expect("wait").success(),
            "a line of two fields counts as left behind"
        );
        assert!(
            kept.try_wait().expect("try_wait").is_none(),
            "a running Tether's group is left alone"
        );
        assert_eq!(
            entries(&path),
            vec![Entry {
                group: kept_group,
                tether: Some(me)
            }]
        );
        let _ = kept.kill();
        let _ = kept.wait();
    }

    #[test]
    fn a_group_is_recorded_with_the_tether_that_leads_it_and_forgotten() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("agents.pids");
        let ledger = ProcessLedger::at(path.clone());
        let me = Process::this().expect("this process");
        ledger.record(me.pid);
        assert_eq!(
            entries(&path),
            vec![Entry {
                group: me,
                tether: Some(me)
            }]
        );
        ledger.forget(me.pid);
        assert!(entries(&path).is_empty());
    }
}
