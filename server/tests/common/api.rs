//! The API as the tests use it: requests, the conversation routes, and streams.

use std::path::Path;
use std::time::{Duration, Instant};

use app::protocol::{ChatResponse, ConversationState, ConversationSummary, Message};
use serde_json::{Value, json};
use tether_testkit::{Request, Response, SseReader, StatusCode, StreamOptions, header};

use super::WAIT;
use super::assert::json_of;
use super::server::TestServer;
use super::sse::Sse;

impl TestServer {
    // -- plain requests -------------------------------------------------------------

    /// `/api/<path>`: the request path of an API route.
    pub fn api(&self, path: &str) -> String {
        format!("/api/{}", path.trim_start_matches('/'))
    }

    /// `/api/conversations/<id>/<rest>`.
    pub fn conv(&self, id: &str, rest: &str) -> String {
        self.api(&format!("conversations/{id}/{rest}"))
    }

    /// Sends `request` to the server; panics if there is no complete answer in time.
    pub async fn send(&self, request: Request) -> Response {
        tokio::time::timeout(WAIT, request.send(self.addr))
            .await
            .unwrap_or_else(|_| panic!("no answer within {WAIT:?} to {request:?}"))
            .unwrap_or_else(|e| panic!("{request:?}: {e}"))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        json_of(&self.send(Request::get(&self.api(path))).await)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(&self.send(Request::post(&self.api(path)).json(&body)).await)
    }

    /// POST with a raw body and `Content-Type: application/json`.
    pub async fn post_raw(&self, path: &str, body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
        json_of(
            &self
                .send(Request::post(&self.api(path)).json_body(body))
                .await,
        )
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

    /// Opens an event stream at `path`, asserting a 200 answer.
    async fn open_stream(&self, path: &str, options: StreamOptions, what: &str) -> Sse {
        let reader = tokio::time::timeout(WAIT, SseReader::open_with(self.addr, path, &options))
            .await
            .unwrap_or_else(|_| panic!("{what}: no response head within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        Sse::new(reader)
    }

    /// Opens `GET stream` with an optional query (e.g. `"from=3"`) and `Last-Event-ID`.
    pub async fn stream_with(&self, id: &str, query: &str, last_event_id: Option<&str>) -> Sse {
        let mut path = self.conv(id, "stream");
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        let mut options = StreamOptions::default();
        if let Some(last) = last_event_id {
            options.headers.push(("Last-Event-ID".into(), last.into()));
        }
        let what = format!("stream {query:?} / {last_event_id:?}");
        let sse = self.open_stream(&path, options, &what).await;
        let content_type = sse.head().headers.get(header::CONTENT_TYPE);
        assert_eq!(
            content_type.and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        sse
    }

    pub async fn stream(&self, id: &str) -> Sse {
        self.stream_with(id, "", None).await
    }

    pub async fn stream_from(&self, id: &str, from: u64) -> Sse {
        self.stream_with(id, &format!("from={from}"), None).await
    }

    /// `GET /api/events`.
    pub async fn events(&self) -> Sse {
        let path = self.api("events");
        self.open_stream(&path, StreamOptions::default(), "the events stream")
            .await
    }

    /// A stream over a socket with a tiny receive buffer, so that a reader which stops
    /// reading really stops the server from writing (loopback sockets can hold
    /// megabytes). Speaks HTTP/1.0 so the body is just the bytes until the server closes.
    pub async fn raw_stream_from(&self, id: &str, from: u64) -> Sse {
        let path = format!("{}?from={from}", self.conv(id, "stream"));
        let options = StreamOptions {
            recv_buffer: Some(4096),
            http10: true,
            ..StreamOptions::default()
        };
        let sse = self.open_stream(&path, options, "raw stream").await;
        assert!(
            sse.head().headers.get(header::TRANSFER_ENCODING).is_none(),
            "an HTTP/1.0 response must not be chunked: {:?}",
            sse.head()
        );
        sse
    }
}
