//! One conversation: its log, its metadata, and the worker that runs its turns one
//! after another. Chat, cancel and restart requests land here.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use app::protocol::{
    ConversationState, ConversationSummary, Message, MessageType, RunStatus, ToolStatus,
};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::git;
use crate::hub::Hub;
use crate::log::{Log, now_rfc3339};
use crate::pty::PtyHandle;
use crate::store::{ConversationRecord, StoreError};
use crate::turn::Turn;

/// Longest a restart waits for a stopped turn to wind down (cancel escalates to
/// SIGKILL after 4 s; the PTY drain adds at most 3 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Conversation {
    /// Stable id, also the URL segment.
    pub id: String,
    /// The append-only message log.
    pub log: Log,
    /// Shared services: store, agent, global change signal, settings.
    pub(crate) hub: Arc<Hub>,
    /// Persistent metadata (title, cwd, first_message_index, timestamps).
    meta: Mutex<ConversationRecord>,
    /// What is running now; never held across an `.await`.
    runtime: Mutex<Runtime>,
    /// Bumped whenever the state (apart from `message_count`) changes.
    changed: watch::Sender<u64>,
    /// Wakes the worker when a turn is queued.
    wake: Notify,
    /// Serializes chat and restart so a restart never interleaves with a new turn.
    control: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Runtime {
    status: RunStatus,
    /// Chat messages (already in the log) waiting for the current turn to end.
    queue: VecDeque<String>,
    /// The running turn, if any.
    turn: Option<TurnControl>,
    /// Running tool calls by id, in start order for the state's list.
    tools: HashMap<String, RunningTool>,
    tool_order: Vec<String>,
    /// Whether the last finished tool call failed.
    last_error: bool,
    /// A stop that arrived after a turn was queued but before the worker started it.
    pending_stop: Option<StopInfo>,
    /// The storage error that kept a finished turn from being closed in the log (a
    /// tool result or the `end_of_turn` message is missing). Nothing else is appended
    /// until that turn is closed (`ensure_closed`): a later `end_of_turn` would hide
    /// the open call from crash recovery for good.
    unclosed: Option<String>,
}

struct TurnControl {
    cancel: CancellationToken,
    stop: Option<StopInfo>,
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

pub(crate) struct RunningTool {
    pub handle: Arc<PtyHandle>,
    /// Set when someone stopped the call; its result then carries this status.
    pub stop: Option<ToolStatus>,
}

impl Conversation {
    /// Opens a stored conversation, closing anything a crash left open, and starts its worker.
    pub fn open(record: ConversationRecord, hub: Arc<Hub>) -> Result<Arc<Self>, StoreError> {
        let log = Log::open(&record.id, hub.store.clone())?;
        let conversation = Arc::new(Conversation {
            id: record.id.clone(),
            log,
            hub,
            meta: Mutex::new(record),
            runtime: Mutex::new(Runtime::default()),
            changed: watch::Sender::new(0),
            wake: Notify::new(),
            control: tokio::sync::Mutex::new(()),
        });
        conversation.recover()?;
        tokio::spawn(conversation.clone().worker());
        Ok(conversation)
    }

    fn runtime(&self) -> MutexGuard<'_, Runtime> {
        self.runtime.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn meta(&self) -> MutexGuard<'_, ConversationRecord> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn cwd(&self) -> PathBuf {
        PathBuf::from(&self.meta().cwd)
    }

    pub fn first_message_index(&self) -> u64 {
        self.meta().first_message_index
    }

    /// Tells state streams and the global list that something changed.
    pub(crate) fn notify_changed(&self) {
        self.changed.send_modify(|v| *v += 1);
        self.hub.notify_changed();
    }

    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn append(&self, message: Message) -> Result<u64, StoreError> {
        Ok(self.log.append(message)?.idx)
    }

    /// Appends `messages` together: all of them or none.
    pub fn append_all(&self, messages: Vec<Message>) -> Result<(), StoreError> {
        self.log.append_all(messages).map(drop)
    }

