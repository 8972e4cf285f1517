//! One conversation's ACP agent: starts the process on the first chat message,
//! opens (or reloads) its session, sends each turn's prompt, and ends every turn
//! properly whatever the agent does: stopped, crashed, silent or broken.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agent_client_protocol::Agent as AgentRole;
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, ContentBlock, FileSystemCapabilities,
    InitializeRequest, LoadSessionRequest, NewSessionRequest, PromptRequest, SessionConfigValueId,
    SessionId, SetSessionConfigOptionRequest, SetSessionModeRequest, StopReason, TextContent,
};
use app::protocol::{Choices, Message, MessageType, PermissionAnswer, ToolStatus};
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::book::ToolBook;
use super::link::{self, Inbound, Link};
use super::process::{AgentProcess, Ended};
use super::pump::{self, Pump};
use super::spec::AgentSpec;
use super::state::AgentState;
use super::terminals::Terminals;
use crate::agent::{
    AgentStatus, Attachment, ChoiceKind, ControlError, Instance, Turn, TurnEnd, TurnError,
};
use crate::log::now_rfc3339;

/// Longest wait for `initialize` and for a session to open.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// After `session/cancel`, how long the agent has to end the prompt before its
/// process group is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(10);
/// Longest wait for the pump to log what came before the prompt's answer.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A running agent process and its session.
struct Live {
    process: Arc<AgentProcess>,
    link: Link,
    /// Queues `Flush` markers behind the agent's own messages.
    inbox: tokio::sync::mpsc::Sender<Inbound>,
    /// `None` until a session is open (and after a restart).
    session: Option<SessionId>,
    /// Whether the agent can reopen a session (`session/load`).
    can_load: bool,
}

pub struct AcpInstance {
    spec: Arc<AgentSpec>,
    seat: Attachment,
    /// The agent process, once started; only turns (one at a time) change it.
    live: tokio::sync::Mutex<Option<Live>>,
    /// The connection and session for requests made outside a turn (mode, model).
    current: Mutex<Option<(ConnectionTo<AgentRole>, SessionId)>>,
    state: Arc<Mutex<AgentState>>,
    book: Arc<Mutex<ToolBook>>,
    terminals: Arc<Terminals>,
}

/// How a prompt ended.
enum Outcome {
    Stopped(StopReason),
    /// The agent answered the prompt with an error.
    Refused(String),
    /// The agent died or broke the protocol.
    Gone(Ended),
    /// It did not end the prompt within the grace period after a stop.
    Unresponsive,
}

impl AcpInstance {
    pub fn new(spec: Arc<AgentSpec>, seat: Attachment) -> Self {
        AcpInstance {
            spec,
            seat,
            live: tokio::sync::Mutex::new(None),
            current: Mutex::new(None),
            state: Arc::new(Mutex::new(AgentState::default())),
            book: Arc::new(Mutex::new(ToolBook::default())),
            terminals: Arc::new(Terminals::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, AgentState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        (self.seat.on_change)();
    }

    /// Starts the process and initializes it, or says why it could not (with the
    /// last lines of its stderr).
    async fn start(&self, turn: &Turn) -> Result<Live, String> {
        let cwd = turn.cwd().to_path_buf();
        let (process, pipes) =
            AgentProcess::spawn(&self.spec, &cwd, self.seat.toolbox.env.removed())?;
        let process = Arc::new(process);
        match self.connect(process.clone(), pipes, cwd).await {
            Ok(live) => Ok(live),
            Err(why) => {
                // Give its last words a moment to arrive.
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), process.wait_ended()).await;
                process.kill().await;
                Err(with_stderr(&why, &process.stderr_tail()))
            }
        }
    }

