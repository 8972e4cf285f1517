//! Run one shell command in a fresh pseudo-terminal and stream its output.
//!
//! Threads and tasks per command:
//! - a reader `std::thread` blocks on the PTY master and feeds raw bytes into
//!   a bounded pipe (`pipe.rs`) that stalls it when the consumer is slow, which
//!   stops draining the PTY and so backpressures the child itself;
//! - a waiter `std::thread` blocks in `wait()` for the child's exit status;
//! - a batcher tokio task decodes bytes into text, batches it, and sends
//!   `PtyEvent`s to the consumer, finishing with exactly one `Exited`.
//!
//! Dedicated threads rather than `spawn_blocking` because they can block for
//! the whole life of the command and must not eat the blocking pool.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::{mpsc, oneshot, watch};

mod batch;
mod pipe;

use batch::batch_loop;
use pipe::PipeWriter;

const READ_BUF_SIZE: usize = 64 * 1024;
/// At most this many output chunks (16 × 32,000 chars) are appended to the log in one
/// write. The store writes one batch at a time for every conversation, so a quiet
/// conversation's line may wait behind a flood's batch; 4 measured the same latency
/// under a flood (the line waits for a CPU, not for the write) and 64 no faster.
pub const WRITE_BATCH: usize = 16;
const EVENT_CHANNEL_CAPACITY: usize = 64;
/// Delay between the steps of `cancel()`'s SIGINT → SIGTERM → SIGKILL.
const CANCEL_STEP: Duration = Duration::from_secs(2);

/// What to run and where.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// Passed to `bash -c`.
    pub command: String,
    pub cwd: PathBuf,
    /// Names removed from the inherited environment (e.g. secrets of the
    /// server itself).
    pub env_remove: Vec<String>,
    /// Applied after `env_remove` and after `TERM`, so they may override it.
    pub env_set: Vec<(String, String)>,
    pub cols: u16,
    pub rows: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PtyEvent {
    /// Decoded terminal text, at most `MAX_CHUNK_CHARS` chars, raw control
    /// sequences included.
    Output(String),
    /// Always the last event.
    Exited(ExitInfo),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// `None` when the process was killed by a signal (or could not be
    /// waited for).
    pub exit_code: Option<i32>,
    /// Signal name such as `"SIGKILL"` when the process died from a signal.
    /// Falls back to the C library's description if it is not recognised.
    pub signal: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error("spawn must be called from within a tokio runtime")]
    NoRuntime,
    #[error("working directory {0:?} is not a directory")]
    BadCwd(PathBuf),
    #[error("failed to open pty: {0}")]
    Open(String),
    #[error("failed to spawn command: {0}")]
    Spawn(String),
    #[error("spawned child has no process id")]
    NoPid,
    #[error("pty i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to signal process group: {0}")]
    Signal(#[from] nix::Error),
    #[error("failed to start thread: {0}")]
    Thread(std::io::Error),
}

/// Lifecycle of the command, only ever moving forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// The direct child was reaped; descendants may still hold the PTY.
    ChildExited,
    /// The batcher stopped: `Exited` is (being) delivered and the group is
    /// presumed gone, so its pgid may be recycled by the kernel.
    Finished,
}

struct Shared {
    pid: i32,
    phase: watch::Sender<Phase>,
    cancel_started: AtomicBool,
}

impl Shared {
    fn advance(&self, to: Phase) {
        self.phase.send_if_modified(|p| {
            let moved = *p < to;
            if moved {
                *p = to;
            }
            moved
        });
    }

    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    fn signal_group(&self, sig: Signal) -> Result<(), nix::Error> {
        // Once finished, the pgid may already belong to an unrelated new
        // process group; never signal it then.
        if self.phase() == Phase::Finished {
            return Ok(());
        }
        // portable-pty's unix spawn calls setsid() in the child, so the
        // child's pid is also its process-group id.
        match killpg(Pid::from_raw(self.pid), sig) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Handle to a running command. Dropping it does not stop the command; call
/// [`PtyHandle::cancel`] for that.
pub struct PtyHandle {
    shared: Arc<Shared>,
    writer: Mutex<Box<dyn Write + Send>>,
    // Kept so the PTY could be resized later and to keep the master alive as
    // long as the handle exists.
    master: Mutex<Box<dyn MasterPty + Send>>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for PtyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyHandle")
            .field("pid", &self.shared.pid)
            .field("phase", &self.shared.phase())
            .finish_non_exhaustive()
    }
}

impl PtyHandle {
    /// Pid of `bash`, which is also the process-group and session id.
    pub fn pid(&self) -> u32 {
        self.shared.pid.unsigned_abs()
    }

