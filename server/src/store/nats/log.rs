//! A conversation's log on its JetStream subject: fenced appends, the head, and
//! reads from an index.
//!
//! One append is one stream message holding all of its rows, so it is stored whole
//! or not at all, and a flood's chunks cost one publish per batch. The rows' JSON
//! texts are concatenated; headers say where each ends, so nothing needs parsing:
//! `Tether-Idx` (the first row's dense index), `Tether-Lens` (each row's length in
//! bytes), `Tether-Kinds` (each row's type) and `Tether-Last-Eot` (the last
//! end-of-turn index so far, which makes "where did the last turn end" one request).
//! An append too large for one message is split and published as one atomic batch.

use std::ops::Range;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::{PublishMessage, StreamMessage};
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use async_nats::jetstream::{self};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use jetstream_extra::batch_fetch::{BatchFetchErrorKind, BatchFetchExt};
use jetstream_extra::batch_publish::BatchPublishExt;
use tokio::time::Instant;

use super::validity::Validity;
use super::{Head, backend};
use crate::store::{AppendRow, Result, StoreError};

const IDX: &str = "Tether-Idx";
const LENS: &str = "Tether-Lens";
const KINDS: &str = "Tether-Kinds";
const LAST_EOT: &str = "Tether-Last-Eot";

/// JetStream's limit on messages in one atomic batch.
const MAX_BATCH: usize = 1000;
/// Room kept for the fixed headers when filling a message up to `max_payload`.
const HEADER_ROOM: usize = 1024;
/// Bytes one batch read asks for; the server stops after the message that crosses it.
const READ_BYTES: usize = 8 << 20;

fn header_u64(message: &StreamMessage, name: &str) -> Option<u64> {
    message.headers.get(name)?.as_str().parse().ok()
}

fn corrupt(message: &StreamMessage, what: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "stream message {} on {}: {what}",
        message.sequence, message.subject
    ))
}

/// A stream message's rows, undone: the first index, and each row's kind and JSON.
pub(super) struct Rows {
    pub first: u64,
    pub rows: Vec<(String, Bytes)>,
}

impl Rows {
    fn end(&self) -> u64 {
        self.first + self.rows.len() as u64
    }

    fn of(message: &StreamMessage) -> Result<Rows> {
        Self::parse(&message.headers, &message.payload).map_err(|what| corrupt(message, what))
    }

    /// Undoes what `pack` did to one message, from its headers and payload.
    pub(super) fn parse(
        headers: &HeaderMap,
        payload: &Bytes,
    ) -> std::result::Result<Rows, &'static str> {
        let first: u64 = headers
            .get(IDX)
            .and_then(|v| v.as_str().parse().ok())
            .ok_or("no index")?;
        let list = |name: &str| -> Vec<String> {
            headers
                .get(name)
                .map(|v| v.as_str().split(',').map(str::to_string).collect())
                .unwrap_or_default()
        };
        let kinds = list(KINDS);
        let lens = list(LENS);
        if lens.is_empty() || kinds.len() != lens.len() {
            return Err("rows are not described");
        }
        let mut rows = Vec::with_capacity(lens.len());
        let mut at = 0usize;
        for (kind, len) in kinds.into_iter().zip(lens) {
            let len: usize = len.parse().map_err(|_| "a bad length")?;
            let end = at
                .checked_add(len)
                .filter(|end| *end <= payload.len())
                .ok_or("rows longer than the message")?;
            rows.push((kind, payload.slice(at..end)));
            at = end;
        }
        Ok(Rows { first, rows })
    }
}

fn head_of(message: &StreamMessage) -> Result<Head> {
    Ok(Head {
        last_seq: message.sequence,
        next_idx: Rows::of(message)?.end(),
        last_eot: header_u64(message, LAST_EOT),
    })
}

async fn last_message(log: &Stream, subject: &str) -> Result<Option<StreamMessage>> {
    match log.direct_get_last_for_subject(subject).await {
        Ok(message) => Ok(Some(message)),
        Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
        Err(e) => Err(backend("cannot read the log's end", e)),
    }
}

/// The conversation's head as JetStream has it now.
pub(super) async fn read_head(log: &Stream, subject: &str) -> Result<Head> {
    match last_message(log, subject).await? {
        Some(message) => head_of(&message),
        None => Ok(Head::default()),
    }
}

