//! Shared harness for the integration tests: the real `tether` binary on a free port
//! with its own data directory, a small HTTP/SSE client, and helpers that wait on
//! conditions (never on time) with generous timeouts.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use app::protocol::{
    ChatResponse, ConversationState, ConversationSummary, Message, MessageType, ToolCall,
    ToolStatus,
};
use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any single "wait until" may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------

/// The `tether` binary running on 127.0.0.1 with a temporary data directory.
/// Killed (SIGKILL) when dropped.
pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    pub addr: std::net::SocketAddr,
    /// Holds the data directory (`root/data`) and the server logs (`root/server-N.log`).
    root: TempDir,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
    /// A command the binary is started through (its path and arguments are appended),
    /// e.g. `bash -c '…; exec "$0" "$@"'` to set resource limits. Empty: run it directly.
    wrapper: Vec<String>,
    starts: usize,
    pub client: reqwest::Client,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Self {
        Self::start_with_env(extra_args, &[])
    }

    /// Extra arguments and extra environment variables for the server process.
    pub fn start_with_env(extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_wrapped(&[], extra_args, envs)
    }

    /// Like `start_with_env`, but runs the binary through `wrapper` (see the field).
    pub fn start_wrapped(wrapper: &[&str], extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        let root = tempfile::Builder::new()
            .prefix("tether-test-")
            .tempdir()
            .expect("create a temporary directory");
        let mut server = TestServer {
            child: None,
            url: String::new(),
            addr: "127.0.0.1:1".parse().expect("an address"),
            root,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
            starts: 0,
            client: reqwest::Client::builder()
                .build()
                .expect("build an HTTP client"),
        };
        server.spawn();
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// A fresh directory (inside the test's temporary root) for conversations to use as cwd.
    pub fn work_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).expect("create a work directory");
        dir.canonicalize().expect("canonicalize the work directory")
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.root.path().join(format!("server-{n}.log"))
    }

    /// Everything the server wrote to stderr, for failure messages.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---- restart ----\n")
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).expect("create the log file");
        let binary = env!("CARGO_BIN_EXE_tether");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn the tether binary");
        let stdout = child.stdout.take().expect("the child's stdout");
        // Read the address on a thread, so a server that never prints cannot hang us.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("Tether is serving ") {
                    // `http://HOST:PORT/` or, with a token, `http://HOST:PORT/?token=…`.
                    let origin = rest.trim().split('/').take(3).collect::<Vec<_>>().join("/");
                    let _ = tx.send(origin);
                    break;
                }
            }
            // Keep draining so a later print never hits a closed pipe.
            for _ in lines {}
        });
        self.child = Some(child);
        let url = match rx.recv_timeout(WAIT) {
            Ok(url) => url,
            Err(_) => panic!(
                "the server did not print its address; its log:\n{}",
                self.logs()
            ),
        };
        self.addr = url
            .strip_prefix("http://")
            .expect("an http URL")
            .parse()
            .expect("a socket address in the URL");
        self.url = url;
    }

    pub fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("the server is running");
        Pid::from_raw(i32::try_from(child.id()).expect("a pid"))
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid();
        kill(pid, Signal::SIGTERM).expect("send SIGTERM");
        let mut child = self.child.take().expect("the server is running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not exit within {timeout:?} of SIGTERM; its log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Changes the wrapper used from the next (re)start on; `&[]` runs the binary directly.
    pub fn set_wrapper(&mut self, wrapper: &[&str]) {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
    }

    /// Starts the server again on the same data directory (on a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/{}", self.url, path.trim_start_matches('/'))
    }

    pub fn conv(&self, id: &str, rest: &str) -> String {
        self.api(&format!("conversations/{id}/{rest}"))
    }

    // -- plain requests -------------------------------------------------------------

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.api(path))
            .timeout(WAIT)
            .send()
            .await
            .expect("GET");
        json_of(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.api(path))
            .json(&body)
            .timeout(WAIT)
            .send()
            .await
            .expect("POST");
        json_of(response).await
    }

    /// POST with a raw body and `Content-Type: application/json`.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.api(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(WAIT)
            .send()
            .await
            .expect("POST");
        json_of(response).await
    }

    // -- the API --------------------------------------------------------------------

    /// Creates a conversation in `cwd` and returns its id.
    pub async fn create(&self, cwd: &Path) -> String {
        let (status, body) = self
            .post(
                "conversations",
                json!({ "cwd": cwd.to_str().expect("utf-8 path") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create conversation: {body}");
        body["id"].as_str().expect("an id").to_string()
    }

    /// A conversation in a fresh work directory.
    pub async fn create_default(&self) -> String {
        let dir = self.work_dir("work");
        self.create(&dir).await
    }

    pub async fn chat(&self, id: &str, message: &str) -> ChatResponse {
        let (status, body) = self
            .post(
                &format!("conversations/{id}/chat"),
                json!({ "message": message }),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "chat: {body}");
        serde_json::from_value(body).expect("a chat response")
    }

    pub async fn cancel(&self, id: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("conversations/{id}/cancel"), body).await
    }

    pub async fn state(&self, id: &str) -> ConversationState {
        let (status, body) = self.get(&format!("conversations/{id}/state")).await;
        assert_eq!(status, StatusCode::OK, "state: {body}");
        serde_json::from_value(body).expect("a conversation state")
    }

    pub async fn state_json(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("conversations/{id}/state")).await;
        assert_eq!(status, StatusCode::OK, "state: {body}");
        body
    }

    /// The whole log as raw JSON values.
    pub async fn messages_json(&self, id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("conversations/{id}/messages")).await;
        assert_eq!(status, StatusCode::OK, "messages: {body}");
        match body {
            Value::Array(items) => items,
            other => panic!("messages is not an array: {other}"),
        }
    }

    pub async fn messages(&self, id: &str) -> Vec<Message> {
        self.messages_json(id)
            .await
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("a message"))
            .collect()
    }

    pub async fn summaries(&self) -> Vec<ConversationSummary> {
        let (status, body) = self.get("conversations").await;
        assert_eq!(status, StatusCode::OK, "list: {body}");
        serde_json::from_value(body).expect("a list of summaries")
    }

    /// Polls `GET state` until `cond` holds. Only for conditions no stream reports.
    pub async fn wait_state(
        &self,
        id: &str,
        what: &str,
        cond: impl Fn(&ConversationState) -> bool,
    ) -> ConversationState {
        let deadline = Instant::now() + WAIT;
        loop {
            let state = self.state(id).await;
            if cond(&state) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last state: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // -- streams --------------------------------------------------------------------

    /// Opens `GET stream` with an optional query (e.g. `"from=3"`) and `Last-Event-ID`.
    pub async fn stream_with(&self, id: &str, query: &str, last_event_id: Option<&str>) -> Sse {
        let mut url = self.conv(id, "stream");
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let mut request = self.client.get(url);
        if let Some(last) = last_event_id {
            request = request.header("Last-Event-ID", last);
        }
        let response = request.send().await.expect("open the stream");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "stream {query:?} / {last_event_id:?}"
        );
        assert_eq!(
            response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Sse::new(
            response
                .bytes_stream()
                .map(|r| r.map_err(|e| e.to_string())),
        )
    }

    pub async fn stream(&self, id: &str) -> Sse {
        self.stream_with(id, "", None).await
    }

    pub async fn stream_from(&self, id: &str, from: u64) -> Sse {
        self.stream_with(id, &format!("from={from}"), None).await
    }

    /// `GET /api/events`.
    pub async fn events(&self) -> Sse {
        let response = self
            .client
            .get(self.api("events"))
            .send()
            .await
            .expect("open the events stream");
        assert_eq!(response.status(), StatusCode::OK);
        Sse::new(
            response
                .bytes_stream()
                .map(|r| r.map_err(|e| e.to_string())),
        )
    }

    /// A stream over a raw socket with a tiny receive buffer, so that a reader which
    /// stops reading really stops the server from writing (reqwest buffers, and
    /// loopback sockets can hold megabytes). Speaks HTTP/1.0 so the body is just the
    /// bytes until the server closes.
    pub async fn raw_stream_from(&self, id: &str, from: u64) -> Sse {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .set_recv_buffer_size(4096)
            .expect("set the receive buffer size");
        let mut tcp = socket.connect(self.addr).await.expect("connect");
        let request = format!(
            "GET /api/conversations/{id}/stream?from={from} HTTP/1.0\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr
        );
        tcp.write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let body_start = loop {
            let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
                .await
                .expect("response headers in time")
                .expect("read the response");
            assert!(n > 0, "the server closed before sending headers");
            head.extend_from_slice(&buf[..n]);
            if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let headers = String::from_utf8_lossy(&head[..body_start]).to_string();
        assert!(
            headers.starts_with("HTTP/1.1 200") || headers.starts_with("HTTP/1.0 200"),
            "raw stream: {headers}"
        );
        assert!(
            !headers.to_ascii_lowercase().contains("transfer-encoding"),
            "an HTTP/1.0 response must not be chunked: {headers}"
        );
        let first = Bytes::copy_from_slice(&head[body_start..]);
        let rest = futures::stream::unfold(tcp, |mut tcp| async move {
            let mut buf = vec![0u8; 4096];
            match tcp.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), tcp))
                }
                Err(e) => Some((Err(e.to_string()), tcp)),
            }
        });
        Sse::new(futures::stream::once(async move { Ok(first) }).chain(rest))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Status and JSON body; a non-JSON body becomes `Value::String` of its text.
