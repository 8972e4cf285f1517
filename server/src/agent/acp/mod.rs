//! Coding agents that speak the Agent Client Protocol (Claude Code, Codex, Gemini
//! CLI, opencode, …), driven as subprocesses through the protocol's own SDK.
//!
//! Data flows one way: the agent's process → `link` (the SDK connection) → `pump`
//! (one ordered inbox) → the conversation's log. What the agent asks of Tether
//! (files, terminals, permission) is served by the pump in that same order.

mod book;
mod files;
mod instance;
mod link;
mod process;
mod pump;
pub mod spec;
mod state;
mod terminals;

use std::sync::Arc;

pub use spec::AgentSpec;

use super::{Agent, Attachment, Instance};

/// An ACP agent offered by name.
pub struct AcpAgent {
    spec: Arc<AgentSpec>,
}

impl AcpAgent {
    pub fn new(spec: AgentSpec) -> Self {
        AcpAgent {
            spec: Arc::new(spec),
        }
    }
}

impl Agent for AcpAgent {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn description(&self) -> &str {
        &self.spec.description
    }

    fn problem(&self) -> Option<String> {
        self.spec.problem()
    }

    fn command(&self) -> Option<String> {
        Some(shell_words::join(&self.spec.argv))
    }

    fn open(&self, attachment: Attachment) -> Arc<dyn Instance> {
        Arc::new(instance::AcpInstance::new(self.spec.clone(), attachment))
    }
}
