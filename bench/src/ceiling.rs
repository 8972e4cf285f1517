//! The ceiling for fan-out: a plain axum SSE broadcast with nothing but what fan-out
//! needs. Frames are rendered once and shared; every client reads from its own cursor
//! into an append-only list (lossless, unlike `tokio::sync::broadcast`), in batches of
//! 256 like Tether. `POST /setup` sets the frames, `POST /start` appends them as fast as
//! possible, `GET /stream` streams them after a `state` event.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::watch;

/// Characters per output chunk, as Tether's (`MAX_CHUNK_CHARS`).
pub const CHUNK_CHARS: u64 = 32_000;

#[derive(Default)]
struct Log {
    prepared: Vec<Bytes>,
    frames: Vec<Bytes>,
}

#[derive(Clone)]
struct Shared {
    log: Arc<RwLock<Log>>,
    len: Arc<watch::Sender<usize>>,
}

#[derive(Deserialize)]
struct Setup {
    frames: u64,
    content_len: u64,
}

fn frame(idx: u64, json: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: message\nid: {idx}\ndata: {json}\n\n"))
}

async fn setup(State(s): State<Shared>, axum::Json(req): axum::Json<Setup>) -> impl IntoResponse {
    let call = "call_00000000000000000000000000000001";
    let content: String = (0..req.content_len)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    let mut prepared = Vec::with_capacity(req.frames as usize);
    for idx in 0..req.frames {
        let json = if idx + 1 == req.frames {
            serde_json::json!({"idx": idx, "type": "tool", "conversation_id": "ceiling", "content": "exit code 0",
                "end_of_turn": false, "tool_call_id": call, "status": "completed"})
        } else {
            serde_json::json!({"idx": idx, "type": "tool_output", "conversation_id": "ceiling",
                "timestamp": "2026-01-01T00:00:00.000Z", "content": content, "end_of_turn": false, "tool_call_id": call})
        };
        prepared.push(frame(idx, &json));
    }
    {
        let mut log = s.log.write().unwrap_or_else(|p| p.into_inner());
        log.prepared = prepared;
        log.frames.clear();
    }
    s.len.send_replace(0);
    axum::Json(serde_json::json!({"ok": true}))
}

async fn start(State(s): State<Shared>) -> impl IntoResponse {
    tokio::spawn(async move {
        let prepared = s
            .log
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .prepared
            .clone();
        for f in prepared {
            let len = {
                let mut log = s.log.write().unwrap_or_else(|p| p.into_inner());
                log.frames.push(f);
                log.frames.len()
            };
            s.len.send_replace(len);
            tokio::task::yield_now().await;
        }
    });
    axum::Json(serde_json::json!({"ok": true}))
}

async fn stream(State(s): State<Shared>) -> Response {
    let first = futures::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b"event: state\ndata: {}\n\n"))
    });
    let rx = s.len.subscribe();
    let rest = futures::stream::unfold((s, rx, 0usize), |(s, mut rx, cursor)| async move {
        loop {
            let batch: Vec<Bytes> = {
                let log = s.log.read().unwrap_or_else(|p| p.into_inner());
                log.frames.iter().skip(cursor).take(256).cloned().collect()
            };
            if !batch.is_empty() {
                let next = cursor + batch.len();
                let items = futures::stream::iter(batch.into_iter().map(Ok::<_, Infallible>));
                return Some((items, (s, rx, next)));
            }
            rx.changed().await.ok()?;
        }
    });
    let body = futures::StreamExt::chain(first, futures::StreamExt::flatten(rest));
    let mut response = Body::from_stream(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// Serves on 127.0.0.1:0 and prints `ceiling serving <addr>`.
pub async fn serve() -> std::io::Result<()> {
    let shared = Shared {
        log: Arc::default(),
        len: Arc::new(watch::Sender::new(0)),
    };
    let app = Router::new()
        .route("/setup", post(setup))
        .route("/start", post(start))
        .route("/stream", get(stream))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("ceiling serving {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
