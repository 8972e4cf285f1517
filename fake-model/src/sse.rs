//! Server-Sent Events out of a spawned task: the dialect writes events into a
//! [`Sink`]; the response body drains it chunk by chunk (chunked transfer encoding).
//! When the client hangs up, the body is dropped, the next write fails with [`Gone`],
//! and the task stops, so a `SLOW` stream ends soon after a cancel.

use std::convert::Infallible;
use std::future::Future;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;

/// The client went away.
#[derive(Debug)]
pub struct Gone;

/// Where a dialect writes its events.
pub struct Sink(mpsc::Sender<String>);

impl Sink {
    /// `event: NAME` (if any) and one `data:` line.
    pub async fn event(&self, name: Option<&str>, data: &Value) -> Result<(), Gone> {
        let text = match name {
            Some(name) => format!("event: {name}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        };
        self.raw(text).await
    }

    /// Bytes as they are (e.g. `data: [DONE]\n\n`).
    pub async fn raw(&self, text: String) -> Result<(), Gone> {
        self.0.send(text).await.map_err(|_| Gone)
    }
}

/// A `text/event-stream` response whose events `write` produces.
pub fn response<F, Fut>(write: F) -> Response
where
    F: FnOnce(Sink) -> Fut,
    Fut: Future<Output = Result<(), Gone>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<String>(8);
    let task = write(Sink(tx));
    tokio::spawn(async move {
        if task.await.is_err() {
            tracing::info!("client hung up mid-stream");
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|text| (Ok::<_, Infallible>(text), rx))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
