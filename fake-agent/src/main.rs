//! `fake-acp-agent`: an ACP agent whose prompts are scripts, so Tether's tests can make
//! an agent do exactly what a real one (Claude, Codex, opencode) does on the wire —
//! stream, ask, run terminals, edit files, misbehave — without a model behind it.
//!
//! Flags: `--load` advertises `loadSession`; `--no-init` never answers `initialize`;
//! `--exit-at-once` exits 2 before reading anything; `--stderr-lines N` writes N
//! numbered lines to stderr at startup. See `script.rs` for the directives.

mod out;
mod script;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, InitializeRequest, InitializeResponse,
    LoadSessionRequest, LoadSessionResponse, NewSessionRequest, NewSessionResponse, PromptRequest,
    SetSessionModeRequest, SetSessionModeResponse,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, ByteStreams, Client, Error};
use serde_json::{Value, json};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Flags {
    load: bool,
    no_init: bool,
    exit_at_once: bool,
    stderr_lines: u32,
}

fn parse_flags() -> Result<Flags, String> {
    let mut flags = Flags::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--load" => flags.load = true,
            "--no-init" => flags.no_init = true,
            "--exit-at-once" => flags.exit_at_once = true,
            "--stderr-lines" => {
                let n = args.next().ok_or("--stderr-lines needs a number")?;
                flags.stderr_lines = n.parse().map_err(|_| format!("not a number: {n}"))?;
            }
            other => return Err(format!("unknown flag: {other}")),
        }
    }
    Ok(flags)
}

/// What the script runner needs to know about one session.
pub struct Session {
    pub cwd: PathBuf,
    pub mode: String,
    pub plan: Vec<String>,
    /// The running prompt's token: `session/cancel` cancels it.
    pub cancel: CancellationToken,
}

/// State shared by the handlers and the spawned prompt runs.
pub struct Shared {
    load: bool,
    no_init: bool,
    pub client_caps: Mutex<ClientCapabilities>,
    pub sessions: Mutex<HashMap<String, Session>>,
    /// For `garbage`: lines written here never split an SDK line.
    pub raw_out: out::LineSender,
    next_tool_call: AtomicU64,
    next_session: AtomicU64,
    /// `--no-init` keeps the responder alive, because dropping it would answer.
    parked: Mutex<Vec<Responder<InitializeResponse>>>,
}

impl Shared {
    pub fn next_tool_call_id(&self) -> String {
        format!(
            "tc-{}",
            self.next_tool_call.fetch_add(1, Ordering::Relaxed) + 1
        )
    }

    pub fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn caps(&self) -> ClientCapabilities {
        self.client_caps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Builds a schema type from its wire form; the JSON in this crate reads like the
/// protocol documentation, and the schema still checks it.
pub fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(Error::into_internal_error)
}

fn modes(current: &str) -> Value {
    json!({
        "currentModeId": current,
        "availableModes": [
            {"id": "ask", "name": "Ask before acting"},
            {"id": "auto", "name": "Act without asking"},
            {"id": "plan", "name": "Plan only"},
        ],
    })
}

fn main() -> std::process::ExitCode {
    let flags = match parse_flags() {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("fake-acp-agent: {message}");
            return std::process::ExitCode::from(64);
        }
    };
    if flags.exit_at_once {
        eprintln!("fake agent refuses to start");
        return std::process::ExitCode::from(2);
    }
    for n in 1..=flags.stderr_lines {
        eprintln!("fake agent stderr line {n}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("fake-acp-agent: no runtime: {err}");
            return std::process::ExitCode::from(70);
        }
    };
    let code = runtime.block_on(serve(flags));
    // Spawned children of `self-run` and a `hang`ing prompt must not keep us alive.
    runtime.shutdown_background();
    code
}

async fn serve(flags: Flags) -> std::process::ExitCode {
    let (writer, raw_out, writer_task) = out::stdout_lines();
    let shared = Arc::new(Shared {
        load: flags.load,
        no_init: flags.no_init,
        client_caps: Mutex::new(ClientCapabilities::default()),
        sessions: Mutex::new(HashMap::new()),
        raw_out,
        next_tool_call: AtomicU64::new(0),
        next_session: AtomicU64::new(0),
        parked: Mutex::new(Vec::new()),
    });
    let transport = ByteStreams::new(writer.compat_write(), tokio::io::stdin().compat());
    let result = agent(shared.clone()).connect_to(transport).await;
    // Let what is queued reach stdout; the raw sender in `shared` must go first.
    drop(shared);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer_task).await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fake-acp-agent: connection ended: {err:?}");
            std::process::ExitCode::from(1)
        }
    }
}

