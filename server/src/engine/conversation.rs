//! One conversation: its log, its metadata, its seat at its agent, and what runs
//! now. Chat, cancel, input and restart requests land here; the worker (`worker.rs`)
//! runs the queued turns.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use app::protocol::{
    Choices, ConversationState, ConversationSummary, Message, MessageType, PermissionAnswer,
    RunStatus, ToolStatus,
};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::follow::Remote;
use super::shared::Shared;
use super::{EngineError, git};
use crate::agent::{ChoiceKind, InputError, Session};
use crate::log::{Log, now_rfc3339};
use crate::store::{ConversationRecord, StoreError};

/// Longest a restart waits for a stopped turn to wind down (cancel escalates to
/// SIGKILL after 4 s; the PTY drain adds at most 3 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Conversation {
    /// Stable id, also the URL segment.
    pub id: String,
    /// The append-only message log.
    pub log: Arc<Log>,
    /// The agent that runs this conversation's turns and the tool calls it runs.
    pub(super) session: Session,
    /// What every conversation shares: store, agents, global change signal.
    pub(super) shared: Arc<Shared>,
    /// Persistent metadata (title, cwd, agent, first_message_index, timestamps).
    meta: Mutex<ConversationRecord>,
    /// Serializes metadata writes, so the store never ends up with an older copy.
    meta_write: tokio::sync::Mutex<()>,
    /// What is running now; never held across an `.await`.
    runtime: Mutex<Runtime>,
    /// Bumped whenever the state (apart from `message_count`) changes.
    changed: Arc<watch::Sender<u64>>,
    /// Wakes the worker when a turn is queued.
    pub(super) wake: Notify,
    /// Serializes chat and restart so a restart never interleaves with a new turn.
    control: tokio::sync::Mutex<()>,
    /// Held by a turn from its first snapshot of the work tree to its last, and by
    /// a revert, so neither sees the other's half-done work.
    pub(super) tree: tokio::sync::Mutex<()>,
    /// While another replica owns this conversation: what the owner last said about
    /// it. Nothing runs here then, and `state` comes from it. `None` once this
    /// replica owns it (always, on an embedded store).
    pub(super) remote: Mutex<Option<Remote>>,
    /// Serializes taking ownership, so two requests cannot both start a worker.
    pub(super) owning: tokio::sync::Mutex<()>,
}

#[derive(Default)]
pub(super) struct Runtime {
    pub status: RunStatus,
    /// Chat messages (already in the log) waiting for the current turn to end.
    pub queue: VecDeque<String>,
    /// The running turn, if any.
    pub turn: Option<TurnControl>,
    /// Chat messages being appended to the log right now. The conversation stays
    /// `running` meanwhile, so no `idle` state can follow a user message whose turn
    /// has not started.
    pub appending: usize,
    /// A stop that arrived after a turn was queued but before the worker started it.
    pub pending_stop: Option<StopInfo>,
    /// The storage error that kept a finished turn from being closed in the log (a
    /// tool result or the `end_of_turn` message is missing). Nothing else is appended
    /// until that turn is closed (`ensure_closed`): a later `end_of_turn` would hide
    /// the open call from crash recovery for good.
    pub unclosed: Option<String>,
    /// The index of the latest `changes` message since the last restart, once known.
    pub latest_changes: Option<u64>,
}

pub(super) struct TurnControl {
    pub cancel: CancellationToken,
    pub stop: Option<StopInfo>,
}

/// Why a turn was stopped.
#[derive(Clone)]
pub struct StopInfo {
    pub reason: String,
    /// Queued chat messages dropped with the turn.
    pub dropped: usize,
    /// What running tool calls are marked as.
    pub status: ToolStatus,
}

impl Conversation {
    /// Opens a stored conversation, closing anything a crash left open, and starts its worker.
    pub(super) async fn open(
        record: ConversationRecord,
        shared: Arc<Shared>,
    ) -> Result<Arc<Self>, StoreError> {
        let conversation = Self::build(record, shared, None).await?;
        conversation.recover().await?;
        conversation.start();
        Ok(conversation)
    }

