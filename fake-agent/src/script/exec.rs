//! Commands, run the three ways real agents run them: in the client's terminal (Claude's
//! adapter), by the agent itself with cumulative text output (opencode), or by the
//! agent itself with output streamed in `_meta` (Codex).

use std::process::Stdio;

use agent_client_protocol::Error;
use agent_client_protocol::v1::schema::{
    CreateTerminalRequest, KillTerminalRequest, ReleaseTerminalRequest, TerminalExitStatus,
    TerminalOutputRequest, WaitForTerminalExitRequest,
};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Flow, Run};
use crate::typed;

fn exit_label(code: Option<i64>, signal: Option<&str>) -> String {
    match (code, signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => signal.to_string(),
        (None, None) => "?".to_string(),
    }
}

impl Run {
    /// `run`, `kill-run`, and the second half of `ask-run` (which brings its tool call).
    pub(super) async fn terminal(
        &self,
        cmd: &str,
        tool_call: Option<String>,
        kill: bool,
    ) -> Result<Flow, Error> {
        let id = match tool_call {
            Some(id) => id,
            None => {
                let id = self.shared.next_tool_call_id();
                self.tool_call(json!({"toolCallId": id, "title": cmd, "kind": "execute",
                                      "status": "pending", "rawInput": {"command": cmd}}))?;
                id
            }
        };
        // One shell line, no args and no cwd, as Claude's adapter sends it.
        let create: CreateTerminalRequest = typed(json!({
            "sessionId": self.session_id, "command": cmd, "outputByteLimit": 32000,
        }))?;
        let created = tokio::select! {
            created = self.cx.send_request(create).block_task() => created,
            () = self.cancel.cancelled() => {
                self.tool_update(&id, json!({"status": "failed"}))?;
                return Ok(Flow::Cancelled);
            }
        };
        let terminal_id = match created {
            Ok(created) => created.terminal_id.to_string(),
            Err(err) => return self.terminal_failed(&id, &err),
        };
        let terminal = [json!({"type": "terminal", "terminalId": terminal_id})];
        self.tool_update(&id, json!({"status": "in_progress", "content": terminal}))?;
        let session = &self.session_id;
        let ids = json!({"sessionId": session, "terminalId": terminal_id});
        if kill {
            let request: KillTerminalRequest = typed(ids.clone())?;
            if let Err(err) = self.cx.send_request(request).block_task().await {
                self.release(&ids).await;
                return self.terminal_failed(&id, &err);
            }
        }
        let wait: WaitForTerminalExitRequest = typed(ids.clone())?;
        let exited = tokio::select! {
            exited = self.cx.send_request(wait).block_task() => exited,
            () = self.cancel.cancelled() => {
                // Release, not kill: that is what Claude's adapter does on cancel.
                self.release(&ids).await;
                self.tool_update(&id, json!({"status": "failed"}))?;
                return Ok(Flow::Cancelled);
            }
        };
        let status = match exited {
            Ok(exited) => exited.exit_status,
            Err(err) => {
                self.release(&ids).await;
                return self.terminal_failed(&id, &err);
            }
        };
        let output: TerminalOutputRequest = typed(ids.clone())?;
        let output = self.cx.send_request(output).block_task().await;
        self.release(&ids).await;
        let output = match output {
            Ok(output) => output.output,
            Err(err) => return self.terminal_failed(&id, &err),
        };
        self.finish(&id, &status, &output)?;
        Ok(Flow::Next)
    }

    async fn release(&self, ids: &serde_json::Value) {
        if let Ok(request) = typed::<ReleaseTerminalRequest>(ids.clone()) {
            let _ = self.cx.send_request(request).block_task().await;
        }
    }

    fn terminal_failed(&self, id: &str, err: &Error) -> Result<Flow, Error> {
        self.tool_update(id, json!({"status": "failed"}))?;
        self.say(&format!("terminal failed: {}", err.message))?;
        Ok(Flow::Next)
    }

    fn finish(&self, id: &str, status: &TerminalExitStatus, output: &str) -> Result<(), Error> {
        let done = if status.exit_code == Some(0) {
            "completed"
        } else {
            "failed"
        };
        self.tool_update(id, json!({"status": done}))?;
        let code = status.exit_code.map(i64::from);
        let label = exit_label(code, status.signal.as_deref());
        self.say(&format!("exit {label}: {}", output.trim()))
    }

    /// `self-run` and `meta-run`. `_meta` streaming happens only when the client
    /// asked for it with `clientCapabilities._meta.terminal_output`, as with Codex.
    pub(super) async fn self_run(&self, cmd: &str, meta: bool) -> Result<Flow, Error> {
        let caps = self.shared.caps();
        let meta =
            meta && caps.meta.as_ref().and_then(|m| m.get("terminal_output")) == Some(&json!(true));
        let id = self.shared.next_tool_call_id();
        let mut call = json!({"toolCallId": id, "title": cmd, "kind": "execute",
                              "status": "pending", "rawInput": {"command": cmd}});
        if meta {
            call["content"] = json!([{"type": "terminal", "terminalId": id}]);
            call["_meta"] = json!({"terminal_info": {"terminal_id": id, "cwd": self.cwd}});
        }
        self.tool_call(call)?;

        let spawned = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 2>&1\n{cmd}"))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                self.tool_update(&id, json!({"status": "failed"}))?;
                self.say(&format!("spawn failed: {err}"))?;
                return Ok(Flow::Next);
            }
        };
        let group = child.id();
        let stdout = child.stdout.take().ok_or_else(Error::internal_error)?;
        let mut lines = BufReader::new(stdout).lines();
        let mut all = String::new();
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line.map_err(Error::into_internal_error)?,
                () = self.cancel.cancelled() => {
                    if let Some(pid) = group {
                        kill_group(pid).await;
                    }
                    let _ = child.wait().await;
                    self.tool_update(&id, json!({"status": "failed"}))?;
                    return Ok(Flow::Cancelled);
                }
            };
            let Some(line) = line else { break };
            let line = format!("{line}\n");
            all.push_str(&line);
            if meta {
                let data = json!({"terminal_output": {"terminal_id": id, "data": line}});
                self.tool_update(&id, json!({"_meta": data}))?;
            } else {
                let text = [json!({"type": "content", "content": {"type": "text", "text": all}})];
                self.tool_update(&id, json!({"status": "in_progress", "content": text}))?;
            }
        }
        let status = child.wait().await.map_err(Error::into_internal_error)?;
        let code = status.code();
        let signal = std::os::unix::process::ExitStatusExt::signal(&status).map(|s| s.to_string());
        let done = if code == Some(0) {
            "completed"
        } else {
            "failed"
        };
        if meta {
            let exit =
                json!({"terminal_exit": {"terminal_id": id, "exit_code": code, "signal": signal}});
            self.tool_update(&id, json!({"status": done, "_meta": exit}))?;
        } else {
            let text = [json!({"type": "content", "content": {"type": "text", "text": all}})];
            self.tool_update(&id, json!({"status": done, "content": text}))?;
        }
        let label = exit_label(code.map(i64::from), signal.as_deref());
        self.say(&format!("exit {label}: {}", all.trim()))?;
        Ok(Flow::Next)
    }
}

/// The command runs in a process group of its own, so killing the group also takes
/// whatever it started. Done with `kill(1)` because this workspace forbids `unsafe`.
async fn kill_group(pid: u32) {
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .await;
}
