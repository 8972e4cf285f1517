//! The batcher between a PTY's reader thread and its consumer: decodes bytes into
//! text, cuts it into UTF-8-safe pieces and decides when a batch goes out (at once
//! for interactive output, within a bounded window during a flood).

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::pipe::PipeReader;
use super::{ExitInfo, Phase, PtyEvent, Shared};
use crate::tools::chunk::{MAX_CHUNK_CHARS, Utf8Decoder, split_chars};

/// Maximum time pending output may wait while more keeps arriving.
pub(super) const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// A read this long after the previous one, with nothing pending, starts interactive
/// output (a prompt, a line every few ms): it goes out at once rather than waiting
/// for the flood window. Back-to-back reads inside a flood come much closer together.
pub(super) const QUIET_GAP: Duration = Duration::from_millis(2);
/// Interactive flushes are still spaced this far apart, so a reader starved under
/// load (whose reads then look "quiet") cannot turn a flood into tiny messages.
pub(super) const MIN_FLUSH_GAP: Duration = Duration::from_millis(5);
/// A flood gets its long window only once it has brought at least this many bytes in
/// the first MIN_FLUSH_GAP after a flush (about 0.8 MB/s). Back-to-back reads alone are
/// not enough: a program briefly starved of CPU writes its next few lines back to back
/// as it catches up, and those must not make the lines after them wait FLUSH_INTERVAL.
/// Once confirmed, a flood is not checked again: a reader starved for a few ms (the
/// browser busy on the same CPUs) must not cut it into small messages.
pub(super) const FLOOD_MIN_BYTES: usize = 4096;
/// How long after the child exits we keep waiting for the PTY to reach EOF
/// before assuming a background grandchild is holding it open.
pub(super) const EOF_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for EOF after SIGKILLing the group before giving up.
pub(super) const EOF_AFTER_KILL: Duration = Duration::from_secs(1);

/// Text decoded but not yet sent, with its char count tracked incrementally
/// so floods don't cost a rescan per read.
#[derive(Default)]
struct Pending {
    text: String,
    chars: usize,
}

impl Pending {
    fn decode(&mut self, dec: &mut Utf8Decoder, bytes: &[u8]) {
        let start = self.text.len();
        dec.push(bytes, &mut self.text);
        self.chars += self.text[start..].chars().count();
    }

    fn finish(&mut self, dec: &mut Utf8Decoder) {
        let start = self.text.len();
        dec.finish(&mut self.text);
        self.chars += self.text[start..].chars().count();
    }
}

struct Emitter {
    tx: mpsc::Sender<PtyEvent>,
    consumer_gone: bool,
}

impl Emitter {
    async fn send(&mut self, ev: PtyEvent) {
        // If the consumer went away we keep draining the PTY anyway: stopping
        // would leave the child blocked on a full terminal forever.
        if !self.consumer_gone && self.tx.send(ev).await.is_err() {
            self.consumer_gone = true;
        }
    }

    /// Sends all pending text, or with `only_full` just the complete
    /// `MAX_CHUNK_CHARS` pieces, keeping the tail for later.
    async fn flush(&mut self, pending: &mut Pending, only_full: bool) {
        if pending.chars == 0 {
            return;
        }
        let text = std::mem::take(&mut pending.text);
        let total = pending.chars;
        pending.chars = 0;
        let mut sent_chars = 0;
        let mut pieces = split_chars(&text, MAX_CHUNK_CHARS).peekable();
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            if only_full && last && total - sent_chars < MAX_CHUNK_CHARS {
                pending.text.push_str(piece);
                pending.chars = total - sent_chars;
                break;
            }
            sent_chars += MAX_CHUNK_CHARS.min(total - sent_chars);
            self.send(PtyEvent::Output(piece.to_owned())).await;
        }
    }
}

/// How long a batch may wait after the previous flush: a flood gets the long window
/// only once it has shown, by its volume, that it is one.
fn window(flood: bool, confirmed: bool) -> Duration {
    if flood && confirmed {
        FLUSH_INTERVAL
    } else {
        MIN_FLUSH_GAP
    }
}

