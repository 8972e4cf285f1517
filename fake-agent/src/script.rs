//! The prompt is the script: one directive per line, run in order. Each directive
//! mimics what some real agent puts on the wire, so a client can be tested against
//! that behaviour without the agent.
//!
//! `say`/`think TEXT`, `plan A; B`, `plan-done N`, `ask TITLE`, `run`/`kill-run`/
//! `ask-run`/`self-run`/`meta-run CMD`, `write PATH TEXT`, `read PATH`, `usage IN OUT`,
//! `open TITLE`, `sleep SECS`, `hang`, `flood N`, `crash`, `garbage`, `env NAME`,
//! `stderr TEXT`, `cwd`. Tool calls are numbered `tc-1`, `tc-2`, … per process.
//!
//! `garbage` is ordered with the writer, not with the SDK's outgoing queue: it can
//! overtake updates the SDK has queued but not yet written.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    ContentBlock, PromptResponse, ReadTextFileRequest, RequestPermissionOutcome,
    RequestPermissionRequest, SessionNotification, StopReason, WriteTextFileRequest,
};
use agent_client_protocol::{Client, Error, UntypedMessage};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{Shared, typed};

mod exec;

/// All text blocks of a prompt, one after the other.
pub fn prompt_text(blocks: &[ContentBlock]) -> String {
    let texts: Vec<&str> = blocks
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n")
}

/// Whether the script goes on after a directive.
pub enum Flow {
    Next,
    Cancelled,
    Hang,
}

pub struct Run {
    cx: ConnectionTo<Client>,
    shared: Arc<Shared>,
    session_id: String,
    cwd: PathBuf,
    cancel: CancellationToken,
    usage: Option<(u64, u64)>,
}