    /// Writes bytes to the terminal as if typed (e.g. `b"y\r"`).
    ///
    /// This is a blocking write; it only stalls if the child has stopped
    /// reading and the terminal's input buffer (a few KiB) is full.
    pub fn write_input(&self, data: &[u8]) -> Result<(), PtyError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(data)?;
        w.flush()?;
        Ok(())
    }

    /// Sends `sig` to the whole process group. A group that is already gone
    /// is not an error, and after `Exited` has been produced this is a no-op
    /// because the pgid may have been reused by then.
    pub fn signal_group(&self, sig: Signal) -> Result<(), PtyError> {
        Ok(self.shared.signal_group(sig)?)
    }

    /// Stops the command: SIGINT to the group, then SIGTERM after 2 s, then
    /// SIGKILL after 2 more s, stopping as soon as the command has finished.
    /// Idempotent, and returns at once.
    pub fn cancel(&self) {
        if self.shared.cancel_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        self.runtime.spawn(async move {
            let mut phase = shared.phase.subscribe();
            for (sig, wait) in [
                (Signal::SIGINT, Some(CANCEL_STEP)),
                (Signal::SIGTERM, Some(CANCEL_STEP)),
                (Signal::SIGKILL, None),
            ] {
                if shared.phase() == Phase::Finished {
                    return;
                }
                if let Err(e) = shared.signal_group(sig) {
                    tracing::warn!(pid = shared.pid, ?sig, error = %e, "cancel: killpg failed");
                }
                let Some(wait) = wait else { return };
                let finished = phase.wait_for(|p| *p == Phase::Finished);
                if tokio::time::timeout(wait, finished).await.is_ok() {
                    return;
                }
            }
        });
    }

    /// True once the direct child (`bash`) has exited. Output may still be
    /// in flight; `PtyEvent::Exited` marks the real end.
    pub fn is_exited(&self) -> bool {
        self.shared.phase() >= Phase::ChildExited
    }

    /// Changes the terminal size; the child receives SIGWINCH.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), PtyError> {
        let master = self.master.lock().unwrap_or_else(|e| e.into_inner());
        master
            .resize(pty_size(cols, rows))
            .map_err(|e| PtyError::Io(std::io::Error::other(format!("{e:#}"))))
    }
}

fn pty_size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

/// Starts `bash -c <command>` in a new PTY. Must be called within a tokio
/// runtime.
pub fn spawn(spec: SpawnSpec) -> Result<(PtyHandle, mpsc::Receiver<PtyEvent>), PtyError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| PtyError::NoRuntime)?;
    // portable-pty silently falls back to $HOME for a missing cwd; running a
    // command somewhere other than asked is worse than failing.
    if !spec.cwd.is_dir() {
        return Err(PtyError::BadCwd(spec.cwd));
    }

    let pair = native_pty_system()
        .openpty(pty_size(spec.cols, spec.rows))
        .map_err(|e| PtyError::Open(format!("{e:#}")))?;

    let mut cmd = CommandBuilder::new("bash");
    cmd.arg("-c");
    cmd.arg(&spec.command);
    cmd.cwd(&spec.cwd);
    for name in &spec.env_remove {
        cmd.env_remove(name);
    }
    cmd.env("TERM", "xterm-256color");
    for (k, v) in &spec.env_set {
        cmd.env(k, v);
    }

    let mut child = pair
        .slave
        .spawn_command(cmd)
        .map_err(|e| PtyError::Spawn(format!("{e:#}")))?;
    // The reader only sees EOF once every slave fd is closed, ours included.
    drop(pair.slave);

    let master = pair.master;
    let pid = match child.process_id().and_then(|p| i32::try_from(p).ok()) {
        Some(pid) => pid,
        None => {
            let _ = child.kill();
            return Err(PtyError::NoPid);
        }
    };
    let setup = || -> Result<_, PtyError> {
        let reader = master
            .try_clone_reader()
            .map_err(|e| PtyError::Open(format!("{e:#}")))?;
        let writer = master
            .take_writer()
            .map_err(|e| PtyError::Open(format!("{e:#}")))?;
        Ok((reader, writer))
    };
    let (reader, writer) = match setup() {
        Ok(rw) => rw,
        Err(e) => {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait();
            return Err(e);
        }
    };

    let (phase_tx, _) = watch::channel(Phase::Running);
    let shared = Arc::new(Shared {
        pid,
        phase: phase_tx,
        cancel_started: AtomicBool::new(false),
    });

    let (raw_tx, raw_rx) = pipe::pipe();
    let (exit_tx, exit_rx) = oneshot::channel::<ExitInfo>();
    let (event_tx, event_rx) = mpsc::channel::<PtyEvent>(EVENT_CHANNEL_CAPACITY);

    // Start the waiter first: if a later step fails, the child is still
    // reaped rather than left as a zombie.
    let waiter_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name(format!("pty-wait-{pid}"))
        .spawn(move || {
            let info = match child.wait() {
                Ok(status) => exit_info(&status),
                Err(e) => {
                    tracing::warn!(pid, error = %e, "waiting for pty child failed");
                    ExitInfo {
                        exit_code: None,
                        signal: None,
                    }
                }
            };
            waiter_shared.advance(Phase::ChildExited);
            let _ = exit_tx.send(info);
        })
        .map_err(|e| {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            PtyError::Thread(e)
        })?;

    if let Err(e) = std::thread::Builder::new()
        .name(format!("pty-read-{pid}"))
        .spawn(move || read_loop(reader, raw_tx))
    {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        return Err(PtyError::Thread(e));
    }

    runtime.spawn(batch_loop(Arc::clone(&shared), raw_rx, exit_rx, event_tx));

    let handle = PtyHandle {
        shared,
        writer: Mutex::new(writer),
        master: Mutex::new(master),
        runtime,
    };
    Ok((handle, event_rx))
}