    async fn connect(
        &self,
        process: Arc<AgentProcess>,
        pipes: super::process::Pipes,
        cwd: std::path::PathBuf,
    ) -> Result<Live, String> {
        let (link, inbox_rx, inbox) = link::connect(pipes).await?;
        let pump = Arc::new(Pump {
            seat: self.seat.clone(),
            root: cwd,
            book: self.book.clone(),
            terminals: self.terminals.clone(),
            state: self.state.clone(),
        });
        tokio::spawn(pump.run(inbox_rx));
        let mut capabilities = ClientCapabilities::new()
            .fs(FileSystemCapabilities::new()
                .read_text_file(true)
                .write_text_file(true))
            .terminal(true);
        // Zed's extension: agents that run commands themselves stream their output.
        let mut meta = serde_json::Map::new();
        meta.insert("terminal_output".into(), Value::Bool(true));
        capabilities = capabilities.meta(meta);
        let init = link.cx.send_request(
            InitializeRequest::new(ProtocolVersion::V1).client_capabilities(capabilities),
        );
        let response = self
            .bounded(&process, "initialize", init.block_task())
            .await?;
        let can_load = response.agent_capabilities.load_session;
        Ok(Live {
            process,
            link,
            inbox,
            session: None,
            can_load,
        })
    }

    /// Awaits `request` unless the agent dies first or it takes too long.
    async fn bounded<T>(
        &self,
        process: &AgentProcess,
        what: &str,
        request: impl Future<Output = Result<T, agent_client_protocol::Error>>,
    ) -> Result<T, String> {
        tokio::select! {
            result = tokio::time::timeout(START_TIMEOUT, request) => match result {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(err)) => Err(format!("the agent refused `{what}`: {}", err.message)),
                Err(_) => Err(format!("the agent did not answer `{what}` within {} s", START_TIMEOUT.as_secs())),
            },
            ended = process.wait_ended() => Err(describe(&ended)),
        }
    }

    /// Opens the session the turn runs in: the conversation's earlier one when the
    /// agent can reload it, else a new one (saying so if memory was lost).
    async fn open_session(&self, live: &mut Live, turn: &Turn) -> Result<SessionId, String> {
        if let Some(session) = &live.session {
            return Ok(session.clone());
        }
        let cwd = turn.cwd().to_path_buf();
        let earlier = earlier_session(turn).await;
        let mut notes = Vec::new();
        let mut opened = None;
        if let Some(id) = &earlier {
            if live.can_load {
                let load = live.link.cx.send_request(LoadSessionRequest::new(
                    SessionId::new(id.clone()),
                    cwd.clone(),
                ));
                match self.bounded(&live.process, "session/load", load.block_task()).await {
                    Ok(response) => {
                        let response = serde_json::to_value(&response).unwrap_or_default();
                        opened = Some((SessionId::new(id.clone()), response));
                    }
                    Err(why) => notes.push(format!(
                        "The agent could not reopen its earlier session ({why}): it starts afresh and does not remember this conversation."
                    )),
                }
            } else {
                notes.push(
                    "The agent was restarted and cannot reopen its earlier session: it does not remember this conversation."
                        .to_string(),
                );
            }
        }
        let (session, response) = match opened {
            Some(opened) => opened,
            None => {
                let new = live.link.cx.send_request(NewSessionRequest::new(cwd));
                let response = self
                    .bounded(&live.process, "session/new", new.block_task())
                    .await?;
                let id = response.session_id.clone();
                (id, serde_json::to_value(&response).unwrap_or_default())
            }
        };
        {
            let mut state = self.state();
            state.reset_session();
            state.apply_modes(response.get("modes"));
            if let Some(options) = response.get("configOptions") {
                state.apply_config_options(options);
            }
        }
        // Ask-first, explicitly: newer adapters default to letting the model approve itself.
        if let Some(mode) = &self.spec.mode {
            let offered = self
                .state()
                .modes
                .as_ref()
                .is_some_and(|m| m.options.iter().any(|o| &o.id == mode));
            if offered {
                let set = live
                    .link
                    .cx
                    .send_request(SetSessionModeRequest::new(session.clone(), mode.clone()));
                match self
                    .bounded(&live.process, "session/set_mode", set.block_task())
                    .await
                {
                    Ok(_) => self.state().set_current_mode(mode),
                    Err(why) => notes.push(format!(
                        "Could not set the agent's mode to {mode:?}: {why}."
                    )),
                }
            }
        }
        let mut started = Message::new(
            MessageType::Notice,
            format!("{} session started.", self.spec.name),
        );
        started.input = Some(json!({ "acp_session_id": session.0.to_string() }));
        let mut messages = vec![started];
        messages.extend(
            notes
                .into_iter()
                .map(|n| Message::new(MessageType::Notice, n)),
        );
        for message in messages {
            turn.append(message).await.map_err(|e| e.to_string())?;
        }
        live.session = Some(session.clone());
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((live.link.cx.clone(), session.clone()));
        self.changed();
        Ok(session)
    }

    /// Sends the prompt and waits for its end, stopping it when the turn is stopped.
    async fn prompt(
        &self,
        live: &Live,
        session: &SessionId,
        turn: &Turn,
        message: &str,
    ) -> Outcome {
        let request = live.link.cx.send_request(PromptRequest::new(
            session.clone(),
            vec![ContentBlock::Text(TextContent::new(message.to_string()))],
        ));
        let mut answer = std::pin::pin!(request.block_task());
        tokio::select! {
            result = &mut answer => return self.settle(live, result).await,
            ended = live.process.wait_ended() => return Outcome::Gone(ended),
            _ = turn.cancellation().cancelled() => {}
        }
        // Stopped: tell the agent, withdraw its questions, and give it a moment.
        if let Err(err) = live
            .link
            .cx
            .send_notification(CancelNotification::new(session.clone()))
        {
            tracing::debug!(%err, "cannot send session/cancel");
        }
        self.withdraw_permissions().await;
        tokio::select! {
            result = tokio::time::timeout(CANCEL_GRACE, &mut answer) => match result {
                Ok(result) => self.settle(live, result).await,
                Err(_) => Outcome::Unresponsive,
            },
            ended = live.process.wait_ended() => Outcome::Gone(ended),
        }
    }

    /// The prompt's answer; a failure caused by the agent dying counts as its death.
    async fn settle(
        &self,
        live: &Live,
        result: Result<
            agent_client_protocol::v1::schema::PromptResponse,
            agent_client_protocol::Error,
        >,
    ) -> Outcome {
        if result.is_err()
            && let Ok(ended) =
                tokio::time::timeout(Duration::from_secs(2), live.process.wait_ended()).await
        {
            return Outcome::Gone(ended);
        }
        outcome_of(result)
    }

    /// Answers every pending permission request `cancelled`, in the log too.
    async fn withdraw_permissions(&self) {
        let pending = self.state().take_all();
        if pending.is_empty() {
            return;
        }
        let mut answers = Vec::new();
        for (request, responder) in pending {
            pump::answer(responder, None);
            answers.push(answer_message(PermissionAnswer {
                request_id: request.request_id,
                tool_call_id: request.tool_call_id,
                option_id: None,
                outcome: "cancelled".into(),
            }));
        }
        if let Err(err) = self.seat.log.append_all(answers).await {
            tracing::error!(%err, "cannot log withdrawn permission requests");
        }
        self.changed();
    }

    /// Waits until the pump logged everything the agent sent before now.
    async fn flush(&self, live: &Live) {
        let (done, flushed) = oneshot::channel();
        if live.inbox.send(Inbound::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, flushed).await;
        }
    }

    /// Ends the agent process; the next turn starts a new one.
    async fn stop_process(&self, live: Live) {
        live.process.kill().await;
        drop(live.link);
        self.terminals.release_all();
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        {
            let mut state = self.state();
            state.reset_session();
        }
        self.changed();
    }
}

