//! A client for the fake agent, built on the same SDK Tether's client uses, so the
//! tests double as a worked example of the client side of that SDK.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    ClientCapabilities, ContentBlock, CreateTerminalRequest, FileSystemCapabilities,
    InitializeRequest, KillTerminalRequest, NewSessionRequest, PermissionOptionKind, PromptRequest,
    PromptResponse, ReadTextFileRequest, ReleaseTerminalRequest, RequestPermissionOutcome,
    RequestPermissionRequest, RequestPermissionResponse, SelectedPermissionOutcome,
    SessionNotification, SessionUpdate, TerminalOutputRequest, TextContent,
    WaitForTerminalExitRequest, WriteTextFileRequest,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, ByteStreams, Client, Error};
use serde_json::{Value, json};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// How the test client answers the agent's requests.
#[derive(Clone, Default)]
pub struct Answers {
    /// The permission option to pick, by kind; `None` leaves the request unanswered.
    pub permission: Option<PermissionOptionKind>,
    /// Leave `terminal/wait_for_exit` unanswered, as for a command that runs on.
    pub hold_wait: bool,
    /// Advertise `_meta.terminal_output`, as Codex expects.
    pub meta_terminal_output: bool,
}

/// Everything the agent sent, in order, as `method` + params.
#[derive(Clone, Default)]
pub struct Log {
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
    pub updates: Arc<Mutex<Vec<SessionUpdate>>>,
    /// Requests left unanswered on purpose. Dropping a responder would answer it.
    parked: Arc<Mutex<Vec<Responder<Value>>>>,
}

impl Log {
    fn call(&self, method: &str, params: &impl serde::Serialize) {
        let params = serde_json::to_value(params).unwrap();
        self.calls
            .lock()
            .unwrap()
            .push((method.to_string(), params));
    }

    pub fn methods(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }

    pub fn params(&self, method: &str) -> Option<Value> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
    }

    /// The agent's message: every `agent_message_chunk` joined.
    pub fn said(&self) -> String {
        let updates = self.updates.lock().unwrap();
        updates
            .iter()
            .filter_map(|update| match update {
                SessionUpdate::AgentMessageChunk(chunk) => match &chunk.content {
                    ContentBlock::Text(text) => Some(text.text.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    pub fn updates_json(&self) -> Vec<Value> {
        let updates = self.updates.lock().unwrap();
        updates
            .iter()
            .map(|u| serde_json::to_value(u).unwrap())
            .collect()
    }
}

pub fn agent_command(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-acp-agent"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts the agent, initializes it, opens a session in `cwd`, and hands the
/// connection and session id to `body`.
pub async fn with_agent<R: Send + 'static>(
    answers: Answers,
    log: Log,
    body: impl AsyncFnOnce(ConnectionTo<Agent>, String) -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    with_agent_args(&[], answers, log, body).await
}

/// [`with_agent`] with startup flags for the agent.
pub async fn with_agent_args<R: Send + 'static>(
    args: &[&str],
    answers: Answers,
    log: Log,
    body: impl AsyncFnOnce(ConnectionTo<Agent>, String) -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    let mut child = agent_command(args).spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
    let meta = answers.meta_terminal_output;

    let connection = client(answers, log).connect_with(transport, async move |cx| {
        let mut caps = ClientCapabilities::new()
            .fs(FileSystemCapabilities::new()
                .read_text_file(true)
                .write_text_file(true))
            .terminal(true);
        if meta {
            caps = caps.meta(json!({"terminal_output": true}).as_object().cloned());
        }
        cx.send_request(InitializeRequest::new(ProtocolVersion::V1).client_capabilities(caps))
            .block_task()
            .await?;
        let session = cx
            .send_request(NewSessionRequest::new(std::env::temp_dir()))
            .block_task()
            .await?;
        body(cx, session.session_id.to_string()).await
    });
    let result = tokio::time::timeout(Duration::from_secs(20), connection)
        .await
        .expect("the test timed out");
    drop(child);
    result
}

pub async fn prompt(
    cx: &ConnectionTo<Agent>,
    session: &str,
    script: &str,
) -> Result<PromptResponse, Error> {
    let text = ContentBlock::Text(TextContent::new(script));
    cx.send_request(PromptRequest::new(session.to_string(), vec![text]))
        .block_task()
        .await
}

fn answer<T: serde::de::DeserializeOwned + agent_client_protocol::JsonRpcResponse>(
    responder: Responder<T>,
    value: Value,
) -> Result<(), Error> {
    responder.respond(serde_json::from_value(value).map_err(Error::into_internal_error)?)
}

/// The client's handlers. Each one answers at once (or parks the responder): a
/// handler that awaited would hold the SDK's dispatch loop.
pub fn client(
    answers: Answers,
    log: Log,
) -> agent_client_protocol::v1::Builder<Client, impl agent_client_protocol::HandleDispatchFrom<Agent>>
{
    let (l1, l2, l3, l4, l5, l6, l7, l8, l9) = (
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log,
    );
    let hold_wait = answers.hold_wait;
    let permission = answers.permission;
    Client
        .v1()
        .name("fake-agent-test")
        .on_receive_notification(
            async move |note: SessionNotification, _cx| {
                l1.updates.lock().unwrap().push(note.update);
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |req: RequestPermissionRequest, responder, _cx| {
                l2.call("session/request_permission", &req);
                let Some(kind) = permission else {
                    l2.parked.lock().unwrap().push(responder.erase_to_json());
                    return Ok(());
                };
                let option = req.options.iter().find(|o| o.kind == kind).unwrap();
                responder.respond(RequestPermissionResponse::new(
                    RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(
                        option.option_id.clone(),
                    )),
                ))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: CreateTerminalRequest, responder, _cx| {
                l3.call("terminal/create", &req);
                answer(responder, json!({"terminalId": "term-1"}))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WaitForTerminalExitRequest, responder, _cx| {
                l4.call("terminal/wait_for_exit", &req);
                if hold_wait {
                    l4.parked.lock().unwrap().push(responder.erase_to_json());
                    return Ok(());
                }
                answer(responder, json!({"exitCode": 0}))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: TerminalOutputRequest, responder, _cx| {
                l5.call("terminal/output", &req);
                answer(responder, json!({"output": "hello\n", "truncated": false}))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ReleaseTerminalRequest, responder, _cx| {
                l6.call("terminal/release", &req);
                answer(responder, json!({}))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: KillTerminalRequest, responder, _cx| {
                l7.call("terminal/kill", &req);
                answer(responder, json!({}))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ReadTextFileRequest, responder, _cx| {
                l8.call("fs/read_text_file", &req);
                if req.path.starts_with("/etc") {
                    return responder
                        .respond_with_error(Error::invalid_params().data("outside the project"));
                }
                answer(responder, json!({"content": "old"}))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WriteTextFileRequest, responder, _cx| {
                l9.call("fs/write_text_file", &req);
                answer(responder, json!({}))
            },
            agent_client_protocol::on_receive_request!(),
        )
}