pub async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("read the body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Asserts an error response: the status, and a JSON body `{"error": "<non-empty>"}`.
pub fn assert_error(what: &str, (status, body): &(StatusCode, Value), expected: StatusCode) {
    assert_eq!(*status, expected, "{what}: body {body}");
    let message = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: the body is not a JSON error: {body}"));
    assert!(!message.is_empty(), "{what}: empty error message");
}

// ---------------------------------------------------------------------------------
// SSE
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub enum Ev {
    Message {
        message: Box<Message>,
        /// The `data:` line, parsed but otherwise untouched.
        raw: Value,
        /// The SSE `id:` field.
        id: String,
    },
    State(Box<ConversationState>),
    Heartbeat(Value),
    Conversation(Box<ConversationSummary>),
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;
type EventStream = eventsource_stream::EventStream<ByteStream>;

/// An SSE client that keeps every event it received.
pub struct Sse {
    inner: EventStream,
    pub events: Vec<Ev>,
    /// Set once the stream has ended (cleanly or not).
    pub ended: Option<String>,
}

impl Sse {
    pub fn new(bytes: impl Stream<Item = Result<Bytes, String>> + Send + 'static) -> Self {
        let boxed: ByteStream = Box::pin(bytes);
        Sse {
            inner: boxed.eventsource(),
            events: Vec::new(),
            ended: None,
        }
    }

    /// Reads one event (waiting at most `timeout`). `Ok(false)` when the stream ended.
    pub async fn read_one(
        &mut self,
        timeout: Duration,
    ) -> Result<bool, tokio::time::error::Elapsed> {
        if self.ended.is_some() {
            return Ok(false);
        }
        let next = tokio::time::timeout(timeout, self.inner.next()).await?;
        let event = match next {
            None => {
                self.ended = Some("end of stream".into());
                return Ok(false);
            }
            Some(Err(err)) => {
                self.ended = Some(format!("error: {err}"));
                return Ok(false);
            }
            Some(Ok(event)) => event,
        };
        let ev = match event.event.as_str() {
            "message" => {
                let raw: Value = serde_json::from_str(&event.data)
                    .unwrap_or_else(|e| panic!("message data is not JSON ({e}): {}", event.data));
                let message: Message = serde_json::from_value(raw.clone())
                    .unwrap_or_else(|e| panic!("not a Message ({e}): {}", event.data));
                Ev::Message {
                    message: Box::new(message),
                    raw,
                    id: event.id,
                }
            }
            "state" => Ev::State(Box::new(
                serde_json::from_str(&event.data)
                    .unwrap_or_else(|e| panic!("not a state ({e}): {}", event.data)),
            )),
            "heartbeat" => Ev::Heartbeat(
                serde_json::from_str(&event.data)
                    .unwrap_or_else(|e| panic!("heartbeat data is not JSON ({e}): {}", event.data)),
            ),
            "conversation" => Ev::Conversation(Box::new(
                serde_json::from_str(&event.data)
                    .unwrap_or_else(|e| panic!("not a summary ({e}): {}", event.data)),
            )),
            other => panic!("unexpected SSE event {other:?}: {}", event.data),
        };
        self.events.push(ev);
        Ok(true)
    }

    /// Reads until `cond(self)` holds; panics after `timeout` or if the stream ends first.
    pub async fn wait_until(&mut self, what: &str, timeout: Duration, cond: impl Fn(&Sse) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !cond(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_one(left).await {
                Ok(true) => {}
                Ok(false) => panic!(
                    "the stream ended ({:?}) while waiting for {what}; last events: {}",
                    self.ended,
                    self.tail_summary()
                ),
                Err(_) => panic!(
                    "timed out after {timeout:?} waiting for {what}; last events: {}",
                    self.tail_summary()
                ),
            }
        }
    }

    /// Waits until `n` messages with `end_of_turn` have arrived.
    pub async fn wait_end_of_turns(&mut self, n: usize) {
        self.wait_until(&format!("{n} end_of_turn message(s)"), WAIT, |s| {
            s.messages().iter().filter(|m| m.end_of_turn).count() >= n
        })
        .await;
    }

    /// Waits until the output of the first tool call contains `needle`.
    pub async fn wait_output_contains(&mut self, needle: &str) {
        self.wait_until(&format!("output containing {needle:?}"), WAIT, |s| {
            s.all_output().contains(needle)
        })
        .await;
    }

    /// Waits until a message with index `idx` has arrived.
    pub async fn wait_idx(&mut self, idx: u64) {
        self.wait_until(&format!("message {idx}"), WAIT, |s| {
            s.messages().iter().any(|m| m.idx >= idx)
        })
        .await;
    }

    /// Reads until the stream ends; panics if it does not within `timeout`.
    pub async fn wait_ended(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_one(left).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(_) => panic!(
                    "the stream did not end within {timeout:?}; last events: {}",
                    self.tail_summary()
                ),
            }
        }
    }

    pub fn messages(&self) -> Vec<&Message> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Message { message, .. } => Some(&**message),
                _ => None,
            })
            .collect()
    }

    /// `(idx, raw JSON)` of every message event.
    pub fn raw_messages(&self) -> Vec<(u64, Value)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Message { message, raw, .. } => Some((message.idx, raw.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn states(&self) -> Vec<&ConversationState> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::State(s) => Some(&**s),
                _ => None,
            })
            .collect()
    }

    pub fn heartbeats(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Ev::Heartbeat(_)))
            .count()
    }

    pub fn summaries(&self) -> Vec<&ConversationSummary> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Conversation(s) => Some(&**s),
                _ => None,
            })
            .collect()
    }

    pub fn idxs(&self) -> Vec<u64> {
        self.messages().iter().map(|m| m.idx).collect()
    }

    /// Every `tool_output` content received, concatenated in order.
    pub fn all_output(&self) -> String {
        self.messages()
            .iter()
            .filter(|m| m.kind == MessageType::ToolOutput)
            .map(|m| m.content.as_str())
            .collect()
    }

    /// Checks the invariants of every message event: the SSE id is the idx, the ids
    /// are dense and increasing from `first`.
    pub fn assert_dense_from(&self, first: u64) {
        for e in &self.events {
            if let Ev::Message { message, id, .. } = e {
                assert_eq!(id, &message.idx.to_string(), "SSE id != idx");
            }
        }
        assert_dense(&self.messages(), first);
    }

    fn tail_summary(&self) -> String {
        let start = self.events.len().saturating_sub(8);
        self.events[start..]
            .iter()
            .map(|e| match e {
                Ev::Message { message, .. } => {
                    let mut content = message.content.clone();
                    if content.len() > 80 {
                        let mut cut = 80;
                        while !content.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        content.truncate(cut);
                    }
                    format!(
                        "[{} {:?} eot={} status={:?} {content:?}]",
                        message.idx, message.kind, message.end_of_turn, message.status
                    )
                }
                Ev::State(s) => format!(
                    "[state {:?} count={} tools={:?}]",
                    s.status, s.message_count, s.outstanding_tool_calls
                ),
                Ev::Heartbeat(_) => "[heartbeat]".into(),
                Ev::Conversation(s) => format!("[conversation {} {:?}]", s.id, s.status),
            })
            .collect::<Vec<_>>()
            .join(" ")
            + &format!(" ({} events in all)", self.events.len())
    }
}

