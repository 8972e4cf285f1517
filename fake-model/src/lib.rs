//! A fake model server: it stands in for the internet model APIs (Anthropic Messages,
//! OpenAI Responses, OpenAI Chat Completions) so that real coding agents can run
//! offline in Tether's tests, and answers from a stateless script (see [`script`]).
//!
//! Routes match on the path's suffix, so `/v1/messages?beta=true` and any other prefix
//! work: `HEAD|GET /`, `POST …/messages`, `POST …/messages/count_tokens`,
//! `POST …/responses`, `POST …/chat/completions`. Anything else is a JSON 404.
//! Every request is recorded (method, path, some headers, body), so tests can check
//! what the agent sent.

pub mod anthropic;
pub mod chat;
pub mod responses;
pub mod script;
pub mod sse;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Headers worth recording: those that say who called and how.
const LOGGED_HEADERS: &[&str] = &[
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "originator",
    "session-id",
];

/// Where requests are recorded: in memory (for [`FakeModel::requests`]) and, if
/// asked, appended to a JSON-lines file.
#[derive(Clone, Default)]
struct Recorder {
    memory: Arc<Mutex<Vec<Value>>>,
    file: Option<Arc<Mutex<std::fs::File>>>,
}

impl Recorder {
    fn with_file(log: Option<PathBuf>) -> std::io::Result<Self> {
        let file = match log {
            Some(path) => Some(Arc::new(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ))),
            None => None,
        };
        Ok(Recorder {
            memory: Arc::default(),
            file,
        })
    }

    fn record(&self, entry: Value) {
        if let Some(file) = &self.file
            && let Ok(mut file) = file.lock()
        {
            let _ = writeln!(file, "{entry}");
            let _ = file.flush();
        }
        if let Ok(mut memory) = self.memory.lock() {
            memory.push(entry);
        }
    }
}

/// Serves the fake model API on `listener` until the task is dropped, appending every
/// request as one JSON line to `log` if given.
pub async fn serve(listener: TcpListener, log: Option<PathBuf>) -> std::io::Result<()> {
    serve_with(listener, Recorder::with_file(log)?).await
}

async fn serve_with(listener: TcpListener, recorder: Recorder) -> std::io::Result<()> {
    let app = Router::new()
        .fallback(handle)
        .with_state(recorder)
        // Agents resend the whole conversation each turn; Claude's first body is ~76 KB.
        .layer(DefaultBodyLimit::max(256 * 1024 * 1024));
    axum::serve(listener, app).await
}

/// A fake model server running in this process on an ephemeral 127.0.0.1 port; it
/// stops when dropped.
pub struct FakeModel {
    pub addr: SocketAddr,
    recorder: Recorder,
    task: JoinHandle<()>,
}

impl FakeModel {
    /// Binds 127.0.0.1:0 and serves in a spawned task.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let recorder = Recorder::default();
        let task = tokio::spawn({
            let recorder = recorder.clone();
            async move {
                if let Err(e) = serve_with(listener, recorder).await {
                    tracing::error!("fake model server stopped: {e}");
                }
            }
        });
        Ok(FakeModel {
            addr,
            recorder,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, the base URL to give an agent.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, oldest first: `{"method", "path", "headers", "body"}`,
    /// `path` with its query, `body` parsed JSON (or a string, or null).
    pub fn requests(&self) -> Vec<Value> {
        self.recorder
            .memory
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JSON error body in the shape both vendors use.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body =
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}});
    (status, axum::Json(body)).into_response()
}

async fn handle(
    State(recorder): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let logged_body = match &parsed {
        Some(v) => v.clone(),
        None if body.is_empty() => Value::Null,
        None => Value::String(String::from_utf8_lossy(&body).into_owned()),
    };
    let logged_headers: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            LOGGED_HEADERS.contains(&name)
                || name.starts_with("x-")
                || name.starts_with("anthropic-")
        })
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), Value::String(value))
        })
        .collect();
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    tracing::info!("{method} {path}");
    recorder.record(json!({
        "method": method.as_str(),
        "path": path,
        "headers": logged_headers,
        "body": logged_body,
    }));

    let path = uri.path().trim_end_matches('/');
    if path.is_empty() && (method == Method::GET || method == Method::HEAD) {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ok").into_response();
    }
    if method != Method::POST {
        return not_found(&method, uri.path());
    }
    let Some(body) = parsed else {
        return error(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    if path.ends_with("/messages/count_tokens") {
        axum::Json(json!({"input_tokens": script::input_tokens(&body)})).into_response()
    } else if path.ends_with("/messages") {
        anthropic::messages(body)
    } else if path.ends_with("/responses") {
        responses::responses(body)
    } else if path.ends_with("/chat/completions") {
        chat::completions(body)
    } else {
        not_found(&method, uri.path())
    }
}

fn not_found(method: &Method, path: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": "not_found_error", "message": format!("no route for {method} {path}")}});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Whether the request asks for a stream (`"stream": true`).
pub(crate) fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}
