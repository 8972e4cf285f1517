//! Startup flags, sessions, the agent-side commands, files, and misbehaviour.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    InitializeRequest, LoadSessionRequest, SetSessionModeRequest, StopReason,
};
use agent_client_protocol::{ByteStreams, Error};
use common::{Answers, Log, agent_command, prompt, with_agent, with_agent_args};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

#[tokio::test]
async fn initialize_names_the_agent_and_load_is_opt_in() {
    for (args, load) in [(&[][..], false), (&["--load"][..], true)] {
        let mut child = agent_command(args).spawn().unwrap();
        let transport = ByteStreams::new(
            child.stdin.take().unwrap().compat_write(),
            child.stdout.take().unwrap().compat(),
        );
        // The connection future is `Send`, so it can live in a task of its own.
        let task = tokio::spawn(
            common::client(Answers::default(), Log::default()).connect_with(
                transport,
                async move |cx| {
                    let init = cx
                        .send_request(InitializeRequest::new(ProtocolVersion::V1))
                        .block_task()
                        .await?;
                    assert_eq!(init.protocol_version, ProtocolVersion::V1);
                    assert_eq!(init.agent_info.unwrap().name, "fake-acp-agent");
                    assert_eq!(init.agent_capabilities.load_session, load);
                    let loaded = cx
                        .send_request(LoadSessionRequest::new("never-seen", std::env::temp_dir()))
                        .block_task()
                        .await;
                    assert_eq!(loaded.is_ok(), load, "{loaded:?}");
                    Ok(())
                },
            ),
        );
        task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn set_mode_announces_the_new_mode() {
    let log = Log::default();
    with_agent(Answers::default(), log.clone(), async |cx, session| {
        let request = SetSessionModeRequest::new(session.clone(), "auto");
        cx.send_request(request).block_task().await?;
        let bad = cx
            .send_request(SetSessionModeRequest::new(session, "yolo"))
            .block_task()
            .await;
        assert!(bad.is_err());
        Ok(())
    })
    .await
    .unwrap();
    let updates = log.updates_json();
    assert_eq!(updates[0]["sessionUpdate"], "current_mode_update");
    assert_eq!(updates[0]["currentModeId"], "auto");
}

#[tokio::test]
async fn self_run_sends_cumulative_output_and_meta_run_sends_deltas() {
    let log = Log::default();
    with_agent(Answers::default(), log.clone(), async |cx, session| {
        prompt(&cx, &session, "self-run echo a; echo b").await
    })
    .await
    .unwrap();
    let texts: Vec<_> = log
        .updates_json()
        .iter()
        .filter(|u| u["sessionUpdate"] == "tool_call_update")
        .map(|u| {
            u["content"][0]["content"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, ["a\n", "a\nb\n", "a\nb\n"]);
    assert_eq!(log.said(), "exit 0: a\nb");

    let log = Log::default();
    let answers = Answers {
        meta_terminal_output: true,
        ..Answers::default()
    };
    with_agent(answers, log.clone(), async |cx, session| {
        prompt(&cx, &session, "meta-run echo a; exit 4").await
    })
    .await
    .unwrap();
    let updates = log.updates_json();
    assert_eq!(updates[0]["_meta"]["terminal_info"]["terminal_id"], "tc-1");
    assert_eq!(
        updates[0]["content"][0],
        json!({"type": "terminal", "terminalId": "tc-1"})
    );
    assert_eq!(updates[1]["_meta"]["terminal_output"]["data"], "a\n");
    assert_eq!(updates[2]["_meta"]["terminal_exit"]["exit_code"], 4);
}

#[tokio::test]
async fn write_sends_a_diff_and_read_reports_the_clients_error() {
    let log = Log::default();
    with_agent(Answers::default(), log.clone(), async |cx, session| {
        prompt(&cx, &session, "write notes.txt one\\ntwo\nread /etc/passwd").await
    })
    .await
    .unwrap();
    let write = log.params("fs/write_text_file").unwrap();
    assert!(write["path"].as_str().unwrap().ends_with("/notes.txt"));
    assert_eq!(write["content"], "one\ntwo");
    let diff = log
        .updates_json()
        .into_iter()
        .find(|u| u["content"][0]["type"] == "diff")
        .unwrap();
    assert_eq!(diff["content"][0]["oldText"], "old");
    assert_eq!(log.said(), "wrote notes.txtread failed: Invalid params");
}

#[tokio::test]
async fn usage_plan_env_and_unknown_directives() {
    let log = Log::default();
    let response = with_agent(Answers::default(), log.clone(), async |cx, session| {
        prompt(
            &cx,
            &session,
            "plan a; b\nplan-done 1\nusage 10 5\nenv FAKE_AGENT_NOT_SET\nfly",
        )
        .await
    })
    .await
    .unwrap();
    let updates = log.updates_json();
    assert_eq!(updates[1]["entries"][0]["status"], "completed");
    assert_eq!(updates[1]["entries"][1]["status"], "in_progress");
    assert_eq!(updates[2]["sessionUpdate"], "usage_update");
    assert_eq!(updates[2]["used"], 15);
    assert_eq!(
        log.said(),
        "env FAKE_AGENT_NOT_SET=(unset)unknown directive: fly"
    );
    let response = serde_json::to_value(response).unwrap();
    assert_eq!(response["usage"]["inputTokens"], 10);
}

#[tokio::test]
async fn a_garbage_line_does_not_end_the_connection() {
    let log = Log::default();
    let stop = with_agent(Answers::default(), log.clone(), async |cx, session| {
        Ok(
            prompt(&cx, &session, "say before\ngarbage\nflood 500\nsay after")
                .await?
                .stop_reason,
        )
    })
    .await
    .unwrap();
    assert_eq!(stop, StopReason::EndTurn);
    assert!(log.said().ends_with("chunk 500 after"));
}

#[tokio::test]
async fn a_crash_fails_the_pending_prompt() {
    let result: Result<(), Error> =
        with_agent(Answers::default(), Log::default(), async |cx, session| {
            let crashed = prompt(&cx, &session, "say bye\ncrash").await;
            eprintln!("prompt after crash: {crashed:?}");
            assert!(crashed.is_err());
            Ok(())
        })
        .await;
    eprintln!("connection after crash: {result:?}");
}

#[tokio::test]
async fn startup_flags_and_stdin_closing() {
    let out = agent_command(&["--exit-at-once"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "fake agent refuses to start\n"
    );

    let mut child = agent_command(&["--stderr-lines", "3"]).spawn().unwrap();
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .unwrap();
    assert!(status.unwrap().success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(stderr.lines().count(), 3);
}

#[tokio::test]
async fn no_init_never_answers() {
    let result = tokio::time::timeout(
        Duration::from_millis(500),
        with_agent_args(
            &["--no-init"],
            Answers::default(),
            Log::default(),
            async |_, _| Ok(()),
        ),
    )
    .await;
    assert!(result.is_err(), "initialize was answered");
}
