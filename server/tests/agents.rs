//! Agents are chosen per conversation: `GET /api/agents`, the `agent` field on
//! create, and each conversation's worker running its own agent.

mod common;

use std::sync::Arc;
use std::time::Duration;

use app::protocol::{Message, MessageType};
use async_trait::async_trait;
use common::{StatusCode, TestServer, assert_error, open_engine_store};
use serde_json::json;
use server::agent::{Agent, Agents, Attachment, Instance, Turn, TurnEnd, TurnError};
use server::engine::{Engine, EngineSettings};
use server::tools::Toolbox;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_server_lists_its_agents_and_creates_with_the_chosen_one() {
    let server = TestServer::in_process();
    let (status, agents) = server.get("agents").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agents[0]["name"], "shell");
    assert_eq!(agents[0]["default"], true);
    assert!(
        agents[0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{agents}"
    );

    let dir = server.work_dir("w");
    let cwd = dir.to_str().expect("utf-8");
    for agent in [json!("shell"), json!(" shell "), json!(""), json!(null)] {
        let (status, created) = server
            .post("conversations", json!({ "cwd": cwd, "agent": agent }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "agent {agent}: {created}");
        let id = created["id"].as_str().expect("an id");
        assert_eq!(server.state(id).await.agent, "shell", "agent {agent}");
    }
}

#[tokio::test]
async fn an_unknown_agent_is_refused_with_the_known_ones_and_creates_nothing() {
    let server = TestServer::in_process();
    let dir = server.work_dir("w");
    let refused = server
        .post(
            "conversations",
            json!({ "cwd": dir.to_str().expect("utf-8"), "agent": "nonesuch" }),
        )
        .await;
    assert_error("unknown agent", &refused, StatusCode::BAD_REQUEST);
    let message = refused.1["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("nonesuch") && message.contains("shell"),
        "{message}"
    );
    assert!(server.summaries().await.is_empty(), "nothing was created");
}

/// Answers every message with its text reversed, without running anything.
struct Mirror;

impl Agent for Mirror {
    fn name(&self) -> &str {
        "mirror"
    }

    fn description(&self) -> &str {
        "Says each message back, reversed"
    }

    fn open(&self, _attachment: Attachment) -> Arc<dyn Instance> {
        Arc::new(Mirror)
    }
}

#[async_trait]
impl Instance for Mirror {
    async fn run_turn(&self, turn: &Turn, message: &str) -> Result<TurnEnd, TurnError> {
        // The context holds this turn's own user message.
        let context = turn.context().await?;
        assert_eq!(
            context.last().map(|m| m.content.as_str()),
            Some(message),
            "the context ends with the message being answered"
        );
        let reversed: String = message.chars().rev().collect();
        turn.append(Message::new(MessageType::Agent, reversed))
            .await?;
        Ok(TurnEnd::text("Mirrored."))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_conversation_runs_its_own_agent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = open_engine_store(dir.path()).await;
    let mut agents = Agents::builtin(Toolbox::new(16, &["TETHER_*".into()]));
    agents.add(Arc::new(Mirror));
    let settings = EngineSettings {
        max_conversations: 16,
        snapshot_limit: server::changes::DEFAULT_SNAPSHOT_LIMIT,
        sweep_every: std::time::Duration::from_secs(5),
    };
    let engine = Engine::open(store, agents, settings, CancellationToken::new())
        .await
        .expect("open the engine");
    let names: Vec<String> = engine.agents().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["mirror", "shell"]);

    let shell = engine
        .create(dir.path(), None, None)
        .await
        .expect("a shell conversation");
    let mirror = engine
        .create(dir.path(), None, Some("mirror".into()))
        .await
        .expect("a mirror conversation");
    for conversation in [&shell, &mirror] {
        conversation.chat("echo abc".into()).await.expect("chat");
    }
    for conversation in [&shell, &mirror] {
        conversation
            .wait_idle(Duration::from_secs(30))
            .await
            .expect("the turn ends");
    }
    let read = |c: &Arc<server::engine::Conversation>| {
        let c = c.clone();
        async move {
            c.log
                .read(0, u64::MAX, 100)
                .await
                .expect("read")
                .iter()
                .map(|e| e.message().expect("a message"))
                .collect::<Vec<_>>()
        }
    };
    let shell_log = read(&shell).await;
    assert!(
        shell_log
            .iter()
            .any(|m| m.kind == MessageType::Tool && m.tool_result.as_deref() == Some("abc\r\n")),
        "the shell ran the command: {shell_log:#?}"
    );
    let mirror_log = read(&mirror).await;
    let texts: Vec<&str> = mirror_log.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["echo abc", "cba ohce", "Mirrored."]);
    assert!(mirror_log.iter().all(|m| m.kind != MessageType::Tool));
    assert_eq!(mirror.state().agent, "mirror");
}
