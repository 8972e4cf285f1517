//! One conversation's seat at its agent: the agent that runs its turns and the
//! tool calls running for it. The engine steers tools (cancel, input, stop) only
//! through here.

use std::path::PathBuf;
use std::sync::Arc;

use app::protocol::{Choices, PermissionAnswer, ToolStatus};
use tokio_util::sync::CancellationToken;

use super::{AgentStatus, ChoiceKind, ControlError, Instance, Turn, TurnEnd, TurnError};
use crate::log::Log;
use crate::tools::running::NotRunning;
use crate::tools::{RunningTools, ToolContext, Toolbox};

/// Typing into a tool call failed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    NotRunning(#[from] NotRunning),
    #[error("cannot write to the terminal: {0}")]
    Write(std::io::Error),
}

pub struct Session {
    /// The name of the agent that runs this conversation's turns.
    agent: String,
    /// The conversation's instance of that agent.
    instance: Arc<dyn Instance>,
    /// The tool calls running for this conversation now.
    running: Arc<RunningTools>,
    /// Limits and policy shared with every conversation.
    toolbox: Arc<Toolbox>,
    /// The conversation's log, where turns write.
    log: Arc<Log>,
}

impl Session {
    pub fn new(
        agent: String,
        instance: Arc<dyn Instance>,
        running: Arc<RunningTools>,
        toolbox: Arc<Toolbox>,
        log: Arc<Log>,
    ) -> Self {
        Session {
            agent,
            instance,
            running,
            toolbox,
            log,
        }
    }

    pub fn agent_name(&self) -> &str {
        &self.agent
    }

    /// Pending permission requests, modes and models.
    pub fn agent_status(&self) -> AgentStatus {
        self.instance.status()
    }

    pub async fn answer_permission(
        &self,
        request_id: &str,
        option_id: &str,
    ) -> Result<PermissionAnswer, ControlError> {
        self.instance.answer_permission(request_id, option_id).await
    }

    pub async fn choose(&self, kind: ChoiceKind, id: &str) -> Result<Choices, ControlError> {
        self.instance.choose(kind, id).await
    }

    /// The conversation restarted: the agent's next turn starts a fresh session.
    pub fn reset(&self) {
        self.instance.reset();
    }

    /// The server stops: ends the agent's process, if it has one.
    pub async fn shutdown(&self) {
        self.instance.shutdown().await;
    }

    /// A new turn begins: call before the turn can be stopped.
    pub fn begin_turn(&self) {
        self.running.begin_turn();
    }

    /// Runs one turn for `message` to its end; returns the closing text.
    pub async fn run_turn(
        &self,
        cwd: PathBuf,
        first_message_index: u64,
        cancel: CancellationToken,
        message: &str,
    ) -> Result<TurnEnd, TurnError> {
        let tools = ToolContext {
            log: self.log.clone(),
            running: self.running.clone(),
            toolbox: self.toolbox.clone(),
            cwd,
            cancel,
        };
        let turn = Turn::new(tools, first_message_index);
        self.instance.run_turn(&turn, message).await
    }

    /// Cancels one running tool call; the turn goes on.
    pub fn cancel_tool(&self, id: &str) -> Result<(), NotRunning> {
        self.running.cancel(id)
    }

    /// Stops every running tool call, and any that starts before the turn ends.
    pub fn stop_tools(&self, status: ToolStatus) {
        self.running.stop_all(status);
    }

    /// Types `data` into a running tool call's terminal.
    pub async fn input(&self, id: &str, data: Vec<u8>) -> Result<(), InputError> {
        let control = self.running.control(id)?;
        // A terminal whose program stopped reading blocks writers: keep that off the
        // async workers.
        tokio::task::spawn_blocking(move || control.write_input(&data))
            .await
            .map_err(|e| InputError::Write(std::io::Error::other(e.to_string())))?
            .map_err(InputError::Write)
    }

    /// Ids of the running tool calls, in start order.
    pub fn running_ids(&self) -> Vec<String> {
        self.running.ids()
    }

    /// Whether the last finished tool call failed.
    pub fn last_error(&self) -> bool {
        self.running.last_error()
    }

    /// Recovery closed tool calls as failed.
    pub fn mark_failed(&self) {
        self.running.mark_failed();
    }
}
