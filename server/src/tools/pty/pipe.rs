//! The hand-off from a PTY's reader thread to its batcher: a bounded byte buffer that
//! wakes the batcher only when there is something worth waking it for.
//!
//! A flood arrives in reads of a few hundred bytes to a few KiB. Waking the batcher
//! for each one cost a cross-thread wake-up and a context switch per read. So the
//! batcher says how much it wants before it is woken: any byte while output is
//! interactive, a whole message's worth during a flood, where its flush timer collects
//! the rest anyway. (Measured: random base64 18 % faster; output of tiny lines such as
//! `yes` about 11 % slower, because a reader that reads more often suits it less; see
//! BENCHMARKS.md, "Issue 15: the full run".)
//!
//! The reader blocks while the buffer is full, so a slow consumer still stops the
//! reader, which stops draining the terminal and so backpressures the command itself.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Unread bytes beyond which the reader waits for the batcher.
const CAPACITY: usize = 256 * 1024;

struct Shared {
    /// Never held across an `.await` or a blocking read.
    state: Mutex<State>,
    /// The reader waits here while the buffer is full.
    space: Condvar,
    /// The batcher waits here for bytes (or EOF).
    ready: Notify,
}

struct State {
    /// Read from the terminal, not yet taken by the batcher.
    bytes: Vec<u8>,
    /// The batcher is woken once `bytes` reaches this length.
    wake_at: usize,
    /// The reader has stopped: the terminal reached EOF or failed.
    eof: bool,
    /// The batcher has gone: the reader stops too.
    closed: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The reader thread's end. Dropping it (however the reader stops) is EOF.
pub(super) struct PipeWriter(Arc<Shared>);

/// The batcher's end. Dropping it tells the reader nobody listens any more.
pub(super) struct PipeReader {
    shared: Arc<Shared>,
    /// The other buffer: the reader fills one while the batcher decodes this one, so
    /// neither allocates per read.
    spare: Vec<u8>,
}

pub(super) fn pipe() -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            bytes: Vec::new(),
            wake_at: 1,
            eof: false,
            closed: false,
        }),
        space: Condvar::new(),
        ready: Notify::new(),
    });
    (
        PipeWriter(Arc::clone(&shared)),
        PipeReader {
            shared,
            spare: Vec::new(),
        },
    )
}

impl PipeWriter {
    /// Adds `data`, waiting while the buffer is full. False once the batcher is gone.
    /// Blocking: only for the reader thread (or a test that stays under the capacity).
    pub(super) fn push(&self, data: &[u8]) -> bool {
        let mut state = self.0.state();
        while state.bytes.len() >= CAPACITY && !state.closed {
            state = self.0.space.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.closed {
            return false;
        }
        let before = state.bytes.len();
        state.bytes.extend_from_slice(data);
        let wake = before < state.wake_at && state.bytes.len() >= state.wake_at;
        drop(state);
        if wake {
            self.0.ready.notify_one();
        }
        true
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.state().eof = true;
        self.0.ready.notify_one();
    }
}

/// What one `take` found.
pub(super) struct Taken<'a> {
    pub bytes: &'a [u8],
    /// Nothing more will come after these bytes.
    pub eof: bool,
}

impl PipeReader {
    /// Waits until the buffer has reached the wake-up length, or EOF. May return
    /// early (a wake-up meant for bytes already taken): `take` then finds less.
    pub(super) async fn ready(&self) {
        self.shared.ready.notified().await;
    }

    /// Takes every byte read so far, without waiting.
    pub(super) fn take(&mut self) -> Taken<'_> {
        self.spare.clear();
        let mut state = self.shared.state();
        let was_full = state.bytes.len() >= CAPACITY;
        std::mem::swap(&mut state.bytes, &mut self.spare);
        let eof = state.eof;
        drop(state);
        if was_full {
            self.shared.space.notify_one();
        }
        Taken {
            bytes: &self.spare,
            eof,
        }
    }

    /// Changes how many bytes the next wake-up waits for, waking at once if the
    /// buffer already holds that many.
    pub(super) fn wake_at(&self, wake_at: usize) {
        let mut state = self.shared.state();
        state.wake_at = wake_at.max(1);
        let wake = state.eof || state.bytes.len() >= state.wake_at;
        drop(state);
        if wake {
            self.shared.ready.notify_one();
        }
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.space.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_at_the_length_asked_for_and_at_eof() {
        let (writer, mut reader) = pipe();
        reader.wake_at(3);
        assert!(reader.take().bytes.is_empty());
        assert!(writer.push(b"ab"));
        let early = tokio::time::timeout(Duration::from_millis(50), reader.ready()).await;
        assert!(early.is_err(), "woken before 3 bytes");
        assert!(writer.push(b"c"));
        reader.ready().await;
        assert_eq!(reader.take().bytes, b"abc");
        drop(writer);
        reader.ready().await;
        let last = reader.take();
        assert!(last.eof && last.bytes.is_empty());
    }

    #[tokio::test]
    async fn lowering_the_length_wakes_for_bytes_already_there() {
        let (writer, mut reader) = pipe();
        reader.wake_at(100);
        assert!(writer.push(b"xy"));
        reader.wake_at(1);
        tokio::time::timeout(Duration::from_secs(10), reader.ready())
            .await
            .expect("woken");
        assert_eq!(reader.take().bytes, b"xy");
    }

    #[test]
    fn a_full_buffer_holds_the_reader_until_taken_and_nothing_is_lost() {
        let (writer, mut reader) = pipe();
        let total = 3 * CAPACITY + 17;
        let feeder = std::thread::spawn(move || {
            let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
            for piece in data.chunks(4096) {
                assert!(writer.push(piece));
            }
        });
        let mut got = Vec::new();
        loop {
            let taken = reader.take();
            assert!(taken.bytes.len() <= CAPACITY + 4096, "bounded");
            got.extend_from_slice(taken.bytes);
            if taken.eof {
                break;
            }
            std::thread::yield_now();
        }
        feeder.join().expect("the feeder finished");
        let want: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_reader_stops_once_the_batcher_is_gone() {
        let (writer, reader) = pipe();
        let feeder = std::thread::spawn(move || {
            let block = vec![0u8; 4096];
            while writer.push(&block) {}
        });
        // The feeder fills the buffer and waits; dropping the reader releases it.
        drop(reader);
        feeder.join().expect("the feeder stopped");
    }
}
