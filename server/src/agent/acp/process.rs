//! The agent's process: started in its own process group in the conversation's
//! directory with a scrubbed environment, its stderr kept (the last lines explain
//! a failure), its stdout checked line by line before the ACP SDK reads it, and
//! the whole group killed when it must go.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::process::{ChildStdin, Command};
use tokio::sync::watch;

use super::spec::AgentSpec;
use crate::tools::Toolbox;

/// Lines of stderr kept for error messages.
const STDERR_LINES: usize = 20;
/// Longest stderr line kept, in bytes.
const STDERR_LINE_BYTES: usize = 400;
/// How much checked stdout may wait for the SDK: beyond it the agent blocks
/// writing, which is the backpressure a flood needs.
const PIPE_BYTES: usize = 256 * 1024;
/// Between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Why the agent's output can no longer be trusted or read.
#[derive(Clone, Debug, PartialEq)]
pub enum Ended {
    /// The process exited (its status, in words).
    Exited(String),
    /// It wrote something that is not JSON-RPC.
    Malformed(String),
}

pub struct AgentProcess {
    pid: i32,
    /// The last lines the agent wrote to stderr.
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// Set once the process exited or broke the protocol.
    ended: watch::Receiver<Option<Ended>>,
}

/// The pipes the ACP connection runs over.
pub struct Pipes {
    pub stdin: ChildStdin,
    /// The agent's stdout, checked line by line.
    pub stdout: DuplexStream,
}

impl AgentProcess {
    /// Starts the agent in `cwd`, its environment scrubbed by the toolbox's policy
    /// (the spec's own `env` is set afterwards, so it wins), and listed in the
    /// toolbox's ledger until it is reaped.
    pub fn spawn(
        spec: &AgentSpec,
        cwd: &Path,
        toolbox: &Arc<Toolbox>,
    ) -> Result<(Self, Pipes), String> {
        let removed = toolbox.env.removed();
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| format!("the agent {:?} has an empty command line", spec.name))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in removed {
            if !spec.pass_env.iter().any(|p| p == name) {
                command.env_remove(name);
            }
        }
        command.envs(spec.env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .spawn()
            .map_err(|e| format!("could not start `{}`: {e}", spec.argv.join(" ")))?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| "the agent exited before it could be watched".to_string())?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("the agent's pipes could not be opened".into());
        };
        toolbox.ledger.record(pid);
        let (ended_tx, ended) = watch::channel(None);
        let ended_tx = Arc::new(ended_tx);

        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_done = {
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut line = line;
                    if line.len() > STDERR_LINE_BYTES {
                        let mut cut = STDERR_LINE_BYTES;
                        while !line.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        line.truncate(cut);
                        line.push('…');
                    }
                    let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            })
        };

        let (mut to_sdk, from_agent) = tokio::io::duplex(PIPE_BYTES);
        {
            let ended_tx = ended_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let trimmed = line.trim();
                    if trimmed.is_empty() {
                        continue;
                    }
                    if serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_err() {
                        let shown: String = trimmed.chars().take(200).collect();
                        ended_tx.send_if_modified(|e| {
                            e.is_none()
                                .then(|| *e = Some(Ended::Malformed(shown)))
                                .is_some()
                        });
                        return;
                    }
                    let mut bytes = line.into_bytes();
                    bytes.push(b'\n');
                    if to_sdk.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
        let waiter_toolbox = toolbox.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            // Its children may outlive it, but the group id is free again once the
            // leader is reaped and the kill below has run: nothing to reap next start.
            waiter_toolbox.ledger.forget(pid);
            // The last stderr lines say why; wait (briefly) until they are read.
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr_done).await;
            let how = match status {
                Ok(status) => match (
                    status.code(),
                    std::os::unix::process::ExitStatusExt::signal(&status),
                ) {
                    (Some(code), _) => format!("exit code {code}"),
                    (None, Some(sig)) => Signal::try_from(sig)
                        .map(|s| format!("killed by {s}"))
                        .unwrap_or_else(|_| format!("killed by signal {sig}")),
                    (None, None) => "ended".into(),
                },
                Err(e) => format!("could not be waited for: {e}"),
            };
            ended_tx
                .send_if_modified(|e| e.is_none().then(|| *e = Some(Ended::Exited(how))).is_some());
        });
        Ok((
            AgentProcess {
                pid,
                stderr: tail,
                ended,
            },
            Pipes {
                stdin,
                stdout: from_agent,
            },
        ))
    }

    /// The last lines of the agent's stderr, oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Why the agent can no longer be talked to, if it cannot.
    pub fn ended(&self) -> Option<Ended> {
        self.ended.borrow().clone()
    }

    /// Resolves once the agent exited or broke the protocol.
    pub async fn wait_ended(&self) -> Ended {
        let mut ended = self.ended.clone();
        match ended.wait_for(Option::is_some).await {
            Ok(e) => e.clone().unwrap_or(Ended::Exited("ended".into())),
            Err(_) => Ended::Exited("ended".into()),
        }
    }

    /// Ends the whole process group: SIGTERM, then SIGKILL if it lingers. The
    /// adapters ignore their stdin closing, and some leave children behind.
    pub async fn kill(&self) {
        let group = Pid::from_raw(self.pid);
        let _ = killpg(group, Signal::SIGTERM);
        let mut ended = self.ended.clone();
        let exited = tokio::time::timeout(KILL_GRACE, async {
            loop {
                if matches!(&*ended.borrow(), Some(Ended::Exited(_))) {
                    return;
                }
                if ended.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        // Children of the agent may outlive it: the group goes either way.
        let _ = killpg(group, Signal::SIGKILL);
        if exited.is_err() {
            tracing::warn!(pid = self.pid, "the agent ignored SIGTERM; killed");
        }
    }
}