#[async_trait]
impl Instance for AcpInstance {
    async fn run_turn(&self, turn: &Turn, message: &str) -> Result<TurnEnd, TurnError> {
        let mut slot = self.live.lock().await;
        self.state().last_activity = Some(now_rfc3339());
        if slot.as_ref().is_some_and(|l| l.process.ended().is_some())
            && let Some(dead) = slot.take()
        {
            self.stop_process(dead).await;
        }
        if slot.is_none() {
            match self.start(turn).await {
                Ok(live) => *slot = Some(live),
                Err(why) => return self.failed_to_start(turn, why, None).await,
            }
        }
        let Some(live) = slot.as_mut() else {
            return Ok(TurnEnd::text("The agent could not start."));
        };
        let session = match self.open_session(live, turn).await {
            Ok(session) => session,
            Err(why) => {
                let dead = slot.take();
                return self.failed_to_start(turn, why, dead).await;
            }
        };
        let Some(live) = slot.as_ref() else {
            return Ok(TurnEnd::text("The agent could not start."));
        };
        let outcome = self.prompt(live, &session, turn, message).await;
        self.flush(live).await;
        self.withdraw_permissions().await;
        let stopped = turn.is_cancelled();
        let (status, why, text) = match &outcome {
            Outcome::Stopped(reason) => {
                let text = match reason {
                    StopReason::EndTurn => "Done.",
                    StopReason::MaxTokens => "The agent stopped: it reached its token limit.",
                    StopReason::MaxTurnRequests => {
                        "The agent stopped: it reached its limit of requests for one turn."
                    }
                    StopReason::Refusal => "The agent refused to continue.",
                    StopReason::Cancelled => "Stopped.",
                    _ => "The agent ended the turn.",
                };
                let status = if stopped {
                    ToolStatus::Cancelled
                } else {
                    ToolStatus::Error
                };
                (
                    status,
                    "the agent did not finish this call before the turn ended",
                    text.to_string(),
                )
            }
            Outcome::Refused(why) => (
                ToolStatus::Error,
                "the turn failed",
                format!("The agent failed: {why}"),
            ),
            Outcome::Gone(ended) => (
                ToolStatus::Interrupted,
                "the agent stopped running",
                describe(ended),
            ),
            Outcome::Unresponsive => (
                ToolStatus::Interrupted,
                "the agent did not stop in time and was killed",
                format!(
                    "The agent did not end the turn within {} s of the stop; it was killed.",
                    CANCEL_GRACE.as_secs()
                ),
            ),
        };
        let closing = self
            .book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .close_all(status, why);
        turn.append_all(closing).await?;
        if matches!(
            outcome,
            Outcome::Refused(_) | Outcome::Gone(_) | Outcome::Unresponsive
        ) {
            let mut error = Message::new(MessageType::Error, text.clone());
            if let Outcome::Gone(_) | Outcome::Unresponsive = outcome {
                error.content = with_stderr(&text, &live.process.stderr_tail());
            }
            turn.append(error).await?;
        }
        if matches!(outcome, Outcome::Gone(_) | Outcome::Unresponsive) {
            if let Some(dead) = slot.take() {
                self.stop_process(dead).await;
            }
        } else {
            // Commands the agent left running end with its turn.
            self.terminals.release_all();
        }
        let usage = self.state().usage.clone();
        Ok(TurnEnd { text, usage })
    }

