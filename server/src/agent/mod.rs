//! Agents decide what a turn does. They never touch SQL or SSE: everything they say
//! or run goes through the [`Turn`] they are handed, which appends to the log and
//! runs tools.
//!
//! To add an agent: implement [`Agent`] in a file of this folder and register it in
//! [`Agents::builtin`]. `shell` is the offline default: each chat message is a bash
//! command.

pub mod acp;
mod instance;
mod session;
mod shell;
mod turn;

use std::collections::BTreeMap;
use std::sync::Arc;

use app::protocol::AgentInfo;
use async_trait::async_trait;

pub use instance::{AgentStatus, Attachment, ChoiceKind, ControlError, Instance, TurnEnd};
pub use session::{InputError, Session};

use crate::log::Log;
use crate::tools::{RunningTools, Toolbox};
pub use shell::ShellAgent;
pub use turn::{Turn, TurnError};

/// The agent every conversation gets unless it names another.
pub const DEFAULT_AGENT: &str = "shell";

/// A kind of agent, offered by name. Each conversation gets its own [`Instance`],
/// where whatever lives across its turns (an agent process, its session) is kept.
pub trait Agent: Send + Sync + 'static {
    /// The name conversations choose it by.
    fn name(&self) -> &str;

    /// One line for people choosing an agent.
    fn description(&self) -> &str;

    /// Why it cannot run here, if it cannot (e.g. its command is not installed).
    fn problem(&self) -> Option<String> {
        None
    }

    /// The command line that starts it, for agents that are programs.
    fn command(&self) -> Option<String> {
        None
    }

    /// One conversation's instance of this agent.
    fn open(&self, attachment: Attachment) -> Arc<dyn Instance>;
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
        let on_change: Arc<dyn Fn() + Send + Sync> = Arc::new(on_change);
        let running = Arc::new(RunningTools::new({
            let on_change = on_change.clone();
            move || on_change()
        }));
        let agent = self.resolve(agent);
        let instance = agent.open(Attachment {
            log: log.clone(),
            running: running.clone(),
            toolbox: self.toolbox.clone(),
            on_change,
        });
        Session::new(
            agent.name().to_string(),
            instance,
            running,
            self.toolbox.clone(),
            log,
        )
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
            .map(|agent| {
                let problem = agent.problem();
                AgentInfo {
                    name: agent.name().to_string(),
                    description: agent.description().to_string(),
                    default: agent.name() == DEFAULT_AGENT,
                    available: problem.is_none(),
                    problem,
                    command: agent.command(),
                }
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

impl Agent for Unavailable {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "not offered by this server"
    }

    fn problem(&self) -> Option<String> {
        Some(format!(
            "the agent {:?} is not offered by this server; start a new conversation with one it offers",
            self.name
        ))
    }

    fn open(&self, _attachment: Attachment) -> Arc<dyn Instance> {
        Arc::new(Refuse {
            why: self.problem().unwrap_or_default(),
        })
    }
}

/// Fails every turn with a clear error.
struct Refuse {
    why: String,
}

#[async_trait]
impl Instance for Refuse {
    async fn run_turn(&self, turn: &Turn, _message: &str) -> Result<TurnEnd, TurnError> {
        turn.append(app::protocol::Message::new(
            app::protocol::MessageType::Error,
            self.why.clone(),
        ))
        .await?;
        Ok(TurnEnd::text("The turn was not run."))
    }
}
