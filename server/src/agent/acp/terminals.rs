//! `terminal/*` for the agent: commands run in Tether's own PTY runner (process
//! group, scrubbed environment, cancel escalation), attached to the tool call that
//! owns them, so their output streams into that card like a shell command's and a
//! person can cancel that one command while the turn goes on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::book::{ToolBook, output_messages};
use super::files::confine;
use crate::agent::Attachment;
use crate::tools::pty::{self, ExitInfo, PtyHandle, SpawnSpec};

/// Output kept for `terminal/output` when the agent sets no limit.
const DEFAULT_OUTPUT_LIMIT: usize = 1 << 20;

/// One command the agent asked Tether to run.
struct Term {
    handle: Arc<PtyHandle>,
    /// What `terminal/output` returns: the end of the output, within the limit.
    output: Mutex<Captured>,
    /// `Some` once the command exited.
    exit: watch::Receiver<Option<ExitInfo>>,
}

#[derive(Default)]
struct Captured {
    text: String,
    limit: usize,
    truncated: bool,
}

/// What a finished or running terminal reports.
pub struct Snapshot {
    pub output: String,
    pub truncated: bool,
    pub exit: Option<ExitInfo>,
}

/// A conversation's agent terminals by id.
#[derive(Default)]
pub struct Terminals {
    by_id: Mutex<HashMap<String, Arc<Term>>>,
}

/// What `create` needs to run a command.
pub struct Launch<'a> {
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<&'a Path>,
    pub output_limit: Option<u64>,
}

impl Terminals {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Term>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &str) -> Result<Arc<Term>, String> {
        self.map()
            .get(id)
            .cloned()
            .ok_or_else(|| format!("no terminal with id {id:?}"))
    }

    /// Starts `launch` for tool call `call_id` in `root` (or a directory inside it);
    /// returns the terminal's id.
    pub fn create(
        &self,
        seat: &Attachment,
        book: &Arc<Mutex<ToolBook>>,
        root: &Path,
        call_id: &str,
        launch: Launch<'_>,
    ) -> Result<String, String> {
        let cwd = match launch.cwd {
            Some(dir) => confine(root, dir)?,
            None => root.to_path_buf(),
        };
        let command = if launch.args.is_empty() {
            launch.command
        } else {
            let mut words = vec![launch.command];
            words.extend(launch.args);
            shell_words::join(words)
        };
        let slot = seat.toolbox.slots.take()?;
        let spec = SpawnSpec {
            command,
            cwd,
            env_remove: seat.toolbox.env.removed().to_vec(),
            env_set: launch.env,
            cols: 120,
            rows: 32,
        };
        let (handle, mut events) = pty::spawn(spec).map_err(|e| format!("could not start: {e}"))?;
        let handle = Arc::new(handle);
        let id = format!("term_{}", uuid::Uuid::new_v4().simple());
        let (exit_tx, exit_rx) = watch::channel(None);
        let term = Arc::new(Term {
            handle: handle.clone(),
            output: Mutex::new(Captured {
                limit: launch
                    .output_limit
                    .and_then(|l| usize::try_from(l).ok())
                    .unwrap_or(DEFAULT_OUTPUT_LIMIT),
                ..Captured::default()
            }),
            exit: exit_rx,
        });
        self.map().insert(id.clone(), term.clone());
        seat.running.register(call_id, handle);
        let (seat, book, call_id) = (seat.clone(), book.clone(), call_id.to_string());
        tokio::spawn(async move {
            let _slot = slot;
            let mut exit = ExitInfo {
                exit_code: None,
                signal: None,
            };
            while let Some(batch) = pty::next_batch(&mut events, &mut exit).await {
                if batch.is_empty() {
                    continue;
                }
                let text: String = batch.concat();
                term.capture(&text);
                book.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .note_output(&call_id, &text);
                if let Err(err) = seat.log.append_all(output_messages(&call_id, &text)).await {
                    tracing::error!(%err, "cannot append an agent terminal's output; stopping it");
                    term.handle.cancel();
                }
            }
            let failed = exit.exit_code != Some(0);
            let _ = exit_tx.send(Some(exit));
            seat.running.finish(&call_id, failed);
        });
        Ok(id)
    }

    pub fn snapshot(&self, id: &str) -> Result<Snapshot, String> {
        let term = self.get(id)?;
        let exit = term.exit.borrow().clone();
        let captured = term.output.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Snapshot {
            output: captured.text.clone(),
            truncated: captured.truncated,
            exit,
        })
    }

    /// Waits until the command exits.
    pub async fn wait(&self, id: &str) -> Result<ExitInfo, String> {
        let mut exit = self.get(id)?.exit.clone();
        let info = exit
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "the terminal is gone".to_string())?
            .clone();
        Ok(info.unwrap_or(ExitInfo {
            exit_code: None,
            signal: None,
        }))
    }

    /// Stops the command (SIGINT, then SIGTERM, then SIGKILL to its group); the
    /// terminal stays readable.
    pub fn kill(&self, id: &str) -> Result<(), String> {
        self.get(id)?.handle.cancel();
        Ok(())
    }

    /// Forgets the terminal, stopping its command if it still runs: an agent that
    /// releases a running command (Claude's adapter, when cancelled) wants it gone.
    pub fn release(&self, id: &str) -> Result<(), String> {
        let term = self
            .map()
            .remove(id)
            .ok_or_else(|| format!("no terminal with id {id:?}"))?;
        if term.exit.borrow().is_none() {
            term.handle.cancel();
        }
        Ok(())
    }

    /// Stops every command (the agent is gone).
    pub fn release_all(&self) {
        for (_, term) in self.map().drain() {
            if term.exit.borrow().is_none() {
                term.handle.cancel();
            }
        }
    }
}

impl Term {
    fn capture(&self, text: &str) {
        let mut captured = self.output.lock().unwrap_or_else(|p| p.into_inner());
        captured.text.push_str(text);
        if captured.text.len() > captured.limit {
            let mut cut = captured.text.len() - captured.limit;
            while !captured.text.is_char_boundary(cut) {
                cut += 1;
            }
            captured.text.drain(..cut);
            captured.truncated = true;
        }
    }
}
