//! Stdout shared between the SDK and the `garbage` directive.
//!
//! The SDK may hand its writer a line in several partial writes, so a raw line written
//! by someone else could land in the middle of a JSON message. Everything bound for
//! stdout therefore goes through one writer task as whole lines: the SDK's bytes are
//! held back until their newline arrives.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// Whole lines queued for stdout. Bounded, so a reader that stops reading stops the
/// SDK (and so `flood`) too, instead of letting the queue grow.
pub type LineSender = mpsc::Sender<Vec<u8>>;

/// Starts the writer task; returns the SDK's half, the sender for raw lines, and the
/// task, which ends once every sender is gone and the queue is written.
pub fn stdout_lines() -> (LineWriter, LineSender, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let task = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(bytes) = rx.recv().await {
            if stdout.write_all(&bytes).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let writer = LineWriter {
        tx: PollSender::new(tx.clone()),
        pending: Vec::new(),
    };
    (writer, tx, task)
}

/// The SDK's writer: passes on only complete lines.
pub struct LineWriter {
    tx: PollSender<Vec<u8>>,
    pending: Vec<u8>,
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.tx.poll_reserve(cx)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        this.pending.extend_from_slice(buf);
        match this.pending.iter().rposition(|b| *b == b'\n') {
            Some(end) => {
                let rest = this.pending.split_off(end + 1);
                let lines = std::mem::replace(&mut this.pending, rest);
                this.tx
                    .send_item(lines)
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
            }
            None => {
                this.tx.abort_send();
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Queued lines count as flushed: the writer task flushes after each of them.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().tx.close();
        Poll::Ready(Ok(()))
    }
}