    fn touch(&self, update: impl FnOnce(&mut ConversationRecord)) {
        let record = {
            let mut meta = self.meta();
            update(&mut meta);
            meta.updated_at = now_rfc3339();
            meta.clone()
        };
        if let Err(err) = self.hub.store.update_conversation(&record) {
            tracing::error!(conversation = %self.id, %err, "cannot update conversation metadata");
        }
    }

    pub fn state(&self) -> ConversationState {
        let meta = self.meta().clone();
        let rt = self.runtime();
        ConversationState {
            conversation_id: self.id.clone(),
            message_count: self.log.len(),
            title: meta.title,
            working_dir: meta.cwd,
            hostname: self.hub.hostname.clone(),
            status: rt.status,
            outstanding_tool_calls: rt.tool_order.clone(),
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
        }
    }

    pub fn summary(&self) -> ConversationSummary {
        let meta = self.meta().clone();
        let rt = self.runtime();
        ConversationSummary {
            id: self.id.clone(),
            title: meta.title,
            cwd: meta.cwd,
            status: rt.status,
            message_count: self.log.len(),
            last_error: rt.last_error,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
        }
    }

    /// Appends a chat message; it starts a turn now or when the current one ends.
    pub async fn chat(&self, text: String) -> Result<(u64, bool), AppError> {
        let _control = self.control.lock().await;
        self.chat_locked(text)
    }

    fn chat_locked(&self, text: String) -> Result<(u64, bool), AppError> {
        if self.hub.is_closing() {
            return Err(AppError::Unavailable("the server is shutting down".into()));
        }
        self.ensure_closed()?;
        let idx = self.append(Message::new(MessageType::User, text.clone()))?;
        let queued = {
            let mut rt = self.runtime();
            let queued = rt.status == RunStatus::Running;
            rt.queue.push_back(text.clone());
            rt.status = RunStatus::Running;
            queued
        };
        self.touch(|meta| {
            if meta.title.is_empty() {
                meta.title = title_from(&text);
            }
        });
        self.notify_changed();
        self.wake.notify_one();
        Ok((idx, queued))
    }

    /// Cancels one running tool call; the turn goes on.
    pub fn cancel_tool(&self, tool_call_id: &str) -> Result<(), AppError> {
        let rt = &mut *self.runtime();
        let tool = rt.tools.get_mut(tool_call_id).ok_or_else(|| {
            AppError::NotFound(format!("no running tool call with id {tool_call_id:?}"))
        })?;
        tool.stop.get_or_insert(ToolStatus::Cancelled);
        tool.handle.cancel();
        Ok(())
    }