/// Packs consecutive rows into messages of at most `max` bytes of payload.
fn pack(rows: &[AppendRow], mut last_eot: Option<u64>, max: usize) -> Result<Vec<PublishMessage>> {
    let mut out = Vec::new();
    let mut group: Vec<&AppendRow> = Vec::new();
    let mut size = 0usize;
    let mut flush = |group: &mut Vec<&AppendRow>, last_eot: Option<u64>| {
        if let Some(first) = group.first() {
            let mut payload = BytesMut::new();
            let mut lens = Vec::with_capacity(group.len());
            let mut kinds = Vec::with_capacity(group.len());
            for row in group.iter() {
                payload.extend_from_slice(&row.json);
                lens.push(row.json.len().to_string());
                kinds.push(row.kind.as_str());
            }
            let mut headers = HeaderMap::new();
            headers.insert(IDX, first.idx.to_string());
            headers.insert(LENS, lens.join(","));
            headers.insert(KINDS, kinds.join(","));
            if let Some(eot) = last_eot {
                headers.insert(LAST_EOT, eot.to_string());
            }
            out.push(
                PublishMessage::build()
                    .payload(payload.freeze())
                    .headers(headers),
            );
            group.clear();
        }
    };
    for row in rows {
        row.json_str()?;
        // Per row: its JSON, and its length and kind in the headers.
        let cost = row.json.len() + 24;
        if cost + HEADER_ROOM > max {
            return Err(StoreError::Backend(format!(
                "message {} is {} bytes; the NATS server accepts at most {max} \
                 (raise max_payload in its configuration)",
                row.idx,
                row.json.len(),
            )));
        }
        if size + cost + HEADER_ROOM > max {
            flush(&mut group, last_eot);
            size = 0;
        }
        if row.end_of_turn {
            last_eot = Some(row.idx);
        }
        group.push(row);
        size += cost;
    }
    flush(&mut group, last_eot);
    Ok(out)
}

/// How long an append keeps trying while NATS cannot be reached (losing the
/// conversation may end it sooner).
const RETRY_FOR: Duration = Duration::from_secs(30);

/// Appends one conversation's rows, fenced on the head it was given.
pub(super) struct Writer<'a> {
    pub js: &'a jetstream::Context,
    pub log: &'a Stream,
    pub subject: &'a str,
    pub max_payload: usize,
    /// Whether this process still owns the conversation; checked before every attempt.
    pub validity: &'a Validity,
}

