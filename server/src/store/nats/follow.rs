//! The feed a following replica reads: every append to any conversation's log, as
//! its owner stores it, and every change to the records and statuses.
//!
//! The log comes from an ordered consumer, which JetStream delivers in stream order
//! and which recreates itself after a gap. If it fails outright, or the connection
//! comes back after NATS restarted, a new one starts right after the last message
//! seen, so nothing is skipped. (Left alone, the old one would notice the restart
//! only after two missed idle heartbeats, and a follower would lag by that long.) The
//! buckets come from key-value watches, which start with every key's latest value
//! and are started again the same way.

use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
use tokio::sync::{mpsc, watch as signal};

use super::backend;
use super::log::Rows;
use crate::store::{Followed, Result};

/// Items in flight between the feed and the engine; when full, the feed waits.
const FEED_DEPTH: usize = 1024;
/// Pause before a failed consumer or watch is started again.
const RETRY: Duration = Duration::from_secs(1);

pub(super) struct Sources {
    pub log: Stream,
    /// `<prefix>.log.`; what follows it in a subject is the conversation id.
    pub subject_prefix: String,
    pub conversations: kv::Store,
    pub shares: kv::Store,
    pub status: kv::Store,
    /// Bumped each time the connection to NATS is (re-)established.
    pub reconnected: signal::Receiver<u64>,
}

/// Starts the feed. The log is followed from this moment on: a log opened after
/// this returns misses nothing that is delivered later.
pub(super) async fn start(sources: Sources) -> Result<mpsc::Receiver<Followed>> {
    let (tx, rx) = mpsc::channel(FEED_DEPTH);
    // Where a restarted consumer resumes if nothing arrived before the restart.
    let last_seq = match sources.log.get_info().await {
        Ok(info) => info.state.last_sequence,
        Err(e) => return Err(backend("cannot follow the log", e)),
    };
    let consumer = open_log(&sources.log, &sources.subject_prefix, DeliverPolicy::New).await?;
    tokio::spawn(follow_log(
        sources.log,
        sources.subject_prefix,
        consumer,
        last_seq,
        tx.clone(),
        sources.reconnected.clone(),
    ));
    let reconnected = sources.reconnected;
    tokio::spawn(watch(
        sources.conversations,
        tx.clone(),
        reconnected.clone(),
        |_, value| {
            serde_json::from_slice(value)
                .ok()
                .map(Followed::Conversation)
        },
    ));
    tokio::spawn(watch(
        sources.shares,
        tx.clone(),
        reconnected.clone(),
        |_, value| serde_json::from_slice(value).ok().map(Followed::Share),
    ));
    tokio::spawn(watch(sources.status, tx, reconnected, |key, value| {
        Some(Followed::Status {
            conversation: key.to_string(),
            json: value.clone(),
        })
    }));
    Ok(rx)
}

type Ordered = async_nats::jetstream::consumer::pull::Ordered;

async fn open_log(log: &Stream, prefix: &str, from: DeliverPolicy) -> Result<Ordered> {
    let consumer = log
        .create_consumer(OrderedConfig {
            filter_subject: format!("{prefix}*"),
            deliver_policy: from,
            ..Default::default()
        })
        .await
        .map_err(|e| backend("cannot follow the log", e))?;
    consumer
        .messages()
        .await
        .map_err(|e| backend("cannot follow the log", e))
}

/// Why the log is followed anew.
enum Restart {
    /// The consumer failed: wait a moment first, so a failing one does not spin.
    Failed,
    /// The connection came back: at once, the server is there.
    Reconnected,
}

async fn follow_log(
    log: Stream,
    prefix: String,
    mut messages: Ordered,
    mut last_seq: u64,
    tx: mpsc::Sender<Followed>,
    mut reconnected: signal::Receiver<u64>,
) {
    reconnected.borrow_and_update();
    loop {
        let next = tokio::select! {
            next = messages.next() => match next {
                Some(Ok(message)) => Ok(message),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "following the log failed; starting again");
                    Err(Restart::Failed)
                }
                None => Err(Restart::Failed),
            },
            Ok(()) = reconnected.changed() => {
                tracing::info!(last_seq, "NATS is back; following the log again from where it was");
                Err(Restart::Reconnected)
            }
            () = tx.closed() => return,
        };
        let message = match next {
            Ok(message) => message,
            Err(why) => {
                let mut pause = matches!(why, Restart::Failed);
                messages = loop {
                    if tx.is_closed() {
                        return;
                    }
                    if pause {
                        tokio::time::sleep(RETRY).await;
                    }
                    pause = true;
                    let from = DeliverPolicy::ByStartSequence {
                        start_sequence: last_seq + 1,
                    };
                    match open_log(&log, &prefix, from).await {
                        Ok(messages) => break messages,
                        Err(e) => tracing::warn!(error = %e, "cannot follow the log yet"),
                    }
                };
                continue;
            }
        };
        if let Ok(info) = message.info() {
            last_seq = info.stream_sequence;
        }
        let Some(conversation) = message.subject.as_str().strip_prefix(prefix.as_str()) else {
            continue;
        };
        let Some(headers) = message.headers.as_ref() else {
            continue;
        };
        let rows = match Rows::parse(headers, &message.payload) {
            Ok(rows) => rows,
            Err(what) => {
                tracing::error!(subject = %message.subject, what, "a log message cannot be read");
                continue;
            }
        };
        let item = Followed::Messages {
            conversation: conversation.to_string(),
            first: rows.first,
            rows: rows.rows.into_iter().map(|(_, json)| json).collect(),
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// Sends what `decode` makes of every put to `bucket`, latest values first, and
/// starts over (latest values again) when the connection comes back.
async fn watch(
    bucket: kv::Store,
    tx: mpsc::Sender<Followed>,
    mut reconnected: signal::Receiver<u64>,
    decode: impl Fn(&str, &bytes::Bytes) -> Option<Followed> + Send + 'static,
) {
    reconnected.borrow_and_update();
    loop {
        let mut entries = match bucket.watch_with_history(">").await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch a bucket yet");
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => continue,
                    () = tx.closed() => return,
                }
            }
        };
        let pause = loop {
            let next = tokio::select! {
                next = entries.next() => next,
                Ok(()) = reconnected.changed() => break false,
                () = tx.closed() => return,
            };
            let entry = match next {
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "watching a bucket failed; starting again");
                    break true;
                }
                None => break true,
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            if let Some(item) = decode(&entry.key, &entry.value)
                && tx.send(item).await.is_err()
            {
                return;
            }
        };
        if pause {
            tokio::time::sleep(RETRY).await;
        }
    }
}