impl Run {
    pub fn new(
        cx: ConnectionTo<Client>,
        shared: Arc<Shared>,
        session_id: String,
        cwd: PathBuf,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            cx,
            shared,
            session_id,
            cwd,
            cancel,
            usage: None,
        }
    }

    /// The prompt's response, or `None` when the script says `hang`.
    pub async fn run(mut self, script: &str) -> Result<Option<PromptResponse>, Error> {
        let mut stop = StopReason::EndTurn;
        for line in script.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            if self.cancel.is_cancelled() {
                stop = StopReason::Cancelled;
                break;
            }
            match self.directive(line).await? {
                Flow::Next => {}
                Flow::Cancelled => {
                    stop = StopReason::Cancelled;
                    break;
                }
                Flow::Hang => return Ok(None),
            }
        }
        if self.cancel.is_cancelled() {
            stop = StopReason::Cancelled;
        }
        Ok(Some(self.response(stop)))
    }

    #[cfg(feature = "end-turn-usage")]
    fn response(&self, stop: StopReason) -> PromptResponse {
        let response = PromptResponse::new(stop);
        match self.usage {
            Some((input, output)) => response.usage(agent_client_protocol::v1::schema::Usage::new(
                input + output,
                input,
                output,
            )),
            None => response,
        }
    }

    #[cfg(not(feature = "end-turn-usage"))]
    fn response(&self, stop: StopReason) -> PromptResponse {
        PromptResponse::new(stop)
    }

    async fn directive(&mut self, line: &str) -> Result<Flow, Error> {
        let (word, rest) = line
            .trim_start()
            .split_once(' ')
            .unwrap_or((line.trim(), ""));
        match word {
            "say" => self.chunks("agent_message_chunk", rest)?,
            "think" => self.chunks("agent_thought_chunk", rest)?,
            "plan" => {
                let entries = rest.split(';').map(str::trim).filter(|e| !e.is_empty());
                let entries: Vec<String> = entries.map(String::from).collect();
                if let Some(session) = self.shared.sessions().get_mut(&self.session_id) {
                    session.plan = entries.clone();
                }
                self.plan(&entries, 0)?;
            }
            "plan-done" => {
                let done = rest.trim().parse().unwrap_or(0);
                let entries = self
                    .shared
                    .sessions()
                    .get(&self.session_id)
                    .map(|session| session.plan.clone())
                    .unwrap_or_default();
                self.plan(&entries, done)?;
            }
            "ask" => return self.ask(rest).await,
            "run" => return self.terminal(rest, None, false).await,
            "kill-run" => return self.terminal(rest, None, true).await,
            "ask-run" => return self.ask_run(rest).await,
            "self-run" => return self.self_run(rest, false).await,
            "meta-run" => return self.self_run(rest, true).await,
            "write" => self.write(rest).await?,
            "read" => self.read(rest).await?,
            "usage" => self.report_usage(rest)?,
            "open" => {
                let id = self.shared.next_tool_call_id();
                self.tool_call(json!({"toolCallId": id, "title": rest, "kind": "other", "status": "in_progress"}))?;
            }
            "sleep" => {
                let secs: f64 = rest.trim().parse().unwrap_or(0.0);
                let nap = tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0)));
                tokio::select! {
                    () = nap => {}
                    () = self.cancel.cancelled() => return Ok(Flow::Cancelled),
                }
            }
            "hang" => return Ok(Flow::Hang),
            "flood" => {
                let n: u64 = rest.trim().parse().unwrap_or(0);
                for k in 1..=n {
                    if self.cancel.is_cancelled() {
                        return Ok(Flow::Cancelled);
                    }
                    self.chunk("agent_message_chunk", &format!("chunk {k} "))?;
                    tokio::task::yield_now().await;
                }
            }
            "crash" => {
                eprintln!("fake agent crashing on purpose");
                std::process::exit(3);
            }
            "garbage" => {
                let line = b"this is not json {{{\n".to_vec();
                self.shared
                    .raw_out
                    .send(line)
                    .await
                    .map_err(Error::into_internal_error)?;
            }
            "env" => {
                let name = rest.trim();
                let value = std::env::var(name).unwrap_or_else(|_| "(unset)".into());
                self.say(&format!("env {name}={value}"))?;
            }
            "stderr" => eprintln!("{rest}"),
            "cwd" => {
                let cwd = std::env::current_dir().map_err(Error::into_internal_error)?;
                self.say(&cwd.display().to_string())?;
            }
            _ => self.say(&format!("unknown directive: {line}"))?,
        }
        Ok(Flow::Next)
    }

    /// Checked against the schema, but sent as written: the typed form would drop
    /// fields equal to their defaults, such as `"status": "pending"`.
    pub fn update(&self, update: Value) -> Result<(), Error> {
        let params = json!({"sessionId": self.session_id, "update": update});
        typed::<SessionNotification>(params.clone())?;
        self.cx
            .send_notification(UntypedMessage::new("session/update", params)?)
    }

    fn chunk(&self, kind: &str, text: &str) -> Result<(), Error> {
        self.update(json!({"sessionUpdate": kind, "content": {"type": "text", "text": text}}))
    }

    /// One chunk per word, each keeping the space after it, so they add up to `text`.
    fn chunks(&self, kind: &str, text: &str) -> Result<(), Error> {
        text.split_inclusive(' ')
            .try_for_each(|word| self.chunk(kind, word))
    }

    pub fn say(&self, text: &str) -> Result<(), Error> {
        self.chunks("agent_message_chunk", text)
    }

    pub fn tool_call(&self, mut fields: Value) -> Result<(), Error> {
        fields["sessionUpdate"] = json!("tool_call");
        self.update(fields)
    }

    pub fn tool_update(&self, id: &str, mut fields: Value) -> Result<(), Error> {
        fields["sessionUpdate"] = json!("tool_call_update");
        fields["toolCallId"] = json!(id);
        self.update(fields)
    }

    fn plan(&self, entries: &[String], done: usize) -> Result<(), Error> {
        let entries: Vec<Value> = entries
            .iter()
            .enumerate()
            .map(|(i, content)| {
                let status = match i.cmp(&done) {
                    std::cmp::Ordering::Less => "completed",
                    std::cmp::Ordering::Equal if done > 0 => "in_progress",
                    _ => "pending",
                };
                json!({"content": content, "priority": "medium", "status": status})
            })
            .collect();
        self.update(json!({"sessionUpdate": "plan", "entries": entries}))
    }

    /// Sends the permission request; `Some(true)` allowed, `Some(false)` rejected,
    /// `None` cancelled (by the client's outcome or by `session/cancel`).
    async fn permission(&self, id: &str, title: &str) -> Result<Option<bool>, Error> {
        let request: RequestPermissionRequest = typed(json!({
            "sessionId": self.session_id,
            "toolCall": {"toolCallId": id, "title": title, "kind": "execute", "status": "pending",
                         "rawInput": {"command": title}},
            "options": [
                {"optionId": "yes", "name": "Allow", "kind": "allow_once"},
                {"optionId": "always", "name": "Always allow", "kind": "allow_always"},
                {"optionId": "no", "name": "Reject", "kind": "reject_once"},
            ],
        }))?;
        let answer = self.cx.send_request(request).block_task();
        let answer = tokio::select! {
            answer = answer => answer,
            // Dropping the pending request makes the SDK send `$/cancel_request` for it.
            () = self.cancel.cancelled() => return Ok(None),
        };
        Ok(match answer {
            Ok(response) => match response.outcome {
                RequestPermissionOutcome::Selected(selected) => {
                    Some(matches!(&*selected.option_id.0, "yes" | "always"))
                }
                _ => None,
            },
            Err(err) => {
                self.say(&format!("permission failed: {}", err.message))?;
                Some(false)
            }
        })
    }

    async fn ask(&self, title: &str) -> Result<Flow, Error> {
        let id = self.shared.next_tool_call_id();
        self.tool_call(json!({"toolCallId": id, "title": title, "kind": "execute",
                              "status": "pending", "rawInput": {"command": title}}))?;
        match self.permission(&id, title).await? {
            Some(true) => {
                let approved =
                    [json!({"type": "content", "content": {"type": "text", "text": "approved"}})];
                self.tool_update(&id, json!({"status": "completed", "content": approved}))?;
                self.say(&format!("allowed {title}"))?;
                Ok(Flow::Next)
            }
            Some(false) => {
                self.tool_update(&id, json!({"status": "failed"}))?;
                self.say(&format!("rejected {title}"))?;
                Ok(Flow::Next)
            }
            None => {
                self.tool_update(&id, json!({"status": "failed"}))?;
                Ok(Flow::Cancelled)
            }
        }
    }

    async fn ask_run(&self, cmd: &str) -> Result<Flow, Error> {
        let id = self.shared.next_tool_call_id();
        self.tool_call(json!({"toolCallId": id, "title": cmd, "kind": "execute",
                              "status": "pending", "rawInput": {"command": cmd}}))?;
        match self.permission(&id, cmd).await? {
            Some(true) => self.terminal(cmd, Some(id), false).await,
            Some(false) => {
                self.tool_update(&id, json!({"status": "failed"}))?;
                self.say(&format!("rejected {cmd}"))?;
                Ok(Flow::Next)
            }
            None => {
                self.tool_update(&id, json!({"status": "failed"}))?;
                Ok(Flow::Cancelled)
            }
        }
    }

    /// Relative paths are joined to the session's cwd without normalising, so `../x`
    /// reaches the client as it was written.
    fn path(&self, path: &str) -> PathBuf {
        self.cwd.join(path)
    }

    async fn write(&self, rest: &str) -> Result<(), Error> {
        let (path, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let text = text.replace("\\n", "\n");
        let abs = self.path(path);
        let id = self.shared.next_tool_call_id();
        self.tool_call(
            json!({"toolCallId": id, "title": format!("write {path}"), "kind": "edit",
                              "status": "pending", "locations": [{"path": abs}]}),
        )?;
        let read: ReadTextFileRequest = typed(json!({"sessionId": self.session_id, "path": abs}))?;
        let old = self
            .cx
            .send_request(read)
            .block_task()
            .await
            .ok()
            .map(|r| r.content);
        let write: WriteTextFileRequest =
            typed(json!({"sessionId": self.session_id, "path": abs, "content": text}))?;
        match self.cx.send_request(write).block_task().await {
            Ok(_) => {
                let diff = json!({"type": "diff", "path": abs, "oldText": old, "newText": text});
                self.tool_update(&id, json!({"status": "completed", "content": [diff]}))?;
                self.say(&format!("wrote {path}"))
            }
            Err(err) => {
                self.tool_update(&id, json!({"status": "failed"}))?;
                self.say(&format!("write failed: {}", err.message))
            }
        }
    }

    async fn read(&self, path: &str) -> Result<(), Error> {
        let path = path.trim();
        let read: ReadTextFileRequest =
            typed(json!({"sessionId": self.session_id, "path": self.path(path)}))?;
        match self.cx.send_request(read).block_task().await {
            Ok(response) => self.say(&format!("read: {}", response.content)),
            Err(err) => self.say(&format!("read failed: {}", err.message)),
        }
    }

    /// The stable schema only has `usage_update` (context window: `used` of `size`),
    /// so `used` is IN + OUT; the split itself rides in `_meta`.
    fn report_usage(&mut self, rest: &str) -> Result<(), Error> {
        let mut numbers = rest
            .split_whitespace()
            .map(|n| n.parse::<u64>().unwrap_or(0));
        let input = numbers.next().unwrap_or(0);
        let output = numbers.next().unwrap_or(0);
        self.usage = Some((input, output));
        self.update(
            json!({"sessionUpdate": "usage_update", "used": input + output, "size": 200_000,
                           "_meta": {"inputTokens": input, "outputTokens": output}}),
        )
    }
}