// ---------------------------------------------------------------------------------
// Message helpers
// ---------------------------------------------------------------------------------

/// Asserts that `messages` have the indices `first, first+1, …` in order.
pub fn assert_dense<M: std::borrow::Borrow<Message>>(messages: &[M], first: u64) {
    for (i, m) in messages.iter().enumerate() {
        let expected = first + i as u64;
        assert_eq!(
            m.borrow().idx,
            expected,
            "message #{i} has idx {} where {expected} was expected (gap or duplicate)",
            m.borrow().idx
        );
    }
}

/// Every tool call the agent announced, in order.
pub fn tool_calls<M: std::borrow::Borrow<Message>>(messages: &[M]) -> Vec<ToolCall> {
    messages
        .iter()
        .filter(|m| m.borrow().kind == MessageType::Agent)
        .flat_map(|m| m.borrow().tool_calls.clone())
        .collect()
}

/// The concatenated `tool_output` contents of one tool call.
pub fn output_of<M: std::borrow::Borrow<Message>>(messages: &[M], tool_call_id: &str) -> String {
    messages
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter(|m| m.kind == MessageType::ToolOutput)
        .filter(|m| m.tool_call_id.as_deref() == Some(tool_call_id))
        .map(|m| m.content.as_str())
        .collect()
}