fn agent(
    shared: Arc<Shared>,
) -> agent_client_protocol::v1::Builder<Agent, impl agent_client_protocol::HandleDispatchFrom<Client>>
{
    let (s1, s2, s3, s4, s5, s6) = (
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared,
    );
    Agent
        .v1()
        .name("fake-acp-agent")
        .on_receive_request(
            async move |req: InitializeRequest, responder: Responder<InitializeResponse>, _cx| {
                if s1.no_init {
                    s1.parked.lock().unwrap_or_else(|p| p.into_inner()).push(responder);
                    return Ok(());
                }
                *s1.client_caps.lock().unwrap_or_else(|p| p.into_inner()) =
                    req.client_capabilities;
                responder.respond(typed(json!({
                    "protocolVersion": 1,
                    "agentCapabilities": {"loadSession": s1.load},
                    "agentInfo": {"name": "fake-acp-agent", "version": env!("CARGO_PKG_VERSION")},
                }))?)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: NewSessionRequest, responder: Responder<NewSessionResponse>, _cx| {
                let n = s2.next_session.fetch_add(1, Ordering::Relaxed) + 1;
                let id = format!("fake-session-{n}");
                s2.sessions().insert(id.clone(), new_session(req.cwd));
                responder.respond(typed(json!({"sessionId": id, "modes": modes("ask")}))?)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: LoadSessionRequest, responder: Responder<LoadSessionResponse>, _cx| {
                if !s3.load {
                    return responder.respond_with_error(Error::method_not_found());
                }
                let id = req.session_id.to_string();
                let mode = {
                    let mut sessions = s3.sessions();
                    let session = sessions.entry(id).or_insert_with(|| new_session(req.cwd));
                    session.mode.clone()
                };
                responder.respond(typed(json!({"modes": modes(&mode)}))?)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: SetSessionModeRequest,
                        responder: Responder<SetSessionModeResponse>,
                        cx: ConnectionTo<Client>| {
                let id = req.session_id.to_string();
                let mode = req.mode_id.to_string();
                if !["ask", "auto", "plan"].contains(&mode.as_str()) {
                    return responder.respond_with_error(
                        Error::invalid_params().data(json!({"unknownMode": mode})),
                    );
                }
                match s4.sessions().get_mut(&id) {
                    Some(session) => session.mode = mode.clone(),
                    None => {
                        return responder.respond_with_error(
                            agent_client_protocol::v1::schema::Error::session_not_found(
                                req.session_id,
                            )
                            .into(),
                        );
                    }
                }
                cx.send_notification(typed::<agent_client_protocol::v1::schema::SessionNotification>(
                    json!({"sessionId": id, "update": {"sessionUpdate": "current_mode_update", "currentModeId": mode}}),
                )?)?;
                responder.respond(typed(json!({}))?)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest, responder, cx: ConnectionTo<Client>| {
                let id = req.session_id.to_string();
                let token = CancellationToken::new();
                let cwd = match s5.sessions().get_mut(&id) {
                    Some(session) => {
                        session.cancel = token.clone();
                        session.cwd.clone()
                    }
                    None => {
                        return responder.respond_with_error(
                            agent_client_protocol::v1::schema::Error::session_not_found(
                                req.session_id,
                            )
                            .into(),
                        );
                    }
                };
                let text = script::prompt_text(&req.prompt);
                let run = script::Run::new(cx.clone(), s5.clone(), id, cwd, token);
                // Off the dispatch loop, so `session/cancel` and the client's answers
                // to our own requests can arrive while the script runs.
                cx.spawn(async move {
                    match run.run(&text).await {
                        Ok(Some(response)) => responder.respond(response)?,
                        Ok(None) => {
                            // `hang`: hold the responder so that nothing answers.
                            let _held = responder;
                            std::future::pending::<()>().await;
                        }
                        Err(err) => responder.respond_with_error(err)?,
                    }
                    Ok(())
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |note: CancelNotification, _cx| {
                if let Some(session) = s6.sessions().get(&note.session_id.to_string()) {
                    session.cancel.cancel();
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
}

fn new_session(cwd: PathBuf) -> Session {
    Session {
        cwd,
        mode: "ask".into(),
        plan: Vec::new(),
        cancel: CancellationToken::new(),
    }
}
