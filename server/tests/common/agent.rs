//! The scriptable fake ACP agent (`fake-agent/`), for tests that drive a real ACP
//! agent process through Tether.

use std::path::PathBuf;
use std::sync::OnceLock;

use app::protocol::{Message, MessageType};

use super::TestServer;

/// The fake agent's binary, built next to the test binaries (by `scripts/test.sh`,
/// or here on first use).
pub fn fake_agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/<test> → target/<profile>/fake-acp-agent
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the target directory");
        let bin = profile_dir.join("fake-acp-agent");
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "-p", "tether-fake-agent"])
                .status()
                .expect("run cargo build for the fake agent");
            assert!(status.success(), "building the fake agent failed");
        }
        assert!(bin.exists(), "no fake agent at {}", bin.display());
        bin
    })
    .clone()
}

/// `--agent fake=<the fake agent> <flags>`.
pub fn fake_agent_flag(flags: &str) -> String {
    format!("fake={} {flags}", fake_agent_bin().display())
}

/// The concatenated agent replies of a log.
pub fn reply_text<M: std::borrow::Borrow<Message>>(messages: &[M]) -> String {
    messages
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter(|m| m.kind == MessageType::AgentText)
        .map(|m| m.content.as_str())
        .collect()
}

impl TestServer {
    /// An in-process server offering the fake agent (started with `flags`).
    pub fn with_fake_agent(flags: &str) -> Self {
        let flag = fake_agent_flag(flags);
        TestServer::in_process_with(&["--agent", &flag])
    }

    /// A conversation run by the fake agent, in a fresh work directory.
    pub async fn create_fake(&self) -> String {
        let dir = self.work_dir("work");
        let (status, body) = self
            .post(
                "conversations",
                serde_json::json!({ "cwd": dir.to_str().expect("utf-8"), "agent": "fake" }),
            )
            .await;
        assert_eq!(status, super::StatusCode::CREATED, "create: {body}");
        body["id"].as_str().expect("an id").to_string()
    }
}
