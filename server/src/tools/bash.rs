//! `bash -c <command>` in a fresh pseudo-terminal: the tool the `shell` agent runs.

use std::sync::Arc;

use app::protocol::ToolStatus;
use async_trait::async_trait;

use super::pty::{self, ExitInfo, PtyHandle, SpawnSpec};
use super::{Call, Control, Tool, ToolOutcome};

/// The tool's name in the log.
pub const NAME: &str = "bash";

pub struct Bash {
    pub command: String,
}

impl Control for PtyHandle {
    fn cancel(&self) {
        PtyHandle::cancel(self);
    }

    fn kill(&self) {
        let _ = self.signal_group(nix::sys::signal::Signal::SIGKILL);
    }

    fn write_input(&self, data: &[u8]) -> std::io::Result<()> {
        PtyHandle::write_input(self, data).map_err(std::io::Error::other)
    }
}

#[async_trait]
impl Tool for Bash {
    fn name(&self) -> &str {
        NAME
    }

    fn input(&self) -> serde_json::Value {
        serde_json::json!({ "command": self.command })
    }

    async fn run(&self, call: &mut Call<'_>) -> ToolOutcome {
        let spec = SpawnSpec {
            command: self.command.clone(),
            cwd: call.cwd().to_path_buf(),
            env_remove: call.env().removed().to_vec(),
            env_set: Vec::new(),
            cols: 120,
            rows: 32,
        };
        let (handle, mut events) = match pty::spawn(spec) {
            Ok(spawned) => spawned,
            Err(err) => return ToolOutcome::error(format!("could not start: {err}")),
        };
        let handle = Arc::new(handle);
        call.register(handle.clone());
        let mut exit = ExitInfo {
            exit_code: None,
            signal: None,
        };
        while let Some(batch) = pty::next_batch(&mut events, &mut exit).await {
            if batch.is_empty() {
                continue;
            }
            if let Err(err) = call.output(batch).await {
                // The log cannot take more: stop the command rather than lose
                // output silently.
                tracing::error!(tool_call = call.id(), %err, "cannot append output; stopping the tool call");
                handle.cancel();
            }
        }
        outcome(call.stop_status(), call.write_failed(), &exit)
    }
}

fn outcome(stop: Option<ToolStatus>, write_failed: Option<&str>, exit: &ExitInfo) -> ToolOutcome {
    let describe = || match (&exit.exit_code, &exit.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by {signal}"),
        (None, None) => "ended without an exit status".into(),
    };
    let (status, summary) = match (stop, write_failed) {
        (_, Some(err)) => (
            ToolStatus::Error,
            format!("stopped: output could not be saved ({err})"),
        ),
        (Some(ToolStatus::Cancelled), None) => {
            (ToolStatus::Cancelled, format!("cancelled ({})", describe()))
        }
        (Some(ToolStatus::Interrupted), None) => (
            ToolStatus::Interrupted,
            format!("interrupted: the server is shutting down ({})", describe()),
        ),
        (_, None) if exit.exit_code == Some(0) => (ToolStatus::Completed, describe()),
        (_, None) => (ToolStatus::Error, describe()),
    };
    ToolOutcome {
        status,
        exit_code: exit.exit_code,
        summary,
    }
}
