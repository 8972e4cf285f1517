//! Tools Tether runs itself on an agent's behalf, and what they share: the PTY
//! runner, the registry of running calls (cancel, input), the environment policy
//! and the limit on how many run at once.
//!
//! A tool call always ends with exactly one `tool` result message in the log,
//! whatever happens (`call::run`); a tool only has to do its work (`Tool::run`).

pub mod bash;
pub mod call;
pub mod chunk;
pub mod env;
pub mod ledger;
pub mod pty;
pub mod running;
pub mod slots;

use std::path::PathBuf;
use std::sync::Arc;

use app::protocol::ToolStatus;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use bash::Bash;
pub use call::Call;
pub use env::EnvPolicy;
pub use ledger::ProcessLedger;
pub use running::{Control, RunningTools};
pub use slots::ToolSlots;

use crate::log::Log;

/// How a tool call ended.
#[derive(Clone, Debug)]
pub struct ToolOutcome {
    pub status: ToolStatus,
    pub exit_code: Option<i32>,
    /// A few words: "exit code 2", "killed by SIGKILL".
    pub summary: String,
}

impl ToolOutcome {
    pub fn error(summary: impl Into<String>) -> Self {
        ToolOutcome {
            status: ToolStatus::Error,
            exit_code: None,
            summary: summary.into(),
        }
    }
}

/// Something Tether runs for an agent: a command in a terminal today; anything
/// that streams output into its call and can be stopped fits.
#[async_trait]
pub trait Tool: Send + Sync {
    /// The name the log shows (`ToolCall::name`, `tool_name`).
    fn name(&self) -> &str;
    /// The input as the log shows it.
    fn input(&self) -> serde_json::Value;
    /// Does the work, streaming output through `call`, until the tool ends or is
    /// stopped. The result message is written by the caller.
    async fn run(&self, call: &mut Call<'_>) -> ToolOutcome;
}

/// What every conversation's tool calls share.
pub struct Toolbox {
    /// How many tool calls may run at once, across conversations.
    pub slots: Arc<ToolSlots>,
    /// What tool processes must not inherit from the server's environment.
    pub env: EnvPolicy,
    /// Agent processes to end on the next start if this run dies without cleaning up.
    pub ledger: ProcessLedger,
}

impl Toolbox {
    /// At most `max_running` calls at once; `env_deny` names variables (`NAME` or
    /// `PREFIX*`) no tool process inherits.
    pub fn new(max_running: usize, env_deny: &[String]) -> Arc<Self> {
        Self::with_ledger(max_running, env_deny, ProcessLedger::disabled())
    }

    /// Like `new`, keeping a list of agent processes in `ledger`.
    pub fn with_ledger(
        max_running: usize,
        env_deny: &[String],
        ledger: ProcessLedger,
    ) -> Arc<Self> {
        Arc::new(Toolbox {
            slots: ToolSlots::new(max_running),
            env: EnvPolicy::from_patterns(env_deny),
            ledger,
        })
    }
}

/// Where and how one conversation runs its tools during one turn.
#[derive(Clone)]
pub struct ToolContext {
    /// The conversation's log: output and results go there.
    pub log: Arc<Log>,
    /// The conversation's running calls, for cancel and input.
    pub running: Arc<RunningTools>,
    /// Shared limits and policy.
    pub toolbox: Arc<Toolbox>,
    /// The conversation's working directory.
    pub cwd: PathBuf,
    /// Cancelled when the turn is stopped.
    pub cancel: CancellationToken,
}
