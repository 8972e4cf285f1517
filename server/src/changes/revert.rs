//! Reverting a turn: the files it changed go back to how they were before it,
//! written from its first snapshot through a temporary index, so the user's index
//! stays as it was. Refused when any of those files changed again since.

use std::collections::BTreeSet;
use std::path::Path;

use app::protocol::Changes;

use super::git::{GitCommand, nul_fields};
use super::{ChangesError, Repo, compare};

/// How many changed files a refusal names before "and N more".
const NAMED: usize = 5;

/// Restores the files `turn` changed to their state before it; returns the changes
/// the revert made (`revert_of` set to `turn_idx`).
pub async fn revert(
    repo: &Repo,
    conversation: &str,
    turn: &Changes,
    turn_idx: u64,
    limit: u64,
) -> Result<Changes, ChangesError> {
    let now = repo.snapshot(limit).await?;
    let touched: BTreeSet<String> = turn
        .files
        .iter()
        .flat_map(|f| std::iter::once(f.path.clone()).chain(f.old_path.clone()))
        .collect();
    let since = GitCommand::new(&repo.root, &["diff-tree", "-r", "-z", "--name-only"])
        .arg(&turn.after)
        .arg(&now)
        .run()
        .await?;
    let changed_again: Vec<String> = nul_fields(&since.stdout)
        .into_iter()
        .filter(|p| touched.contains(p))
        .collect();
    if !changed_again.is_empty() {
        let mut names = changed_again
            .iter()
            .take(NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if changed_again.len() > NAMED {
            names.push_str(&format!(" and {} more", changed_again.len() - NAMED));
        }
        return Err(ChangesError::Conflict(format!(
            "cannot revert: changed again since that turn: {names}"
        )));
    }

    // From here on `now` is the revert's first snapshot, which its message names.
    repo.keep(conversation, &now).await?;
    let before_files = GitCommand::new(&repo.root, &["ls-tree", "-r", "-z", "--name-only"])
        .arg(&turn.before)
        .run()
        .await?;
    let existed: BTreeSet<String> = nul_fields(&before_files.stdout).into_iter().collect();
    let (restore, remove): (Vec<&String>, Vec<&String>) =
        touched.iter().partition(|p| existed.contains(*p));
    if !restore.is_empty() {
        checkout(repo, &turn.before, &restore).await?;
    }
    let root = repo.root.clone();
    let remove: Vec<String> = remove.into_iter().cloned().collect();
    tokio::task::spawn_blocking(move || remove_files(&root, &remove))
        .await
        .map_err(|e| ChangesError::Io(std::io::Error::other(e)))??;

    compare(repo, conversation, &now, limit, Some(turn_idx))
        .await?
        .ok_or_else(|| ChangesError::Conflict("the turn's changes are already undone".into()))
}

/// Writes `paths` as they are in snapshot `commit`, through a private index.
async fn checkout(repo: &Repo, commit: &str, paths: &[&String]) -> Result<(), ChangesError> {
    let scratch = tempfile::Builder::new()
        .prefix("tether-revert-")
        .tempdir()
        .map_err(ChangesError::Io)?;
    let index = scratch.path().join("index");
    GitCommand::new(&repo.root, &["read-tree", commit])
        .index(&index)
        .run()
        .await?;
    let list: Vec<u8> = paths
        .iter()
        .flat_map(|p| p.bytes().chain(std::iter::once(0)))
        .collect();
    GitCommand::new(&repo.root, &["checkout-index", "-f", "-z", "--stdin"])
        .index(&index)
        .stdin(list)
        .run()
        .await?;
    Ok(())
}

/// Removes files the turn created, and the directories that held only them.
fn remove_files(root: &Path, paths: &[String]) -> Result<(), ChangesError> {
    for path in paths {
        let full = root.join(path);
        match std::fs::remove_file(&full) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ChangesError::Io(e)),
        }
        let mut dir = full.parent();
        while let Some(d) = dir.filter(|d| *d != root && d.starts_with(root)) {
            // Fails, and stops the climb, at the first directory that is not empty.
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    Ok(())
}
