//! Agents decide what a turn does. They never touch SQL or SSE: everything they say
//! or run goes through the [`Turn`] they are handed, which appends to the log and
//! runs tools.
//!
//! To add an agent: implement [`Agent`] in a file of this folder and register it in
//! [`Agents::builtin`]. `shell` is the offline default: each chat message is a bash
//! command.

mod session;
mod shell;
mod turn;

use std::collections::BTreeMap;
use std::sync::Arc;

use app::protocol::AgentInfo;
use async_trait::async_trait;

pub use session::{InputError, Session};

use crate::log::Log;
use crate::tools::Toolbox;
pub use shell::ShellAgent;
pub use turn::{Turn, TurnError};

/// The agent every conversation gets unless it names another.
pub const DEFAULT_AGENT: &str = "shell";

#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// The name conversations choose it by.
    fn name(&self) -> &str;

    /// One line for people choosing an agent.
    fn description(&self) -> &str;

    /// Runs one turn for the chat message `message` and returns the closing text,
    /// which the conversation appends as the `end_of_turn` message.
    async fn run_turn(&self, turn: &Turn, message: &str) -> Result<String, TurnError>;
}

/// The agents this server offers, by name, and the tools they share.
pub struct Agents {
    by_name: BTreeMap<String, Arc<dyn Agent>>,
    /// Limits and environment policy for every tool any agent runs.
    toolbox: Arc<Toolbox>,
}

impl Agents {
    /// The agents built into Tether, running their tools with `toolbox`.
    pub fn builtin(toolbox: Arc<Toolbox>) -> Self {
        let mut agents = Agents {
            by_name: BTreeMap::new(),
            toolbox,
        };
        agents.add(Arc::new(ShellAgent));
        agents
    }

    /// A conversation's seat at the agent named `agent` (see `resolve`), writing
    /// to `log`; `on_change` is called when its running tool calls change.
    pub fn session(
        &self,
        agent: &str,
        log: Arc<Log>,
        on_change: impl Fn() + Send + Sync + 'static,
    ) -> Session {
        Session::new(self.resolve(agent), self.toolbox.clone(), log, on_change)
    }

    pub fn add(&mut self, agent: Arc<dyn Agent>) {
        self.by_name.insert(agent.name().to_string(), agent);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Agent>> {
        self.by_name.get(name).cloned()
    }

    /// Every agent's name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    /// What `GET /api/agents` lists.
    pub fn list(&self) -> Vec<AgentInfo> {
        self.by_name
            .values()
            .map(|agent| AgentInfo {
                name: agent.name().to_string(),
                description: agent.description().to_string(),
                default: agent.name() == DEFAULT_AGENT,
                available: true,
                problem: None,
                command: None,
            })
            .collect()
    }
}

impl Agents {
    /// The agent named `name`, or a stand-in that fails every turn with a clear
    /// error, for a stored conversation whose agent this server no longer offers.
    pub fn resolve(&self, name: &str) -> Arc<dyn Agent> {
        self.get(name).unwrap_or_else(|| {
            Arc::new(Unavailable {
                name: name.to_string(),
            })
        })
    }
}

/// Stands in for an agent this server does not offer.
struct Unavailable {
    name: String,
}

#[async_trait]
impl Agent for Unavailable {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "not offered by this server"
    }

    async fn run_turn(&self, turn: &Turn, _message: &str) -> Result<String, TurnError> {
        let why = format!(
            "the agent {:?} is not offered by this server; start a new conversation with one it offers",
            self.name
        );
        turn.append(app::protocol::Message::new(
            app::protocol::MessageType::Error,
            why,
        ))
        .await?;
        Ok("Turn failed.".into())
    }
}
