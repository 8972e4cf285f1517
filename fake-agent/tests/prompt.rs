//! The directives as a client sees them on the wire.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use agent_client_protocol::v1::schema::{
    CancelNotification, PermissionOptionKind, SessionUpdate, StopReason, ToolCallStatus,
};
use common::{Answers, Log, prompt, with_agent};
use serde_json::json;

#[tokio::test]
async fn say_streams_words_that_add_up_to_the_text() {
    let log = Log::default();
    let stop = with_agent(Answers::default(), log.clone(), async |cx, session| {
        Ok(
            prompt(&cx, &session, "say hello  brave new world\nthink hmm yes")
                .await?
                .stop_reason,
        )
    })
    .await
    .unwrap();
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(log.said(), "hello  brave new world");
    let updates = log.updates_json();
    let chunks = updates
        .iter()
        .filter(|u| u["sessionUpdate"] == "agent_message_chunk")
        .count();
    assert_eq!(
        chunks, 5,
        "one chunk a word, the double space its own: {updates:?}"
    );
    assert!(
        updates
            .iter()
            .any(|u| u["sessionUpdate"] == "agent_thought_chunk")
    );
}

#[tokio::test]
async fn ask_offers_options_whose_ids_are_not_their_kinds() {
    let log = Log::default();
    let answers = Answers {
        permission: Some(PermissionOptionKind::AllowOnce),
        ..Answers::default()
    };
    with_agent(answers, log.clone(), async |cx, session| {
        prompt(&cx, &session, "ask ls -la").await
    })
    .await
    .unwrap();
    let request = log.params("session/request_permission").unwrap();
    let options: Vec<_> = request["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["optionId"].as_str().unwrap(), o["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        options,
        [
            ("yes", "allow_once"),
            ("always", "allow_always"),
            ("no", "reject_once")
        ]
    );
    assert_eq!(request["toolCall"]["toolCallId"], "tc-1");
    let first = log.updates.lock().unwrap()[0].clone();
    let SessionUpdate::ToolCall(call) = first else {
        panic!("not a tool call: {first:?}")
    };
    assert_eq!(call.status, ToolCallStatus::Pending);
    let updates = log.updates_json();
    assert!(
        updates
            .iter()
            .any(|u| u["sessionUpdate"] == "tool_call_update"
                && u["status"] == "completed"
                && u["content"][0]["content"]["text"] == "approved")
    );
    assert_eq!(log.said(), "allowed ls -la");
}

#[tokio::test]
async fn a_rejected_ask_run_runs_nothing() {
    let log = Log::default();
    let answers = Answers {
        permission: Some(PermissionOptionKind::RejectOnce),
        ..Answers::default()
    };
    with_agent(answers, log.clone(), async |cx, session| {
        prompt(&cx, &session, "ask-run rm -rf x").await
    })
    .await
    .unwrap();
    assert_eq!(log.said(), "rejected rm -rf x");
    assert!(log.params("terminal/create").is_none());
}

#[tokio::test]
async fn run_uses_the_clients_terminal_as_claudes_adapter_does() {
    let log = Log::default();
    with_agent(Answers::default(), log.clone(), async |cx, session| {
        prompt(&cx, &session, "run echo hi && ls").await
    })
    .await
    .unwrap();
    let create = log.params("terminal/create").unwrap();
    assert_eq!(create["command"], "echo hi && ls");
    assert_eq!(create["outputByteLimit"], 32000);
    assert!(
        create.get("args").is_none() && create["cwd"].is_null(),
        "{create}"
    );
    assert_eq!(
        log.methods(),
        [
            "terminal/create",
            "terminal/wait_for_exit",
            "terminal/output",
            "terminal/release"
        ]
    );
    let updates = log.updates_json();
    assert!(
        updates
            .iter()
            .any(|u| u["content"][0] == json!({"type": "terminal", "terminalId": "term-1"}))
    );
    assert!(updates.iter().any(|u| u["status"] == "completed"));
    assert_eq!(log.said(), "exit 0: hello");
}

#[tokio::test]
async fn kill_run_kills_before_waiting() {
    let log = Log::default();
    with_agent(Answers::default(), log.clone(), async |cx, session| {
        prompt(&cx, &session, "kill-run sleep 100").await
    })
    .await
    .unwrap();
    assert_eq!(
        log.methods()[..3],
        ["terminal/create", "terminal/kill", "terminal/wait_for_exit"]
    );
}

#[tokio::test]
async fn cancel_ends_a_sleep_at_once() {
    let started = Instant::now();
    let stop = with_agent(Answers::default(), Log::default(), async |cx, session| {
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // `session/cancel` is a notification: there is nothing to await.
            cx.send_notification(CancelNotification::new(session.clone()))
        };
        let (response, sent) =
            tokio::join!(prompt(&cx, &session, "sleep 30\nsay too late"), cancel);
        sent?;
        Ok(response?.stop_reason)
    })
    .await
    .unwrap();
    assert_eq!(stop, StopReason::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn cancel_while_a_terminal_runs_releases_it_without_killing() {
    let log = Log::default();
    let answers = Answers {
        hold_wait: true,
        ..Answers::default()
    };
    let stop = with_agent(answers, log.clone(), async |cx, session| {
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cx.send_notification(CancelNotification::new(session.clone()))
        };
        let (response, sent) = tokio::join!(prompt(&cx, &session, "run sleep 100"), cancel);
        sent?;
        Ok(response?.stop_reason)
    })
    .await
    .unwrap();
    assert_eq!(stop, StopReason::Cancelled);
    let methods = log.methods();
    assert!(
        methods.contains(&"terminal/release".to_string()),
        "{methods:?}"
    );
    assert!(!methods.contains(&"terminal/kill".to_string()));
}

#[tokio::test]
async fn cancel_while_asking_ends_the_turn() {
    let answers = Answers {
        permission: None,
        ..Answers::default()
    };
    let stop = with_agent(answers, Log::default(), async |cx, session| {
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cx.send_notification(CancelNotification::new(session.clone()))
        };
        let (response, sent) = tokio::join!(prompt(&cx, &session, "ask deploy\nsay no"), cancel);
        sent?;
        Ok(response?.stop_reason)
    })
    .await
    .unwrap();
    assert_eq!(stop, StopReason::Cancelled);
}

#[tokio::test]
async fn cancel_kills_a_command_the_agent_runs_itself() {
    let started = Instant::now();
    let stop = with_agent(Answers::default(), Log::default(), async |cx, session| {
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cx.send_notification(CancelNotification::new(session.clone()))
        };
        let script = "self-run echo started; sleep 30";
        let (response, sent) = tokio::join!(prompt(&cx, &session, script), cancel);
        sent?;
        Ok(response?.stop_reason)
    })
    .await
    .unwrap();
    assert_eq!(stop, StopReason::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn hang_ignores_cancel() {
    let answered = with_agent(Answers::default(), Log::default(), async |cx, session| {
        let pending = prompt(&cx, &session, "say stuck\nhang");
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cx.send_notification(CancelNotification::new(session.clone()))
        };
        let (answer, sent) = tokio::join!(
            tokio::time::timeout(Duration::from_millis(800), pending),
            cancel
        );
        sent?;
        Ok(answer.is_ok())
    })
    .await
    .unwrap();
    assert!(!answered, "a hanging prompt was answered");
}