    fn status(&self) -> AgentStatus {
        self.state().status()
    }

    async fn answer_permission(
        &self,
        request_id: &str,
        option_id: &str,
    ) -> Result<PermissionAnswer, ControlError> {
        let (request, responder) = match self.state().take(request_id) {
            Ok(taken) => taken,
            Err(true) => {
                return Err(ControlError::Conflict(format!(
                    "the permission request {request_id:?} was already answered"
                )));
            }
            Err(false) => {
                return Err(ControlError::NotFound(format!(
                    "no pending permission request with id {request_id:?}"
                )));
            }
        };
        let Some(option) = request.options.iter().find(|o| o.option_id == option_id) else {
            // Not an answer after all: the request stays pending.
            let known: Vec<_> = request
                .options
                .iter()
                .map(|o| o.option_id.clone())
                .collect();
            let mut state = self.state();
            state.unsettle(request_id);
            state.ask(request, responder);
            return Err(ControlError::NotFound(format!(
                "the request has no option {option_id:?} (it has {known:?})"
            )));
        };
        let answer = PermissionAnswer {
            request_id: request.request_id.clone(),
            tool_call_id: request.tool_call_id.clone(),
            option_id: Some(option.option_id.clone()),
            outcome: option.kind.clone(),
        };
        // Logged before the agent hears it, so what it does next follows the answer.
        if let Err(err) = self.seat.log.append(answer_message(answer.clone())).await {
            tracing::error!(%err, "cannot log a permission answer");
        }
        pump::answer(responder, Some(option_id));
        self.changed();
        Ok(answer)
    }

