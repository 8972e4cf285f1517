//! The demonstration stream behind the first page: a few `tick` events, then heartbeats.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;

use crate::AppState;

const TICKS: u32 = 5;

pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let shutdown = state.shutdown.clone();
    let events = async_stream::stream! {
        for n in 1..=TICKS {
            yield Ok(Event::default().event("tick").data(format!("tick {n} of {TICKS}")));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
        shutdown.cancelled().await;
    };
    Sse::new(events).keep_alive(KeepAlive::default())
}
