//! Drains what the agent sends, in order, into the conversation's log: replies
//! and thoughts (consecutive pieces coalesced like terminal output), tool calls,
//! plans and permission requests; and serves the agent's file and terminal
//! requests. One pump per agent process.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use agent_client_protocol::v1::Responder;
use agent_client_protocol::v1::schema::{
    CreateTerminalResponse, KillTerminalResponse, ReadTextFileResponse, ReleaseTerminalResponse,
    RequestPermissionResponse, TerminalExitStatus, TerminalOutputResponse,
    WaitForTerminalExitResponse, WriteTextFileResponse,
};
use agent_client_protocol::{Error, ErrorCode};
use app::protocol::{
    Message, MessageType, PermissionOption, PermissionRequest, PlanEntry, ToolContent, ToolUpdate,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::book::{ToolBook, text_of};
use super::files;
use super::link::Inbound;
use super::state::AgentState;
use super::terminals::{Launch, Terminals};
use crate::agent::Attachment;
use crate::log::now_rfc3339;
use crate::tools::chunk::MAX_CHUNK_CHARS;
use crate::tools::pty::ExitInfo;

/// Most inbound events handled before the log is written.
const MAX_BATCH: usize = 64;

/// What the pump shares with the conversation's instance.
pub struct Pump {
    pub seat: Attachment,
    /// The conversation's directory: files and terminals stay inside it.
    pub root: PathBuf,
    pub book: Arc<Mutex<ToolBook>>,
    pub terminals: Arc<Terminals>,
    pub state: Arc<Mutex<AgentState>>,
}

/// Messages waiting to be appended, with the streamed text being coalesced.
#[derive(Default)]
struct Batch {
    messages: Vec<Message>,
    text: Option<(MessageType, String)>,
}

impl Batch {
    fn text(&mut self, kind: MessageType, piece: &str) {
        if piece.is_empty() {
            return;
        }
        if let Some((k, text)) = &mut self.text
            && *k == kind
            && text.chars().count() + piece.chars().count() <= MAX_CHUNK_CHARS
        {
            text.push_str(piece);
            return;
        }
        self.end_text();
        self.text = Some((kind, piece.to_string()));
    }

    fn end_text(&mut self) {
        if let Some((kind, text)) = self.text.take() {
            self.messages.push(Message::new(kind, text));
        }
    }

    fn push(&mut self, message: Message) {
        self.end_text();
        self.messages.push(message);
    }
}

impl Pump {
    fn book(&self) -> MutexGuard<'_, ToolBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, AgentState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn run(self: Arc<Self>, mut inbox: mpsc::Receiver<Inbound>) {
        while let Some(first) = inbox.recv().await {
            let mut batch = Batch::default();
            let mut next = Some(first);
            let mut handled = 0;
            while let Some(event) = next.take() {
                handled += 1;
                match event {
                    Inbound::Update(update) => self.update(&update, &mut batch),
                    request => {
                        // Whatever came before a request is logged before it is served.
                        self.write(&mut batch).await;
                        self.request(request).await;
                    }
                }
                if handled < MAX_BATCH {
                    next = inbox.try_recv().ok();
                }
            }
            self.write(&mut batch).await;
        }
        // The agent is gone: its commands go with it.
        self.terminals.release_all();
    }

    async fn write(&self, batch: &mut Batch) {
        batch.end_text();
        if batch.messages.is_empty() {
            return;
        }
        let messages = std::mem::take(&mut batch.messages);
        if let Err(err) = self.seat.log.append_all(messages).await {
            tracing::error!(%err, "cannot append the agent's updates");
        }
    }

    async fn append(&self, messages: Vec<Message>) {
        let mut batch = Batch {
            messages,
            text: None,
        };
        self.write(&mut batch).await;
    }

    fn update(&self, update: &Value, batch: &mut Batch) {
        self.state().last_activity = Some(now_rfc3339());
        let kind = update
            .get("sessionUpdate")
            .and_then(Value::as_str)
            .unwrap_or("");
        match kind {
            "agent_message_chunk" | "agent_thought_chunk" => {
                let text = update.get("content").map(text_of).unwrap_or_default();
                let kind = if kind == "agent_message_chunk" {
                    MessageType::AgentText
                } else {
                    MessageType::Thought
                };
                batch.text(kind, &text);
            }
            "tool_call" | "tool_call_update" => {
                let mut out = Vec::new();
                self.book().apply(update, &mut out);
                for message in out {
                    batch.push(message);
                }
            }
            "plan" => {
                let entries = update
                    .get("entries")
                    .and_then(Value::as_array)
                    .map(|entries| {
                        entries
                            .iter()
                            .map(|e| PlanEntry {
                                content: field(e, "content"),
                                priority: field(e, "priority"),
                                status: field(e, "status"),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut plan = Message::new(MessageType::Plan, "");
                plan.plan = Some(entries);
                batch.push(plan);
            }
            "current_mode_update" => {
                if let Some(mode) = update.get("currentModeId").and_then(Value::as_str) {
                    self.state().set_current_mode(mode);
                    (self.seat.on_change)();
                }
            }
            "config_option_update" => {
                if let Some(options) = update.get("configOptions") {
                    self.state().apply_config_options(options);
                    (self.seat.on_change)();
                }
            }
            "usage_update" => {
                self.state().usage = Some(json!({
                    "context_used": update.get("used"),
                    "context_size": update.get("size"),
                    "cost": update.get("cost"),
                }));
            }
            // Commands, session titles and replays of the user's own message add
            // nothing the log does not already show.
            _ => {}
        }
    }

    async fn request(&self, request: Inbound) {
        self.state().last_activity = Some(now_rfc3339());
        let sent = match request {
            Inbound::Update(_) => Ok(()),
            Inbound::Flush(done) => {
                let _ = done.send(());
                Ok(())
            }
            Inbound::Permission(request, responder) => {
                let fields = serde_json::to_value(&request.tool_call).unwrap_or_default();
                let tool_call_id = field(&fields, "toolCallId");
                let mut out = Vec::new();
                {
                    let mut book = self.book();
                    if !book.is_open(&tool_call_id) {
                        book.apply(&fields, &mut out);
                    }
                }
                let title = fields
                    .get("title")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| "The agent asks for permission".into());
                let pending = PermissionRequest {
                    request_id: format!("perm_{}", uuid::Uuid::new_v4().simple()),
                    tool_call_id,
                    title,
                    input: fields.get("rawInput").cloned().filter(|v| !v.is_null()),
                    options: request
                        .options
                        .iter()
                        .map(|o| {
                            let o = serde_json::to_value(o).unwrap_or_default();
                            PermissionOption {
                                option_id: field(&o, "optionId"),
                                name: field(&o, "name"),
                                kind: field(&o, "kind"),
                            }
                        })
                        .collect(),
                };
                let mut asked = Message::new(MessageType::Permission, pending.title.clone());
                asked.tool_call_id = Some(pending.tool_call_id.clone());
                asked.permission = Some(pending.clone());
                out.push(asked);
                self.append(out).await;
                self.state().ask(pending, responder);
                (self.seat.on_change)();
                Ok(())
            }
            Inbound::Read(request, responder) => {
                match files::read(&self.root, &request.path, request.line, request.limit).await {
                    Ok(text) => responder.respond(ReadTextFileResponse::new(text)),
                    Err(why) => responder.respond_with_error(refusal(why)),
                }
            }
            Inbound::Write(request, responder) => {
                match files::write(&self.root, &request.path, &request.content).await {
                    Ok((path, before)) => {
                        let call = self.book().open_ids().pop();
                        let mut diff = Message::new(MessageType::ToolUpdate, "");
                        diff.tool_call_id = call;
                        diff.tool_update = Some(ToolUpdate {
                            content: Some(vec![ToolContent::Diff {
                                path: path.display().to_string(),
                                old_text: before,
                                new_text: request.content.clone(),
                            }]),
                            locations: vec![path.display().to_string()],
                            ..ToolUpdate::default()
                        });
                        self.append(vec![diff]).await;
                        responder.respond(WriteTextFileResponse::new())
                    }
                    Err(why) => responder.respond_with_error(refusal(why)),
                }
            }
            Inbound::CreateTerminal(request, responder) => {
                let mut out = Vec::new();
                let call_id = {
                    let mut book = self.book();
                    match book.newest_without_terminal() {
                        Some(id) => id,
                        None => {
                            // A command no tool call announced: it gets a card of its own.
                            let id = format!("call_{}", uuid::Uuid::new_v4().simple());
                            let fields = json!({
                                "toolCallId": id, "title": request.command,
                                "kind": "execute", "rawInput": {"command": request.command},
                            });
                            book.open_call(&id, &fields, &mut out);
                            id
                        }
                    }
                };
                self.append(out).await;
                let launch = Launch {
                    command: request.command.clone(),
                    args: request.args.clone(),
                    env: request
                        .env
                        .iter()
                        .map(|v| (v.name.clone(), v.value.clone()))
                        .collect(),
                    cwd: request.cwd.as_deref(),
                    output_limit: request.output_byte_limit,
                };
                match self
                    .terminals
                    .create(&self.seat, &self.book, &self.root, &call_id, launch)
                {
                    Ok(terminal) => {
                        self.book().attach_terminal(&call_id, &terminal);
                        responder.respond(CreateTerminalResponse::new(terminal))
                    }
                    Err(why) => responder.respond_with_error(refusal(why)),
                }
            }
            Inbound::TerminalOutput(request, responder) => {
                match self.terminals.snapshot(&request.terminal_id.0) {
                    Ok(snapshot) => responder.respond(
                        TerminalOutputResponse::new(snapshot.output, snapshot.truncated)
                            .exit_status(snapshot.exit.as_ref().map(exit_status)),
                    ),
                    Err(why) => responder.respond_with_error(refusal(why)),
                }
            }
            Inbound::WaitForExit(request, responder) => {
                // Waiting must not hold up the agent's other messages.
                let terminals = self.terminals.clone();
                tokio::spawn(async move {
                    let sent = match terminals.wait(&request.terminal_id.0).await {
                        Ok(exit) => {
                            responder.respond(WaitForTerminalExitResponse::new(exit_status(&exit)))
                        }
                        Err(why) => responder.respond_with_error(refusal(why)),
                    };
                    if let Err(err) = sent {
                        tracing::debug!(%err, "cannot answer wait_for_exit");
                    }
                });
                Ok(())
            }
            Inbound::KillTerminal(request, responder) => {
                match self.terminals.kill(&request.terminal_id.0) {
                    Ok(()) => responder.respond(KillTerminalResponse::new()),
                    Err(why) => responder.respond_with_error(refusal(why)),
                }
            }
            Inbound::ReleaseTerminal(request, responder) => {
                match self.terminals.release(&request.terminal_id.0) {
                    Ok(()) => responder.respond(ReleaseTerminalResponse::new()),
                    Err(why) => responder.respond_with_error(refusal(why)),
                }
            }
        };
        if let Err(err) = sent {
            tracing::debug!(%err, "cannot answer the agent");
        }
    }
}

/// Answers a permission request (or withdraws it with `None`).
pub fn answer(responder: Responder<RequestPermissionResponse>, option_id: Option<&str>) {
    use agent_client_protocol::v1::schema::{RequestPermissionOutcome, SelectedPermissionOutcome};
    let outcome = match option_id {
        Some(id) => {
            RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(id.to_string()))
        }
        None => RequestPermissionOutcome::Cancelled,
    };
    if let Err(err) = responder.respond(RequestPermissionResponse::new(outcome)) {
        tracing::debug!(%err, "cannot answer a permission request");
    }
}

fn exit_status(exit: &ExitInfo) -> TerminalExitStatus {
    TerminalExitStatus::new()
        .exit_code(exit.exit_code.and_then(|c| u32::try_from(c).ok()))
        .signal(exit.signal.clone())
}

/// A request Tether will not serve, in words the agent can pass on.
fn refusal(why: String) -> Error {
    Error::new(ErrorCode::INVALID_PARAMS, why)
}

fn field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
