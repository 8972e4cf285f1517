//! Snapshots of a work tree as private commits: tracked changes and untracked,
//! non-ignored files, recorded through a temporary copy of the index so the user's
//! index, branch and stash are never touched. Each snapshot is kept alive by a ref
//! under `refs/tether/<conversation>/`, removed when the conversation restarts.

use std::path::{Path, PathBuf};

use super::ChangesError;
use super::git::{GitCommand, nul_fields};

/// A git work tree a conversation runs in.
#[derive(Clone, Debug)]
pub struct Repo {
    /// The work tree's top directory.
    pub root: PathBuf,
    /// The user's index, which is only ever copied.
    index: PathBuf,
}

impl Repo {
    /// The work tree `dir` is in, or `None` when it is in none.
    pub async fn find(dir: &Path) -> Result<Option<Repo>, ChangesError> {
        let out = GitCommand::new(
            dir,
            &[
                "rev-parse",
                "--is-inside-work-tree",
                "--show-toplevel",
                "--git-path",
                "index",
            ],
        )
        .output()
        .await?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.contains("not a git repository") {
                return Ok(None);
            }
            // A work tree git cannot read (a broken `.git`, a repository owned by
            // someone else): worth a note, where the caller sees a `.git`.
            return Err(ChangesError::Git {
                command: "rev-parse".into(),
                stderr,
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let (Some("true"), Some(root), Some(index)) = (lines.next(), lines.next(), lines.next())
        else {
            return Ok(None);
        };
        Ok(Some(Repo {
            root: PathBuf::from(root),
            // `--git-path` answers relative to the directory git ran in.
            index: dir.join(index),
        }))
    }

    /// Records the work tree as it is now; returns the snapshot's commit id.
    /// Refuses when more than `limit` bytes of changed or untracked files would have
    /// to be stored.
    pub async fn snapshot(&self, limit: u64) -> Result<String, ChangesError> {
        let scratch = tempfile::Builder::new()
            .prefix("tether-snapshot-")
            .tempdir()
            .map_err(ChangesError::Io)?;
        let index = scratch.path().join("index");
        // A copy keeps the user's stat cache, so only changed files are read again.
        let copied = tokio::fs::copy(&self.index, &index).await.is_ok();
        if !copied {
            self.read_head(&index).await?;
        }
        match self.record(&index, limit).await {
            // An index git cannot use on its own (e.g. a split index): start from HEAD.
            Err(ChangesError::Git { .. }) if copied => {
                let _ = tokio::fs::remove_file(&index).await;
                self.read_head(&index).await?;
                self.record(&index, limit).await
            }
            other => other,
        }
    }

    async fn read_head(&self, index: &Path) -> Result<(), ChangesError> {
        let head = GitCommand::new(
            &self.root,
            &["rev-parse", "--verify", "--quiet", "HEAD^{tree}"],
        )
        .output()
        .await?;
        // An unborn branch has no HEAD: an empty index is the right start.
        if head.status.success() {
            let tree = String::from_utf8_lossy(&head.stdout).trim().to_string();
            GitCommand::new(&self.root, &["read-tree", &tree])
                .index(index)
                .run()
                .await?;
        }
        Ok(())
    }

    async fn record(&self, index: &Path, limit: u64) -> Result<String, ChangesError> {
        self.check_size(index, limit).await?;
        let add = GitCommand::new(
            &self.root,
            &[
                "-c",
                "advice.addEmbeddedRepo=false",
                "add",
                "--all",
                "--ignore-errors",
            ],
        )
        .index(index)
        .output()
        .await?;
        // With --ignore-errors, an unreadable file exits 1 and the rest is added; only
        // a fatal error (128) means nothing was.
        if add.status.code() != Some(0) && add.status.code() != Some(1) {
            return Err(ChangesError::Git {
                command: "add".into(),
                stderr: String::from_utf8_lossy(&add.stderr).trim().to_string(),
            });
        }
        let tree = GitCommand::new(&self.root, &["write-tree"])
            .index(index)
            .text()
            .await?;
        GitCommand::new(
            &self.root,
            &[
                "commit-tree",
                &tree,
                "-m",
                "Tether: snapshot of the work tree",
            ],
        )
        .text()
        .await
    }

    /// Counts the bytes `git add` would have to read and store.
    async fn check_size(&self, index: &Path, limit: u64) -> Result<(), ChangesError> {
        let untracked = GitCommand::new(
            &self.root,
            &["ls-files", "-z", "--others", "--exclude-standard"],
        )
        .index(index)
        .run()
        .await?;
        let modified = GitCommand::new(&self.root, &["diff-files", "-z", "--name-only"])
            .index(index)
            .run()
            .await?;
        let mut paths = nul_fields(&untracked.stdout);
        paths.extend(nul_fields(&modified.stdout));
        let root = self.root.clone();
        let size = tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .filter_map(|p| std::fs::symlink_metadata(root.join(p)).ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .await
        .map_err(|e| ChangesError::Io(std::io::Error::other(e)))?;
        if size > limit {
            return Err(ChangesError::TooLarge { size, limit });
        }
        Ok(())
    }

    /// Keeps `commit` from git's garbage collection for as long as `conversation`
    /// needs it.
    pub async fn keep(&self, conversation: &str, commit: &str) -> Result<(), ChangesError> {
        GitCommand::new(
            &self.root,
            &[
                "update-ref",
                &format!("refs/tether/{conversation}/{commit}"),
                commit,
            ],
        )
        .run()
        .await?;
        Ok(())
    }

    /// Lets git collect `commit` again: a snapshot nothing will ask for.
    pub async fn release(&self, conversation: &str, commit: &str) {
        let name = format!("refs/tether/{conversation}/{commit}");
        if let Err(err) = GitCommand::new(&self.root, &["update-ref", "-d", &name])
            .run()
            .await
        {
            tracing::warn!(%err, "cannot remove {name}");
        }
    }

    /// Removes every ref that keeps `conversation`'s snapshots.
    pub async fn forget(&self, conversation: &str) -> Result<usize, ChangesError> {
        let refs = GitCommand::new(
            &self.root,
            &[
                "for-each-ref",
                "--format=%(refname)",
                &format!("refs/tether/{conversation}/"),
            ],
        )
        .text()
        .await?;
        let deletes: String = refs.lines().map(|r| format!("delete {r}\n")).collect();
        if deletes.is_empty() {
            return Ok(0);
        }
        GitCommand::new(&self.root, &["update-ref", "--stdin"])
            .stdin(deletes.clone().into_bytes())
            .run()
            .await?;
        Ok(deletes.lines().count())
    }

    /// Whether `commit` is still in the repository.
    pub async fn has(&self, commit: &str) -> Result<bool, ChangesError> {
        let out = GitCommand::new(
            &self.root,
            &["cat-file", "-e", &format!("{commit}^{{commit}}")],
        )
        .output()
        .await?;
        Ok(out.status.success())
    }
}
