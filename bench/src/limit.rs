//! The raw PTY limit: how fast this machine reads a command's output off a
//! pseudo-terminal with nothing else in the way.
//!
//! How fast a PTY drains depends on how its reader reads: a reader that wakes for
//! every line costs the writer a context switch per line, one that lets output pile
//! up costs it blocked writes. A single reader is therefore not a limit — Tether and
//! ttyd both beat the old one on `seq` and `yes`. Every run tries each of `READERS`
//! and the fastest complete one is the limit for that run. Checking the output runs on
//! a thread of its own, so the reader never waits on anything but the PTY.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use crate::check::OutputCheck;
use crate::cpu::MachineCpu;
use tether_testkit::Result;

/// How a reader takes bytes off the PTY.
#[derive(Clone, Copy, Debug)]
pub enum Reader {
    /// Reads whatever is there as soon as it is there, into a buffer of this size.
    Eager(usize),
    /// After a read that returned less than a full terminal buffer (4 KiB), waits
    /// this long before the next read, so the writer runs for a while undisturbed.
    Paced(Duration),
    /// util-linux `script` relays the PTY to a pipe: the same job done by a C
    /// program, as a cross-check of the readers above.
    Script,
}

/// The readers every run tries.
pub const READERS: &[Reader] = &[
    Reader::Eager(64 * 1024),
    Reader::Eager(1024 * 1024),
    Reader::Paced(Duration::from_micros(50)),
    Reader::Script,
];

impl Reader {
    pub fn name(self) -> String {
        match self {
            Reader::Eager(size) => format!("eager {} KiB", size / 1024),
            Reader::Paced(pause) => format!("paced {} µs", pause.as_micros()),
            Reader::Script => "script(1)".into(),
        }
    }
}

/// What one reader got: the time from spawn to EOF and the checked output.
pub struct RawRun {
    pub took: Duration,
    pub check: OutputCheck,
    /// CPUs the whole machine kept busy meanwhile.
    pub busy_cores: Option<f64>,
}

/// Runs `bash -c command` in a 120×32 PTY read by `reader`.
pub fn run(reader: Reader, command: &str, seq_exact: bool) -> Result<RawRun> {
    // Bounded so a checker that falls far behind cannot grow memory without limit;
    // deep enough that the reader never waits for it in practice.
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4096);
    let checker = std::thread::spawn(move || {
        let mut check = OutputCheck::new(seq_exact);
        for chunk in rx {
            check.feed(&chunk);
        }
        check
    });
    let cpu = MachineCpu::now();
    let took = match reader {
        Reader::Eager(size) => read_pty(command, size, None, &tx),
        Reader::Paced(pause) => read_pty(command, 64 * 1024, Some(pause), &tx),
        Reader::Script => read_script(command, &tx),
    };
    let busy_cores = cpu.and_then(|c| c.busy_cores_since());
    drop(tx);
    let check = checker.join().map_err(|_| "the output check panicked")?;
    Ok(RawRun {
        took: took?,
        check,
        busy_cores,
    })
}

fn read_pty(
    command: &str,
    size: usize,
    pause: Option<Duration>,
    tx: &mpsc::SyncSender<Vec<u8>>,
) -> Result<Duration> {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 32,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| format!("openpty: {e}"))?;
    let mut cmd = CommandBuilder::new("bash");
    cmd.arg("-c");
    cmd.arg(command);
    cmd.env("TERM", "xterm-256color");
    let start = Instant::now();
    let mut child = pair
        .slave
        .spawn_command(cmd)
        .map_err(|e| format!("spawn: {e}"))?;
    drop(pair.slave);
    let mut pty = pair
        .master
        .try_clone_reader()
        .map_err(|e| format!("reader: {e}"))?;
    let elapsed = drain(&mut pty, size, pause, tx, start)?;
    let _ = child.wait();
    Ok(elapsed)
}

/// `script -qefc command /dev/null`, its stdout read from a pipe.
fn read_script(command: &str, tx: &mpsc::SyncSender<Vec<u8>>) -> Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new("script")
        .args(["-q", "-e", "-f", "-c", command, "/dev/null"])
        .env("SHELL", "/bin/bash")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("script(1): {e}"))?;
    let mut out = child.stdout.take().ok_or("script(1): no stdout")?;
    let elapsed = drain(&mut out, 1024 * 1024, None, tx, start)?;
    let _ = child.wait();
    Ok(elapsed)
}

fn drain(
    source: &mut impl Read,
    size: usize,
    pause: Option<Duration>,
    tx: &mpsc::SyncSender<Vec<u8>>,
    start: Instant,
) -> Result<Duration> {
    let mut buf = vec![0u8; size];
    loop {
        match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tx.send(buf[..n].to_vec())
                    .map_err(|_| "the output check stopped")?;
                if let Some(pause) = pause
                    && n < 4096
                {
                    std::thread::sleep(pause);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: the last process holding the PTY's other side has exited.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EIO as i32) => break,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(start.elapsed())
}
