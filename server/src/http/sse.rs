//! Server-Sent Events: a conversation's log read from a cursor, then followed live;
//! and the global stream of conversation summaries.
//!
//! Each client is one task holding one cursor and at most one batch of entries,
//! so a stalled client costs a bounded amount of memory and slows nobody else.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use app::protocol::{ConversationSummary, Heartbeat, event};
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{FutureExt, Stream};
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use super::security::StreamPermit;
use crate::engine::{Conversation, Engine};
use crate::log::now_rfc3339;

/// Entries read per batch; also the most one client holds at a time.
const BATCH: usize = 256;
/// The global stream sends at most this often, however busy the server is.
const GLOBAL_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Wraps a stream of ready-made SSE frames in a response with the right headers.
pub fn sse_response(
    frames: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    let mut response = Body::from_stream(frames).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx and friends not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn frame(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn json_frame<T: serde::Serialize>(name: &str, value: &T) -> Bytes {
    frame(
        name,
        &serde_json::to_string(value).unwrap_or_else(|_| "{}".into()),
    )
}

fn heartbeat() -> Bytes {
    json_frame(
        event::HEARTBEAT,
        &Heartbeat {
            time: now_rfc3339(),
        },
    )
}

/// The conversation's messages from `cursor` on, with `state` events and heartbeats,
/// until the client goes away or the server shuts down.
pub fn conversation_stream(
    conversation: Arc<Conversation>,
    mut cursor: u64,
    heartbeat_every: Duration,
    permit: StreamPermit,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    async_stream::stream! {
        // Counted against the stream limits until this stream ends.
        let _permit = permit;
        let shutdown = conversation.shutdown_token();
        let mut grown = conversation.log.subscribe();
        let mut changes = conversation.subscribe_changes();
        changes.mark_unchanged();
        let mut beat = interval_at(Instant::now() + heartbeat_every, heartbeat_every);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        yield Ok(json_frame(event::STATE, &conversation.state()));
        // A state change seen but not yet sent. State is sent only once the stream has
        // caught up with the log, and is read after the messages, so it never runs
        // ahead of them (e.g. "idle" before the closing message), and many changes
        // during a burst coalesce into one event.
        let mut state_dirty = false;
        loop {
            // Mark before reading, so anything appended after the read wakes us below.
            grown.mark_unchanged();
            if changes.has_changed().unwrap_or(false) {
                changes.mark_unchanged();
                state_dirty = true;
            }
            let batch = match conversation.log.read(cursor, u64::MAX, BATCH).await {
                Ok(batch) => batch,
                Err(err) => {
                    // Ending the stream makes the client reconnect from its cursor.
                    tracing::error!(conversation = %conversation.id, %err, "cannot read the log");
                    break;
                }
            };
            let caught_up = batch.len() < BATCH;
            for entry in batch {
                cursor = entry.idx + 1;
                yield Ok(entry.frame());
            }
            if beat.tick().now_or_never().is_some() {
                yield Ok(heartbeat());
            }
            if !caught_up {
                continue;
            }
            if state_dirty {
                state_dirty = false;
                yield Ok(json_frame(event::STATE, &conversation.state()));
                continue;
            }
            tokio::select! {
                _ = grown.changed() => {}
                // `changed` marks the change as seen, so remember it here.
                _ = changes.changed() => state_dirty = true,
                _ = beat.tick() => yield Ok(heartbeat()),
                _ = shutdown.cancelled() => break,
            }
        }
    }
}

/// Every conversation's summary once, then each summary again whenever it changes.
pub fn global_stream(
    engine: Arc<Engine>,
    heartbeat_every: Duration,
    permit: StreamPermit,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    async_stream::stream! {
        let _permit = permit;
        let shutdown = engine.shutdown_token();
        let mut changes = engine.subscribe_changes();
        let mut beat = interval_at(Instant::now() + heartbeat_every, heartbeat_every);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Message counts change without a signal (that would fire per message), so
        // also look once a second.
        let mut poll = tokio::time::interval(Duration::from_secs(1));
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut sent: HashMap<String, ConversationSummary> = HashMap::new();
        loop {
            changes.mark_unchanged();
            for summary in engine.summaries() {
                if sent.get(&summary.id) != Some(&summary) {
                    yield Ok(json_frame(event::CONVERSATION, &summary));
                    sent.insert(summary.id.clone(), summary);
                }
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = poll.tick() => {}
                _ = beat.tick() => yield Ok(heartbeat()),
                _ = shutdown.cancelled() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(GLOBAL_MIN_INTERVAL) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }
}