/// The `tool` result messages of one tool call.
pub fn results_of<'a, M: std::borrow::Borrow<Message>>(
    messages: &'a [M],
    tool_call_id: &str,
) -> Vec<&'a Message> {
    messages
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter(|m| m.kind == MessageType::Tool && m.tool_call_id.as_deref() == Some(tool_call_id))
        .collect()
}

/// The single result of a tool call (asserting there is exactly one).
pub fn single_result<'a, M: std::borrow::Borrow<Message>>(
    messages: &'a [M],
    tool_call_id: &str,
) -> &'a Message {
    let results = results_of(messages, tool_call_id);
    assert_eq!(
        results.len(),
        1,
        "tool call {tool_call_id} must have exactly one result, has {results:#?}"
    );
    results[0]
}

/// Asserts the tool call ended with `status`, and that an `end_of_turn` agent
/// message follows its result. Returns that closing message.
pub fn assert_closed<'a, M: std::borrow::Borrow<Message>>(
    messages: &'a [M],
    tool_call_id: &str,
    status: ToolStatus,
) -> &'a Message {
    let result = single_result(messages, tool_call_id);
    assert_eq!(result.status, Some(status), "result: {result:#?}");
    messages
        .iter()
        .map(std::borrow::Borrow::borrow)
        .find(|m| m.idx > result.idx && m.end_of_turn)
        .unwrap_or_else(|| panic!("no end_of_turn after the result of {tool_call_id}"))
}

/// What `seq 1 n` prints through a terminal (which turns `\n` into `\r\n`).
pub fn seq_output(n: u64) -> String {
    let mut out = String::new();
    for i in 1..=n {
        out.push_str(&i.to_string());
        out.push_str("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------

/// A marker unique to this test run, for finding processes by their command line.
pub fn marker() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Digits only, so `sleep 1000.<marker>` is a valid duration no other process has.
    format!("{}{:03}{:09}", std::process::id(), n, nanos)
}

/// Live processes whose command line contains `needle`: (pid, command line with
/// the arguments joined by spaces).
pub fn processes_with(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Pids of live processes whose command line contains `needle`.
pub fn pids_with(needle: &str) -> Vec<i32> {
    processes_with(needle)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// Polls /proc until no process has `needle` in its command line.
pub async fn wait_no_processes(needle: &str, timeout: Duration) -> Result<(), Vec<i32>> {
    let deadline = Instant::now() + timeout;
    loop {
        let pids = pids_with(needle);
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(pids);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// SIGKILLs whatever is left with the marker when dropped (cleanup after crash tests).
pub struct ProcessGuard(pub String);

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        for pid in pids_with(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Runs `git` in `dir` with a fixed identity; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Tether Test",
            "-c",
            "user.email=test@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