/// Waits for the PTY's next events and takes whatever else is already waiting, up to
/// `WRITE_BATCH` output chunks, so a flood is appended several chunks per write.
/// The command's exit, when it comes, is put in `exit`. Returns the output taken
/// (empty if only the exit came), or `None` once the PTY has nothing more.
pub async fn next_batch(
    events: &mut mpsc::Receiver<PtyEvent>,
    exit: &mut ExitInfo,
) -> Option<Vec<String>> {
    let mut batch = Vec::new();
    let mut next = Some(events.recv().await?);
    while let Some(event) = next.take() {
        match event {
            PtyEvent::Output(text) => batch.push(text),
            PtyEvent::Exited(info) => *exit = info,
        }
        if batch.len() < WRITE_BATCH {
            next = events.try_recv().ok();
        }
    }
    Some(batch)
}

fn read_loop(mut reader: Box<dyn Read + Send>, pipe: PipeWriter) {
    let mut buf = vec![0u8; READ_BUF_SIZE];
    loop {
        match reader.read(&mut buf) {
            // portable-pty already maps Linux's EIO (slave side closed) to 0.
            Ok(0) => return,
            Ok(n) => {
                if !pipe.push(&buf[..n]) {
                    // Batcher gave up (EOF grace expired); nobody listens.
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "pty read failed; treating as EOF");
                return;
            }
        }
    }
}

fn exit_info(status: &portable_pty::ExitStatus) -> ExitInfo {
    // portable-pty reports a signal death as exit code 1 plus the C
    // library's strsignal() text ("Killed"), not a signal name.
    match status.signal() {
        Some(desc) => ExitInfo {
            exit_code: None,
            signal: Some(signal_name(desc)),
        },
        None => ExitInfo {
            exit_code: i32::try_from(status.exit_code()).ok(),
            signal: None,
        },
    }
}

/// Maps a strsignal() description (glibc or musl wording) back to a name.
fn signal_name(desc: &str) -> String {
    let sig = match desc {
        "Hangup" => Some(Signal::SIGHUP),
        "Interrupt" => Some(Signal::SIGINT),
        "Quit" => Some(Signal::SIGQUIT),
        "Illegal instruction" => Some(Signal::SIGILL),
        "Trace/breakpoint trap" => Some(Signal::SIGTRAP),
        "Aborted" => Some(Signal::SIGABRT),
        "Bus error" => Some(Signal::SIGBUS),
        "Floating point exception" | "Arithmetic exception" => Some(Signal::SIGFPE),
        "Killed" => Some(Signal::SIGKILL),
        "User defined signal 1" => Some(Signal::SIGUSR1),
        "Segmentation fault" => Some(Signal::SIGSEGV),
        "User defined signal 2" => Some(Signal::SIGUSR2),
        "Broken pipe" => Some(Signal::SIGPIPE),
        "Alarm clock" => Some(Signal::SIGALRM),
        "Terminated" => Some(Signal::SIGTERM),
        "CPU time limit exceeded" => Some(Signal::SIGXCPU),
        "File size limit exceeded" => Some(Signal::SIGXFSZ),
        "Virtual timer expired" => Some(Signal::SIGVTALRM),
        "Profiling timer expired" => Some(Signal::SIGPROF),
        "Bad system call" => Some(Signal::SIGSYS),
        _ => desc
            .strip_prefix("Signal ")
            .or_else(|| desc.strip_prefix("Unknown signal "))
            .and_then(|n| n.trim().parse::<i32>().ok())
            .and_then(|n| Signal::try_from(n).ok()),
    };
    sig.map_or_else(|| desc.to_owned(), |s| s.as_str().to_owned())
}

#[cfg(test)]
mod tests;