impl Writer<'_> {
    /// Appends `rows` (whose first index is `head.next_idx`) and returns the new head.
    ///
    /// If the outcome is unclear (a timeout, a lost connection), the log is read
    /// again: the rows count as written only if its last message is the last row.
    pub async fn append(&self, head: Head, rows: &[AppendRow]) -> Result<Head> {
        let messages = pack(rows, head.last_eot, self.max_payload)?;
        let last_eot = rows
            .iter()
            .rev()
            .find(|row| row.end_of_turn)
            .map(|row| row.idx)
            .or(head.last_eot);
        let written = Head {
            last_seq: 0,
            next_idx: head.next_idx + rows.len() as u64,
            last_eot,
        };
        // A publish that failed for want of NATS (reconnecting, restarting, a lost
        // ack) is tried again with the same expectation, so it cannot land twice:
        // meanwhile the command's output waits in its bounded channel.
        let deadline = Instant::now() + RETRY_FOR;
        let mut pause = Duration::from_millis(50);
        loop {
            self.validity.check()?;
            let (transient, err) = match self.publish(head.last_seq, messages.clone()).await {
                Ok(last_seq) => {
                    return Ok(Head {
                        last_seq,
                        ..written
                    });
                }
                Err(failure) => failure,
            };
            let settled = self.settle(head, written, rows, err).await;
            match settled {
                Ok(head) => return Ok(head),
                Err(StoreError::Conflict(why)) => return Err(StoreError::Conflict(why)),
                Err(err) if (transient || !self.connected()) && Instant::now() < deadline => {
                    tracing::warn!(error = %err, "an append to NATS failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn connected(&self) -> bool {
        self.js.client().connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes one message, or several as atomic batches of at most `MAX_BATCH`,
    /// each fenced on the sequence the previous one ended at. Returns the last
    /// message's sequence.
    /// On error, also says whether it is worth trying again (NATS was unreachable).
    async fn publish(
        &self,
        mut expected: u64,
        messages: Vec<PublishMessage>,
    ) -> std::result::Result<u64, (bool, StoreError)> {
        fn failed(e: PublishError) -> (bool, StoreError) {
            let transient = matches!(
                e.kind(),
                PublishErrorKind::TimedOut
                    | PublishErrorKind::BrokenPipe
                    | PublishErrorKind::StreamNotFound
            );
            (transient, backend("cannot append", e))
        }
        let batch_failed = |e| (false, backend("cannot append", e));
        if messages.len() == 1 {
            let message = messages.into_iter().next().unwrap_or_default();
            let ack = self
                .js
                .send_publish(
                    self.subject.to_string(),
                    message.expected_last_subject_sequence(expected),
                )
                .await
                .map_err(failed)?
                .await
                .map_err(failed)?;
            return Ok(ack.sequence);
        }
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            let chunk: Vec<PublishMessage> = messages.by_ref().take(MAX_BATCH).collect();
            let count = chunk.len();
            let mut batch = self.js.batch_publish().build();
            let mut ack = None;
            for (i, message) in chunk.into_iter().enumerate() {
                let message = if i == 0 {
                    message.expected_last_subject_sequence(expected)
                } else {
                    message
                };
                let outbound = message.outbound_message(self.subject.to_string());
                if i + 1 == count {
                    ack = Some(
                        std::mem::replace(&mut batch, self.js.batch_publish().build())
                            .commit_message(outbound)
                            .await
                            .map_err(batch_failed)?,
                    );
                } else {
                    batch.add_message(outbound).await.map_err(batch_failed)?;
                }
            }
            expected = ack
                .ok_or_else(|| (false, StoreError::Backend("NATS: an empty batch".into())))?
                .sequence;
        }
        Ok(expected)
    }

    /// Decides what a failed publish did by reading the log's end again.
    async fn settle(
        &self,
        before: Head,
        written: Head,
        rows: &[AppendRow],
        err: StoreError,
    ) -> Result<Head> {
        let Some(last) = last_message(self.log, self.subject).await? else {
            return Err(err);
        };
        let now = head_of(&last)?;
        if now.last_seq == before.last_seq {
            // Nothing was written: the error stands as it is.
            return Err(err);
        }
        let ours = match (rows.last(), Rows::of(&last)?.rows.last()) {
            (Some(row), Some((_, json))) => row.json == *json,
            _ => false,
        };
        if now.next_idx == written.next_idx && ours {
            return Ok(Head {
                last_seq: now.last_seq,
                ..written
            });
        }
        Err(StoreError::Conflict(format!(
            "another replica appended to {} (it is now at index {}): {err}",
            self.subject, now.next_idx
        )))
    }
}

/// The stream sequence of the message holding index `idx`, which must be below
/// `head.next_idx`: a binary search over the stream with direct gets, each asking
/// for the subject's first message at or after a sequence.
async fn sequence_of(log: &Stream, subject: &str, head: Head, idx: u64) -> Result<u64> {
    let (mut lo, mut hi) = (1, head.last_seq);
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        let message = log
            .direct_get_next_for_subject(subject, Some(mid))
            .await
            .map_err(|e| backend("cannot find a message", e))?;
        let rows = Rows::of(&message)?;
        if (rows.first..rows.end()).contains(&idx) {
            return Ok(message.sequence);
        }
        if rows.end() <= idx {
            lo = message.sequence + 1;
        } else {
            // Nothing of the subject lies in mid..message.sequence.
            hi = mid - 1;
        }
    }
    Err(StoreError::Corrupt(format!(
        "{subject} has no message with index {idx}"
    )))
}

/// Calls `each(idx, kind, json)` for the messages with indexes in `range`, in order,
/// at most `limit` of them; stops early when `each` returns false.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_range(
    js: &jetstream::Context,
    log: &Stream,
    log_name: &str,
    subject: &str,
    head: Head,
    range: Range<u64>,
    limit: usize,
    mut each: impl FnMut(u64, &str, String) -> bool,
) -> Result<()> {
    let mut next = range.start;
    let mut seq = sequence_of(log, subject, head, next).await?;
    let mut delivered = 0usize;
    while next < range.end && delivered < limit {
        let mut batch = match js
            .get_batch(log_name, MAX_BATCH)
            .sequence(seq)
            .subject(subject)
            .max_bytes(READ_BYTES)
            .send()
            .await
        {
            Ok(batch) => batch,
            Err(e) if matches!(e.kind(), BatchFetchErrorKind::NoMessages) => break,
            Err(e) => return Err(backend("cannot read the log", e)),
        };
        let before = next;
        while let Some(message) = batch.next().await {
            let message = match message {
                Ok(message) => message,
                Err(e) if matches!(e.kind(), BatchFetchErrorKind::NoMessages) => break,
                Err(e) => return Err(backend("cannot read the log", e)),
            };
            let rows = Rows::of(&message)?;
            if !(rows.first..rows.end()).contains(&next) {
                return Err(StoreError::Corrupt(format!(
                    "{subject} has index {} where {next} belongs",
                    rows.first
                )));
            }
            for (idx, (kind, json)) in (rows.first..).zip(rows.rows) {
                if idx < next {
                    continue;
                }
                if idx >= range.end || delivered >= limit {
                    return Ok(());
                }
                let json = String::from_utf8(json.to_vec())
                    .map_err(|_| StoreError::Corrupt(format!("message {idx} is not UTF-8")))?;
                if !each(idx, &kind, json) {
                    return Ok(());
                }
                next += 1;
                delivered += 1;
            }
            seq = message.sequence + 1;
            if next >= range.end || delivered >= limit {
                return Ok(());
            }
        }
        if next == before {
            break;
        }
    }
    Ok(())
}