    /// Stops the running turn: its tool calls and the queued messages.
    pub fn stop_turn(&self, stop: StopInfo) -> Result<(), AppError> {
        let rt = &mut *self.runtime();
        let Some(turn) = rt.turn.as_mut() else {
            if rt.queue.is_empty() {
                return Err(AppError::Conflict(
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
        for tool in rt.tools.values_mut() {
            tool.stop.get_or_insert(stop.status);
            if stop.status == ToolStatus::Interrupted {
                // Shutting down: no time for the polite escalation.
                let _ = tool.handle.signal_group(nix::sys::signal::Signal::SIGKILL);
            } else {
                tool.handle.cancel();
            }
        }
        Ok(())
    }

    /// Writes to a running tool call's terminal.
    pub async fn input(&self, tool_call_id: &str, data: Vec<u8>) -> Result<(), AppError> {
        let handle = {
            let rt = self.runtime();
            let tool = rt.tools.get(tool_call_id).ok_or_else(|| {
                AppError::NotFound(format!("no running tool call with id {tool_call_id:?}"))
            })?;
            tool.handle.clone()
        };
        // A terminal whose program stopped reading blocks writers: keep that off the
        // async workers.
        tokio::task::spawn_blocking(move || handle.write_input(&data))
            .await
            .map_err(|e| AppError::Internal(format!("terminal write failed: {e}")))?
            .map_err(|e| AppError::Conflict(format!("cannot write to the terminal: {e}")))
    }

    /// Stops everything, optionally checks out `revision`, appends a restart marker
    /// and starts the agent's context after it; then runs `initial_prompt`, if any.
    pub async fn restart(
        &self,
        revision: Option<String>,
        initial_prompt: Option<String>,
    ) -> Result<u64, AppError> {
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
        self.ensure_closed()?;
        let idx = self.append(marker)?;
        self.touch(|meta| meta.first_message_index = idx);
        self.notify_changed();
        if let Some(prompt) = initial_prompt.filter(|p| !p.trim().is_empty()) {
            self.chat_locked(prompt)?;
        }
        Ok(idx)
    }

    /// Waits until no turn runs and nothing is queued.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), AppError> {
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
            .map_err(|_| AppError::Internal("the running turn did not stop in time".into()))
    }

    /// Runs queued turns one after another, for as long as the server runs.
    async fn worker(self: Arc<Self>) {
        let shutdown = self.hub.shutdown.clone();
        loop {
            let next = {
                let mut rt = self.runtime();
                match rt.queue.pop_front() {
                    Some(text) => {
                        // Not a child of `shutdown`: stopping a turn is always explicit,
                        // so its tool calls get the right status.
                        let cancel = CancellationToken::new();
                        let stop = rt.pending_stop.take();
                        if stop.is_some() {
                            cancel.cancel();
                        }
                        rt.turn = Some(TurnControl {
                            cancel: cancel.clone(),
                            stop,
                        });
                        rt.status = RunStatus::Running;
                        Some((text, cancel))
                    }
                    None => {
                        rt.status = RunStatus::Idle;
                        None
                    }
                }
            };
            self.notify_changed();
            match next {
                Some((text, cancel)) => self.run_turn(text, cancel).await,
                None => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn run_turn(&self, text: String, cancel: CancellationToken) {
        let result = match self.ensure_closed() {
            Ok(()) => {
                let agent = self.hub.agent.clone();
                let turn = Turn::new(self, cancel);
                agent.run_turn(&turn, &text).await
            }
            Err(err) => Err(err.into()),
        };
        let stop = self.runtime().turn.take().and_then(|t| t.stop);
        let text = match result {
            Ok(text) => text,
            Err(err) => {
                // A storage failure: this turn's tool result may be missing, so it is
                // closed from what the log really holds, never by a bare closing message.
                tracing::error!(conversation = %self.id, %err, "the turn failed");
                self.runtime().unclosed = Some(err.to_string());
                if let Err(err) = self.ensure_closed() {
                    tracing::error!(conversation = %self.id, %err, "cannot close the turn; retrying before anything else is appended");
                }
                self.touch(|_| {});
                return;
            }
        };
        let mut closing = Message::new(MessageType::Agent, text);
        closing.end_of_turn = true;
        if let Some(stop) = stop {
            closing.content = format!("Turn stopped: {}.", stop.reason);
            if stop.dropped > 0 {
                closing.content.push_str(&format!(
                    " {} queued message(s) were not run.",
                    stop.dropped
                ));
            }
        }
        if let Err(err) = self.append(closing) {
            tracing::error!(conversation = %self.id, %err, "cannot close the turn; retrying before anything else is appended");
            self.runtime().unclosed = Some(err.to_string());
        }
        self.touch(|_| {});
    }

    /// Closes the turn a storage failure left open, if any: a result with status
    /// `error` for every tool call without one, an `error` message, then `Turn
    /// failed.`. Fails (and stays pending) while the log still cannot be written.
    fn ensure_closed(&self) -> Result<(), StoreError> {
        let Some(why) = self.runtime().unclosed.clone() else {
            return Ok(());
        };
        self.close_open_turn(&Closing {
            tool_status: ToolStatus::Error,
            tool_content: format!("stopped: the result could not be saved ({why})"),
            error: Some(why),
            turn_content: "Turn failed.".into(),
            count_queued: false,
        })?;
        self.runtime().unclosed = None;
        self.notify_changed();
        Ok(())
    }

    pub(crate) fn register_tool(
        &self,
        id: &str,
        handle: Arc<PtyHandle>,
        already_stopped: Option<ToolStatus>,
    ) {
        {
            let mut rt = self.runtime();
            rt.tools.insert(
                id.to_string(),
                RunningTool {
                    handle,
                    stop: already_stopped,
                },
            );
            rt.tool_order.push(id.to_string());
        }
        self.notify_changed();
    }

    /// How a running tool call was stopped, if someone stopped it.
    pub(crate) fn tool_stop(&self, id: &str) -> Option<ToolStatus> {
        self.runtime().tools.get(id).and_then(|t| t.stop)
    }

    /// Forgets a tool call once its result is in the log.
    pub(crate) fn finish_tool(&self, id: &str, failed: bool) {
        {
            let mut rt = self.runtime();
            rt.tool_order.retain(|t| t != id);
            rt.last_error = failed;
            rt.tools.remove(id);
        }
        self.notify_changed();
    }

    /// After a crash or kill: closes tool calls and turns that never ended, so no
    /// client waits forever for a result that will not come.
    fn recover(&self) -> Result<(), StoreError> {
        let closed = self.close_open_turn(&Closing {
            tool_status: ToolStatus::Interrupted,
            tool_content: "Interrupted: the server stopped while this tool call was running."
                .into(),
            error: None,
            turn_content: "Turn interrupted: the server stopped before it finished.".into(),
            count_queued: true,
        })?;
        if closed {
            tracing::info!(conversation = %self.id, "closed a turn left open by an earlier run");
        }
        Ok(())
    }

    /// Appends what the log needs to close its last turn, if that turn is open: a
    /// result for every tool call without one, then the `end_of_turn` message.
    /// Returns whether the turn was open.
    fn close_open_turn(&self, how: &Closing) -> Result<bool, StoreError> {
        let store = &self.hub.store;
        let last_end = store.last_end_of_turn(&self.id)?;
        let rows = store.read_kinds_after(
            &self.id,
            last_end,
            &[MessageType::User, MessageType::Agent, MessageType::Tool],
        )?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut open: Vec<String> = Vec::new();
        let mut users: usize = 0;
        for row in rows {
            let message: Message = serde_json::from_str(&row.json)
                .map_err(|e| StoreError::Corrupt(format!("message {}: {e}", row.idx)))?;
            match message.kind {
                MessageType::User => users += 1,
                MessageType::Agent => {
                    open.extend(message.tool_calls.into_iter().map(|c| c.tool_call_id))
                }
                MessageType::Tool => open.retain(|id| Some(id) != message.tool_call_id.as_ref()),
                _ => {}
            }
        }
        let interrupted = !open.is_empty();
        for id in open {
            let mut result = Message::new(MessageType::Tool, how.tool_content.clone());
            result.tool_call_id = Some(id);
            result.tool_name = Some("bash".into());
            result.status = Some(how.tool_status);
            result.tool_error = Some(true);
            result.end_time = Some(now_rfc3339());
            self.log.append(result)?;
        }
        if let Some(error) = &how.error {
            self.log
                .append(Message::new(MessageType::Error, error.clone()))?;
        }
        let mut closing = Message::new(MessageType::Agent, how.turn_content.clone());
        // The first user message was this turn's; any others were queued behind it.
        let queued = users.saturating_sub(1);
        if how.count_queued && queued > 0 {
            closing
                .content
                .push_str(&format!(" {queued} queued message(s) were not run."));
        }
        closing.end_of_turn = true;
        self.log.append(closing)?;
        self.runtime().last_error |= interrupted;
        Ok(true)
    }
}

/// What `close_open_turn` writes.
struct Closing {
    tool_status: ToolStatus,
    tool_content: String,
    /// An `error` message before the closing one.
    error: Option<String>,
    turn_content: String,
    /// Whether the closing text counts the user messages queued behind the turn
    /// (they are dropped after a crash, but still run after a storage failure).
    count_queued: bool,
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
