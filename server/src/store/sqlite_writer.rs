//! The SQLite engine's writer thread: it owns the only writing connection, runs the
//! jobs sent to it one at a time and in order, and checkpoints the WAL between them.

use std::cell::Cell;
use std::sync::mpsc;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// A unit of work for the writer thread.
pub(super) type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// The writer checkpoints (copies the WAL into the database file, with an fsync)
/// once the WAL holds this many pages: 1 MiB instead of SQLite's 4 MiB. Every append
/// waits behind a checkpoint in progress, so a small one keeps a line printed during
/// a flood from waiting for 4 MiB to reach the disk; measured, it costs no throughput.
/// (A thread of its own for checkpoints was tried: its fsync stalls the writer's
/// own writes on ext4 for longer still.)
const CHECKPOINT_PAGES: i32 = 250;

thread_local! {
    /// Pages in the WAL after the writer's last commit, as SQLite's WAL hook reports
    /// them (the hook is a plain function, so it has nowhere else to put them). Only
    /// the writer thread's copy is read.
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// Starts the writer thread on `conn`; dropping the returned sender ends it.
pub(super) fn start(conn: Connection) -> std::io::Result<mpsc::Sender<WriteJob>> {
    // Replaces SQLite's automatic checkpoint, which runs inside the commit that fills
    // the WAL and so holds that append's answer for the checkpoint's fsync.
    conn.wal_hook(Some(note_wal_pages));
    let (jobs, queue) = mpsc::channel::<WriteJob>();
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || run(conn, queue))?;
    Ok(jobs)
}

fn note_wal_pages(_: &Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Runs jobs in order, each answering its caller as soon as its transaction commits,
/// and checkpoints after the job that filled the WAL. (Letting appends already
/// waiting go first was tried: under a flood the queue is rarely empty, so
/// checkpoints grew, and one line waited 29 ms behind one.)
fn run(mut conn: Connection, queue: mpsc::Receiver<WriteJob>) {
    // Whether the last checkpoint failed, so a full disk is reported once, not after
    // every append while it lasts.
    let mut failing = false;
    while let Ok(job) = queue.recv() {
        job(&mut conn);
        checkpoint_if_due(&conn, &mut failing);
    }
}

fn checkpoint_if_due(conn: &Connection, failing: &mut bool) {
    if WAL_PAGES.get() < CHECKPOINT_PAGES {
        return;
    }
    // PASSIVE: a reader still on an old snapshot keeps its frames; the rest go now.
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        Ok(()) => {
            WAL_PAGES.set(0);
            *failing = false;
        }
        Err(err) => {
            if !std::mem::replace(failing, true) {
                tracing::warn!(%err, "WAL checkpoint failed; trying again after each write");
            }
        }
    }
}
