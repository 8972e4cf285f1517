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

mod controls;
mod startup;

use controls::answer_message;
use startup::with_stderr;

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
    /// The agent ended the prompt, with the token counts it reported, if any.
    Stopped(StopReason, Option<Value>),
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
            Outcome::Stopped(reason, _) => {
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
        let tokens = match &outcome {
            Outcome::Stopped(_, tokens) => tokens.as_ref(),
            _ => None,
        };
        let usage = turn_usage(tokens, self.state().usage.as_ref());
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
        self.answer_now(request_id, option_id).await
    }

    async fn choose(&self, kind: ChoiceKind, id: &str) -> Result<Choices, ControlError> {
        self.pick(kind, id).await
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

fn outcome_of(
    result: Result<agent_client_protocol::v1::schema::PromptResponse, agent_client_protocol::Error>,
) -> Outcome {
    match result {
        Ok(response) => {
            let usage = serde_json::to_value(&response)
                .ok()
                .and_then(|r| r.get("usage").cloned())
                .filter(|u| !u.is_null());
            Outcome::Stopped(response.stop_reason, usage)
        }
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

/// A turn's usage in one shape whatever the agent sent: token counts from the
/// prompt's answer, and the context window and cost from its last `usage_update`.
fn turn_usage(tokens: Option<&Value>, context: Option<&Value>) -> Option<Value> {
    let mut usage = serde_json::Map::new();
    if let Some(tokens) = tokens {
        for (from, to) in [
            ("inputTokens", "input_tokens"),
            ("outputTokens", "output_tokens"),
            ("totalTokens", "total_tokens"),
            ("thoughtTokens", "thought_tokens"),
            ("cachedReadTokens", "cached_read_tokens"),
        ] {
            if let Some(n) = tokens.get(from).filter(|n| n.is_u64()) {
                usage.insert(to.into(), n.clone());
            }
        }
    }
    if let Some(context) = context.and_then(Value::as_object) {
        for (key, value) in context {
            if !value.is_null() {
                usage.insert(key.clone(), value.clone());
            }
        }
    }
    (!usage.is_empty()).then_some(Value::Object(usage))
}