    /// Starts running the conversation here: its worker and, when other replicas
    /// follow it, the publisher of its state.
    pub(super) fn start(self: &Arc<Self>) {
        tokio::spawn(self.clone().worker());
        if self.shared.store.shared_by_replicas() {
            tokio::spawn(self.clone().publish_status());
        }
    }

    /// The conversation without anything running: `remote` is set on a replica that
    /// only follows what the owner does.
    pub(super) async fn build(
        record: ConversationRecord,
        shared: Arc<Shared>,
        remote: Option<Remote>,
    ) -> Result<Arc<Self>, StoreError> {
        let log = Log::open(&record.id, shared.store.clone()).await?;
        let changed = Arc::new(watch::Sender::new(0));
        let on_tools_changed = {
            let changed = changed.clone();
            let shared = shared.clone();
            move || {
                changed.send_modify(|v| *v += 1);
                shared.notify_changed();
            }
        };
        let session = shared
            .agents
            .session(&record.agent, log.clone(), on_tools_changed);
        Ok(Arc::new(Conversation {
            id: record.id.clone(),
            log,
            session,
            shared,
            meta: Mutex::new(record),
            meta_write: tokio::sync::Mutex::new(()),
            runtime: Mutex::new(Runtime::default()),
            changed,
            wake: Notify::new(),
            control: tokio::sync::Mutex::new(()),
            tree: tokio::sync::Mutex::new(()),
            remote: Mutex::new(remote),
            owning: tokio::sync::Mutex::new(()),
        }))
    }

