//! What each turn changed in a conversation's git work tree. A snapshot when a turn
//! starts and one when it ends, both private commits (`snapshot.rs`); their
//! difference is the turn's `changes` message (`diff.rs`); a turn can be reverted
//! (`revert.rs`). Nothing here touches the user's index, branch or stash, and
//! nothing here may hold a turn up: a failure becomes a note in the log.

mod diff;
pub(crate) mod git;
mod revert;
mod snapshot;

use std::path::Path;

use app::protocol::{Changes, ChangesDiff};

pub use revert::revert;
pub use snapshot::Repo;

/// Bytes of changed and untracked files a snapshot stores when not told otherwise.
pub const DEFAULT_SNAPSHOT_LIMIT: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("git cannot run: {0}")]
    Spawn(std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Git { command: String, stderr: String },
    #[error("git {command} took longer than {secs}s", secs = git::GIT_TIMEOUT.as_secs())]
    Timeout { command: String },
    #[error(
        "the work tree has {} MiB of changed and untracked files, more than the {} MiB a snapshot may store (--max-snapshot-mb)",
        size >> 20,
        limit >> 20
    )]
    TooLarge { size: u64, limit: u64 },
    #[error("unexpected output from git: {0}")]
    Parse(String),
    #[error("{0}")]
    Io(std::io::Error),
    /// Files changed again since the turn: reverting would lose that work.
    #[error("{0}")]
    Conflict(String),
}

/// The snapshot taken when a turn started.
pub enum TurnStart {
    /// The conversation's directory is in no git work tree: nothing is recorded.
    Untracked,
    /// The start could not be recorded; the turn's end says why.
    Failed(ChangesError),
    Recorded {
        repo: Repo,
        before: String,
    },
}

/// Snapshots the work tree `dir` is in as a turn starts.
pub async fn begin_turn(dir: &Path, conversation: &str, limit: u64) -> TurnStart {
    let repo = match Repo::find(dir).await {
        Ok(Some(repo)) => repo,
        Ok(None) => {
            return match git_dir_of(dir) {
                // Git rejects it (a broken `HEAD`, say): the person expects a diff.
                Some(git_dir) => TurnStart::Failed(ChangesError::Git {
                    command: "rev-parse".into(),
                    stderr: format!("{} is not a repository git can read", git_dir.display()),
                }),
                None => TurnStart::Untracked,
            };
        }
        // Without git, or with a repository it cannot read, there is no telling
        // whether this is a work tree; say so only where one clearly is.
        Err(err) if git_dir_of(dir).is_some() => return TurnStart::Failed(err),
        Err(_) => return TurnStart::Untracked,
    };
    let before = match repo.snapshot(limit).await {
        Ok(before) => before,
        Err(err) => return TurnStart::Failed(err),
    };
    match repo.keep(conversation, &before).await {
        Ok(()) => TurnStart::Recorded { repo, before },
        Err(err) => TurnStart::Failed(err),
    }
}

/// The nearest `.git` above `dir`, found without git.
fn git_dir_of(dir: &Path) -> Option<std::path::PathBuf> {
    dir.ancestors()
        .map(|d| d.join(".git"))
        .find(|git_dir| git_dir.exists())
}

/// What a turn's end adds to the log.
pub enum TurnEnd {
    Nothing,
    Changes(Changes),
    /// The changes could not be recorded: a note saying why.
    Note(String),
}

/// Snapshots the work tree again as a turn ends and compares it with its start.
pub async fn end_turn(start: TurnStart, conversation: &str, limit: u64) -> TurnEnd {
    let (repo, before) = match start {
        TurnStart::Untracked => return TurnEnd::Nothing,
        TurnStart::Failed(err) => return TurnEnd::Note(not_recorded(&err)),
        TurnStart::Recorded { repo, before } => (repo, before),
    };
    let end = match compare(&repo, conversation, &before, limit, None).await {
        Ok(Some(changes)) => return TurnEnd::Changes(changes),
        Ok(None) => TurnEnd::Nothing,
        Err(err) => TurnEnd::Note(not_recorded(&err)),
    };
    // No `changes` message names the first snapshot: nothing will read it.
    repo.release(conversation, &before).await;
    end
}

fn not_recorded(err: &ChangesError) -> String {
    format!("What this turn changed in the work tree was not recorded: {err}.")
}

/// Snapshots the tree now and returns its changes since `before`, or `None` when
/// nothing changed.
async fn compare(
    repo: &Repo,
    conversation: &str,
    before: &str,
    limit: u64,
    revert_of: Option<u64>,
) -> Result<Option<Changes>, ChangesError> {
    let after = repo.snapshot(limit).await?;
    let files = diff::summary(&repo.root, before, &after).await?;
    if files.is_empty() {
        return Ok(None);
    }
    repo.keep(conversation, &after).await?;
    Ok(Some(Changes {
        root: repo.root.display().to_string(),
        before: before.to_string(),
        added: files.iter().map(|f| f.added).sum(),
        removed: files.iter().map(|f| f.removed).sum(),
        files,
        after,
        revert_of,
    }))
}

/// The full diff from snapshot `from` to snapshot `to`.
pub async fn diff_between(
    root: &Path,
    from: &str,
    to: &str,
    from_idx: u64,
    to_idx: u64,
) -> Result<ChangesDiff, ChangesError> {
    let files = diff::summary(root, from, to).await?;
    let added = files.iter().map(|f| f.added).sum();
    let removed = files.iter().map(|f| f.removed).sum();
    let files = diff::patches(root, from, to, files).await?;
    Ok(ChangesDiff {
        from_idx,
        to_idx,
        root: root.display().to_string(),
        files,
        added,
        removed,
    })
}

/// Whether `id` can be a snapshot's commit id (they come from the log, but are
/// handed to git: never an option, never a revision expression).
pub fn is_commit_id(id: &str) -> bool {
    (40..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}