pub(super) async fn batch_loop(
    shared: Arc<Shared>,
    mut raw: PipeReader,
    mut exit_rx: oneshot::Receiver<ExitInfo>,
    event_tx: mpsc::Sender<PtyEvent>,
) {
    let mut emitter = Emitter {
        tx: event_tx,
        consumer_gone: false,
    };
    let mut decoder = Utf8Decoder::new();
    let mut pending = Pending::default();
    // Starts "long ago" so the very first output goes out immediately.
    let mut last_flush: Option<Instant> = None;
    let mut eof = false;
    let mut exit: Option<ExitInfo> = None;
    let mut eof_deadline: Option<Instant> = None;
    let mut killed_for_eof = false;
    // When bytes last arrived, and whether they are a flood: then the batch may wait
    // the flood window after the last flush, and the reader wakes us only per whole
    // message's worth of bytes; otherwise output goes out within MIN_FLUSH_GAP.
    let mut last_bytes: Option<Instant> = None;
    let mut flood = false;
    // Bytes taken since the last flush, and whether the flood has been confirmed by
    // them (checked once, MIN_FLUSH_GAP after the flush before or at its start).
    let mut since_flush = 0usize;
    let mut confirmed = false;

    loop {
        if eof && exit.is_some() {
            break;
        }
        let flush_at = last_flush.map_or_else(Instant::now, |t| t + window(flood, confirmed));
        let far_future = Instant::now() + Duration::from_secs(3600);
        // During a flood the timer also collects bytes below the wake-up length.
        let timer = pending.chars > 0 || (flood && !eof);

        let mut woke_for_bytes = false;
        tokio::select! {
            () = raw.ready(), if !eof => woke_for_bytes = true,
            res = &mut exit_rx, if exit.is_none() => {
                exit = Some(res.unwrap_or(ExitInfo { exit_code: None, signal: None }));
                eof_deadline = Some(Instant::now() + EOF_GRACE);
            },
            () = tokio::time::sleep_until(flush_at), if timer => {},
            () = tokio::time::sleep_until(eof_deadline.unwrap_or(far_future)),
                if eof_deadline.is_some() && !eof =>
            {
                if killed_for_eof {
                    tracing::warn!(pid = shared.pid, "pty never reached EOF; giving up");
                    break;
                }
                // Something in the group (e.g. `sleep 1000 &`) still holds
                // the terminal open after the main process exited.
                tracing::debug!(pid = shared.pid, "no EOF after exit; killing process group");
                if let Err(e) = shared.signal_group(Signal::SIGKILL) {
                    tracing::warn!(pid = shared.pid, error = %e, "killpg failed");
                }
                killed_for_eof = true;
                eof_deadline = Some(Instant::now() + EOF_AFTER_KILL);
            },
        }

        if !eof {
            let now = Instant::now();
            let was_flood = flood;
            let taken = raw.take();
            eof = taken.eof;
            if taken.bytes.is_empty() {
                // The flood timer found nothing new: the flood is over.
                if !woke_for_bytes && pending.chars == 0 {
                    flood = false;
                }
            } else {
                if pending.chars == 0 {
                    // Bytes right after the previous ones, with nothing left over,
                    // are a flood; after a pause they start interactive output.
                    let quick = last_bytes.is_some_and(|t| now - t < QUIET_GAP);
                    confirmed &= flood && quick;
                    flood = quick;
                }
                last_bytes = Some(now);
                since_flush += taken.bytes.len();
                pending.decode(&mut decoder, taken.bytes);
            }
            if flood && !confirmed && last_flush.is_some_and(|t| now - t >= MIN_FLUSH_GAP) {
                if since_flush >= FLOOD_MIN_BYTES {
                    confirmed = true;
                } else {
                    flood = false;
                }
            }
            if flood != was_flood {
                // A flood wakes us per whole message; its timer collects the rest.
                raw.wake_at(if flood { MAX_CHUNK_CHARS } else { 1 });
            }
        }

        let mut flushed = false;
        if pending.chars >= MAX_CHUNK_CHARS {
            emitter.flush(&mut pending, true).await;
            flushed = true;
        }
        // Due by the flush before any whole pieces just sent, so the timer's deadline
        // sends everything pending, not the whole pieces alone.
        let due = last_flush.is_none_or(|t| t.elapsed() >= window(flood, confirmed));
        // At EOF nothing more can join the batch, so it need not wait.
        if pending.chars > 0 && (due || eof) {
            emitter.flush(&mut pending, false).await;
            flushed = true;
        }
        if flushed {
            last_flush = Some(Instant::now());
            since_flush = 0;
        }
    }

    // Dropping our end unblocks a reader waiting for room; one stuck in `read` on
    // a terminal still held open leaks until that holder exits, which we cannot
    // avoid without closing its fd under it.
    drop(raw);
    pending.finish(&mut decoder);
    emitter.flush(&mut pending, false).await;
    shared.advance(Phase::Finished);
    let info = exit.unwrap_or(ExitInfo {
        exit_code: None,
        signal: None,
    });
    emitter.send(PtyEvent::Exited(info)).await;
}