    pub(super) fn runtime(&self) -> MutexGuard<'_, Runtime> {
        self.runtime.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn meta(&self) -> MutexGuard<'_, ConversationRecord> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn cwd(&self) -> PathBuf {
        PathBuf::from(&self.meta().cwd)
    }

    pub fn first_message_index(&self) -> u64 {
        self.meta().first_message_index
    }

    /// Tells state streams and the global list that something changed.
    pub(super) fn notify_changed(&self) {
        self.changed.send_modify(|v| *v += 1);
        self.shared.notify_changed();
    }

    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Cancelled when the server shuts down; streams end on it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    pub(super) async fn append(&self, message: Message) -> Result<u64, StoreError> {
        Ok(self.log.append(message).await?.idx)
    }

    /// Updates the metadata and persists it; a failure is logged, not fatal.
    pub(super) async fn touch(&self, update: impl FnOnce(&mut ConversationRecord)) {
        let _writing = self.meta_write.lock().await;
        let record = {
            let mut meta = self.meta();
            update(&mut meta);
            meta.updated_at = now_rfc3339();
            meta.clone()
        };
        if let Err(err) = self.shared.store.update_conversation(&record).await {
            tracing::error!(conversation = %self.id, %err, "cannot update conversation metadata");
        }
    }

    pub fn state(&self) -> ConversationState {
        if let Some(remote) = self.remote_state() {
            return remote;
        }
        let meta = self.meta().clone();
        let agent = self.session.agent_status();
        let rt = self.runtime();
        ConversationState {
            conversation_id: self.id.clone(),
            message_count: self.log.len(),
            title: meta.title,
            working_dir: meta.cwd,
            hostname: self.shared.hostname.clone(),
            status: rt.status,
            outstanding_tool_calls: self.session.running_ids(),
            // Until the worker picks it up, the first message is starting, not
            // waiting behind a turn.
            queued_messages: rt
                .queue
                .len()
                .saturating_sub(usize::from(rt.turn.is_none())) as u64,
            first_message_index: meta.first_message_index,
            agent: meta.agent,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            pending_permissions: agent.pending_permissions,
            modes: agent.modes,
            models: agent.models,
            stopping: rt.turn.as_ref().is_some_and(|t| t.stop.is_some()),
            last_activity: agent.last_activity.filter(|_| rt.turn.is_some()),
        }
    }

    pub fn summary(&self) -> ConversationSummary {
        if let Some(remote) = self.remote_summary() {
            return remote;
        }
        let meta = self.meta().clone();
        let status = self.runtime().status;
        ConversationSummary {
            id: self.id.clone(),
            title: meta.title,
            cwd: meta.cwd,
            status,
            message_count: self.log.len(),
            last_error: self.session.last_error(),
            agent: meta.agent,
            pending_permissions: self.session.agent_status().pending_permissions.len() as u64,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
        }
    }

    /// Appends a user message and queues it for the agent. Returns its index and
    /// whether it waits behind a running turn.
    pub async fn chat(self: &Arc<Self>, text: String) -> Result<(u64, bool), EngineError> {
        // A task of its own: a message the log took is queued even if the client
        // hangs up mid-request, so it never sits in the log without its turn.
        let this = self.clone();
        tokio::spawn(async move {
            let _control = this.control.lock().await;
            this.chat_locked(text).await
        })
        .await
        .map_err(|e| EngineError::Failed(format!("the chat did not finish: {e}")))?
    }

    async fn chat_locked(&self, text: String) -> Result<(u64, bool), EngineError> {
        if self.is_followed() {
            return Err(EngineError::Unavailable(
                "another replica runs this conversation's turns".into(),
            ));
        }
        if self.shared.is_closing() {
            return Err(EngineError::Unavailable(
                "the server is shutting down".into(),
            ));
        }
        self.ensure_closed().await?;
        {
            let mut rt = self.runtime();
            rt.appending += 1;
            rt.status = RunStatus::Running;
        }
        let appended = self
            .append(Message::new(MessageType::User, text.clone()))
            .await;
        let accepted = {
            let mut rt = self.runtime();
            rt.appending -= 1;
            match appended {
                Ok(idx) => {
                    let queued = rt.turn.is_some() || !rt.queue.is_empty();
                    rt.queue.push_back(text.clone());
                    Ok((idx, queued))
                }
                Err(err) => {
                    if rt.turn.is_none() && rt.queue.is_empty() && rt.appending == 0 {
                        rt.status = RunStatus::Idle;
                    }
                    Err(err)
                }
            }
        };
        let (idx, queued) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                self.notify_changed();
                return Err(err.into());
            }
        };
        self.touch(|meta| {
            if meta.title.is_empty() {
                meta.title = title_from(&text);
            }
        })
        .await;
        self.notify_changed();
        self.wake.notify_one();
        Ok((idx, queued))
    }

    /// Cancels one running tool call; the turn goes on.
    pub fn cancel_tool(&self, tool_call_id: &str) -> Result<(), EngineError> {
        self.session
            .cancel_tool(tool_call_id)
            .map_err(|e| EngineError::NotFound(e.to_string()))
    }

    /// Stops the running turn: its tool calls and the queued messages.
    pub fn stop_turn(&self, stop: StopInfo) -> Result<(), EngineError> {
        let rt = &mut *self.runtime();
        let Some(turn) = rt.turn.as_mut() else {
            if rt.queue.is_empty() {
                return Err(EngineError::Conflict(
                    "nothing is running in this conversation".into(),
                ));
            }
            // The worker is about to start the first queued message: it will start
            // stopped, so that message still gets its closing `end_of_turn`.
            let dropped = rt.queue.len() - 1;
            rt.queue.truncate(1);
            rt.pending_stop = Some(StopInfo { dropped, ..stop });
            return Ok(());
        };
        if turn.stop.is_none() {
            turn.stop = Some(StopInfo {
                dropped: rt.queue.len(),
                ..stop.clone()
            });
        }
        rt.queue.clear();
        turn.cancel.cancel();
        self.session.stop_tools(stop.status);
        Ok(())
    }

    /// Answers one of the agent's pending permission requests.
    pub async fn answer_permission(
        &self,
        request_id: &str,
        option_id: &str,
    ) -> Result<PermissionAnswer, EngineError> {
        Ok(self
            .session
            .answer_permission(request_id, option_id)
            .await?)
    }

    /// Picks one of the agent's modes or models.
    pub async fn choose(&self, kind: ChoiceKind, id: &str) -> Result<Choices, EngineError> {
        Ok(self.session.choose(kind, id).await?)
    }

    /// Writes to a running tool call's terminal.
    pub async fn input(&self, tool_call_id: &str, data: Vec<u8>) -> Result<(), EngineError> {
        self.session
            .input(tool_call_id, data)
            .await
            .map_err(|err| match err {
                InputError::NotRunning(e) => EngineError::NotFound(e.to_string()),
                InputError::Write(_) => EngineError::Conflict(err.to_string()),
            })
    }

    /// Stops everything, optionally checks out `revision`, appends a restart marker
    /// and starts the agent's context after it; then runs `initial_prompt`, if any.
    pub async fn restart(
        self: &Arc<Self>,
        revision: Option<String>,
        initial_prompt: Option<String>,
    ) -> Result<u64, EngineError> {
        // Like chat, in a task of its own: a restart once begun is finished.
        let this = self.clone();
        tokio::spawn(async move { this.restart_locked(revision, initial_prompt).await })
            .await
            .map_err(|e| EngineError::Failed(format!("the restart did not finish: {e}")))?
    }

    async fn restart_locked(
        &self,
        revision: Option<String>,
        initial_prompt: Option<String>,
    ) -> Result<u64, EngineError> {
        let _control = self.control.lock().await;
        let cwd = self.cwd();
        // Validate before stopping anything: a refused restart changes nothing.
        let target = match revision.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            Some(rev) => Some(git::resolve_clean(&cwd, rev).await?),
            None => None,
        };
        let _ = self.stop_turn(StopInfo {
            reason: "the conversation was restarted".into(),
            dropped: 0,
            status: ToolStatus::Cancelled,
        });
        self.wait_idle(STOP_TIMEOUT).await?;
        let mut marker = Message::new(MessageType::Restart, "Conversation restarted.");
        if let Some(commit) = &target {
            git::checkout(&cwd, &commit.sha).await?;
            marker.content = format!(
                "Conversation restarted at {} ({}).",
                commit.short(),
                commit.subject
            );
            marker.revision = Some(commit.sha.clone());
        }
        self.ensure_closed().await?;
        let idx = self.append(marker).await?;
        self.session.reset();
        self.touch(|meta| meta.first_message_index = idx).await;
        self.forget_snapshots().await;
        self.notify_changed();
        if let Some(prompt) = initial_prompt.filter(|p| !p.trim().is_empty()) {
            self.chat_locked(prompt).await?;
        }
        Ok(idx)
    }

    /// Waits until no turn runs and nothing is queued.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), EngineError> {
        let mut changes = self.subscribe_changes();
        let idle = async {
            loop {
                if self.runtime().status == RunStatus::Idle {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, idle)
            .await
            .map_err(|_| EngineError::Failed("the running turn did not stop in time".into()))
    }

    /// The chat message to suggest rerunning after a restart: the one that started
    /// the current context or, before any chat, the last one of an earlier context.
    pub async fn suggest_reprompt(&self) -> Result<String, EngineError> {
        let store = &self.shared.store;
        let first = self.first_message_index();
        let users = store
            .read_kinds_after(&self.id, first.checked_sub(1), &[MessageType::User])
            .await?;
        let pick = match users.into_iter().next() {
            Some(row) => Some(row.json),
            None => store
                .read_kinds_after(&self.id, None, &[MessageType::User])
                .await?
                .pop()
                .map(|r| r.json),
        };
        Ok(pick
            .and_then(|json| serde_json::from_str::<Message>(&json).ok())
            .map(|m| m.content)
            .unwrap_or_default())
    }
}

/// A title from the first chat message: its first line, at most 60 characters.
fn title_from(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut title: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        title.push('…');
    }
    title
}
