//! The feed a following replica reads: every append to any conversation's log, as
//! the active replica stores it, and every change to the records and statuses.
//!
//! The log comes from an ordered consumer, which JetStream delivers in stream order
//! and which recreates itself after a gap; if it fails outright (NATS restarted), a
//! new one starts right after the last message seen, so nothing is skipped. The
//! buckets come from key-value watches, which start with every key's latest value.

use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
use tokio::sync::mpsc;

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
}

/// Starts the feed. The log is followed from this moment on: a log opened after
/// this returns misses nothing that is delivered later.
pub(super) async fn start(sources: Sources) -> Result<mpsc::Receiver<Followed>> {
    let (tx, rx) = mpsc::channel(FEED_DEPTH);
    let consumer = open_log(&sources.log, &sources.subject_prefix, DeliverPolicy::New).await?;
    tokio::spawn(follow_log(
        sources.log,
        sources.subject_prefix,
        consumer,
        tx.clone(),
    ));
    tokio::spawn(watch(sources.conversations, tx.clone(), |_, value| {
        serde_json::from_slice(value)
            .ok()
            .map(Followed::Conversation)
    }));
    tokio::spawn(watch(sources.shares, tx.clone(), |_, value| {
        serde_json::from_slice(value).ok().map(Followed::Share)
    }));
    tokio::spawn(watch(sources.status, tx, |key, value| {
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

async fn follow_log(
    log: Stream,
    prefix: String,
    mut messages: Ordered,
    tx: mpsc::Sender<Followed>,
) {
    let mut last_seq = 0u64;
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            () = tx.closed() => return,
        };
        let message = match next {
            Some(Ok(message)) => message,
            failure => {
                if let Some(Err(e)) = failure {
                    tracing::warn!(error = %e, "following the log failed; starting again");
                }
                messages = loop {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(RETRY).await;
                    let from = if last_seq == 0 {
                        DeliverPolicy::New
                    } else {
                        DeliverPolicy::ByStartSequence {
                            start_sequence: last_seq + 1,
                        }
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

/// Sends what `decode` makes of every put to `bucket`, latest values first.
async fn watch(
    bucket: kv::Store,
    tx: mpsc::Sender<Followed>,
    decode: impl Fn(&str, &bytes::Bytes) -> Option<Followed> + Send + 'static,
) {
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
        loop {
            let next = tokio::select! {
                next = entries.next() => next,
                () = tx.closed() => return,
            };
            let entry = match next {
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "watching a bucket failed; starting again");
                    break;
                }
                None => break,
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            if let Some(item) = decode(&entry.key, &entry.value)
                && tx.send(item).await.is_err()
            {
                return;
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}