    async fn choose(&self, kind: ChoiceKind, id: &str) -> Result<Choices, ControlError> {
        let Some((cx, session)) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Err(ControlError::Conflict(
                "the agent has not started yet: send a message first".into(),
            ));
        };
        let (choices, config) = {
            let state = self.state();
            match kind {
                ChoiceKind::Mode => (state.modes.clone(), state.modes_via_config.clone()),
                ChoiceKind::Model => (state.models.clone(), state.models_config.clone()),
            }
        };
        let Some(choices) = choices else {
            return Err(ControlError::NotFound(match kind {
                ChoiceKind::Mode => "this agent has no modes".into(),
                ChoiceKind::Model => "this agent offers no choice of model".into(),
            }));
        };
        if !choices.options.iter().any(|o| o.id == id) {
            return Err(ControlError::NotFound(format!(
                "the agent offers no {id:?}"
            )));
        }
        let result = match config {
            Some(config) => cx
                .send_request(SetSessionConfigOptionRequest::new(
                    session,
                    config,
                    SessionConfigValueId::new(id.to_string()),
                ))
                .block_task()
                .await
                .map(|_| ()),
            None => cx
                .send_request(SetSessionModeRequest::new(session, id.to_string()))
                .block_task()
                .await
                .map(|_| ()),
        };
        tokio::time::timeout(START_TIMEOUT, async { result })
            .await
            .map_err(|_| ControlError::Failed("the agent did not answer".into()))?
            .map_err(|e| ControlError::Failed(format!("the agent refused: {}", e.message)))?;
        let updated = {
            let mut state = self.state();
            let target = match kind {
                ChoiceKind::Mode => &mut state.modes,
                ChoiceKind::Model => &mut state.models,
            };
            if let Some(c) = target {
                c.current = id.to_string();
            }
            target.clone().unwrap_or_default()
        };
        self.changed();
        Ok(updated)
    }

    fn reset(&self) {
        // The next turn opens a new session in the same process.
        if let Ok(mut slot) = self.live.try_lock()
            && let Some(live) = slot.as_mut()
        {
            live.session = None;
        }
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.state().reset_session();
    }

    async fn shutdown(&self) {
        if let Some(live) = self.live.lock().await.take() {
            self.stop_process(live).await;
        }
    }
}

impl AcpInstance {
    async fn failed_to_start(
        &self,
        turn: &Turn,
        why: String,
        dead: Option<Live>,
    ) -> Result<TurnEnd, TurnError> {
        let stderr = match &dead {
            Some(live) => {
                // Give its last words a moment to arrive.
                let _ = tokio::time::timeout(Duration::from_millis(500), live.process.wait_ended())
                    .await;
                live.process.stderr_tail()
            }
            None => Vec::new(),
        };
        if let Some(live) = dead {
            self.stop_process(live).await;
        }
        let text = format!("The agent {:?} could not start: {why}", self.spec.name);
        turn.append(Message::new(
            MessageType::Error,
            with_stderr(&text, &stderr),
        ))
        .await?;
        Ok(TurnEnd::text("The agent could not start."))
    }
}

fn outcome_of(
    result: Result<agent_client_protocol::v1::schema::PromptResponse, agent_client_protocol::Error>,
) -> Outcome {
    match result {
        Ok(response) => Outcome::Stopped(response.stop_reason),
        Err(err) => Outcome::Refused(match &err.data {
            Some(data) => format!("{} ({data})", err.message),
            None => err.message.clone(),
        }),
    }
}

fn describe(ended: &Ended) -> String {
    match ended {
        Ended::Exited(how) => format!("The agent exited ({how})."),
        Ended::Malformed(line) => {
            format!("The agent wrote something that is not JSON-RPC: {line:?}.")
        }
    }
}

fn with_stderr(text: &str, stderr: &[String]) -> String {
    if stderr.is_empty() {
        return text.to_string();
    }
    format!("{text}\nLast lines of its stderr:\n{}", stderr.join("\n"))
}

fn answer_message(answer: PermissionAnswer) -> Message {
    let mut message = Message::new(MessageType::PermissionAnswer, answer.outcome.clone());
    message.tool_call_id = Some(answer.tool_call_id.clone());
    message.permission_answer = Some(answer);
    message
}

/// The ACP session this conversation used before a restart of Tether, if any.
async fn earlier_session(turn: &Turn) -> Option<String> {
    let context = turn.context().await.ok()?;
    context.iter().rev().find_map(|m| {
        (m.kind == MessageType::Notice)
            .then(|| {
                m.input
                    .as_ref()?
                    .get("acp_session_id")?
                    .as_str()
                    .map(str::to_string)
            })
            .flatten()
    })
}
