//! The difference between two snapshots: a summary for the log, and the unified
//! diff per file for the review panel, read from git's output as it streams so a
//! huge diff never sits whole in memory.

use std::path::Path;
use std::process::Stdio;

use app::protocol::{FileChange, FileDiff, FileStatus};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::ChangesError;
use super::git::{GIT_TIMEOUT, GitCommand, nul_fields};

/// The most diff text sent for one file; a longer one is summarized.
pub const MAX_FILE_PATCH: usize = 8 << 20;
/// The most diff text sent for one request; later files are summarized.
pub const MAX_TOTAL_PATCH: usize = 48 << 20;

/// Which files changed between `from` and `to`, with line counts, sorted by path.
pub async fn summary(root: &Path, from: &str, to: &str) -> Result<Vec<FileChange>, ChangesError> {
    let status = GitCommand::new(root, &["diff-tree", "-r", "-z", "-M", "--name-status"])
        .arg(from)
        .arg(to)
        .run()
        .await?;
    let numstat = GitCommand::new(root, &["diff-tree", "-r", "-z", "-M", "--numstat"])
        .arg(from)
        .arg(to)
        .run()
        .await?;
    let mut files = parse_name_status(&nul_fields(&status.stdout));
    let counts = parse_numstat(&numstat.stdout);
    // Both lists come from the same diff queue, in the same order.
    if counts.len() != files.len() {
        return Err(ChangesError::Parse(format!(
            "{} files but {} line counts",
            files.len(),
            counts.len()
        )));
    }
    for (file, count) in files.iter_mut().zip(counts) {
        match count {
            Some((added, removed)) => {
                file.added = added;
                file.removed = removed;
            }
            None => file.binary = true,
        }
    }
    Ok(files)
}

/// `--name-status -z`: a status field, then one path (two for a rename or copy).
fn parse_name_status(fields: &[String]) -> Vec<FileChange> {
    let mut files = Vec::new();
    let mut it = fields.iter();
    while let Some(code) = it.next() {
        let status = match code.chars().next() {
            Some('A') => FileStatus::Added,
            Some('D') => FileStatus::Deleted,
            Some('R') | Some('C') => FileStatus::Renamed,
            Some('T') => FileStatus::TypeChanged,
            _ => FileStatus::Modified,
        };
        let old_path = if status == FileStatus::Renamed {
            it.next().cloned()
        } else {
            None
        };
        let Some(path) = it.next().cloned() else {
            break;
        };
        files.push(FileChange {
            path,
            old_path,
            status,
            added: 0,
            removed: 0,
            binary: false,
        });
    }
    files
}

/// `--numstat -z`: `added\tremoved\tpath\0`, or `added\tremoved\t\0old\0new\0` for a
/// rename; `-` counts mark a binary file.
fn parse_numstat(bytes: &[u8]) -> Vec<Option<(u64, u64)>> {
    let mut out = Vec::new();
    let mut fields = bytes.split(|b| *b == 0).peekable();
    while let Some(field) = fields.next() {
        if field.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(field);
        let mut parts = text.splitn(3, '\t');
        let (added, removed, path) = (parts.next(), parts.next(), parts.next());
        out.push(
            match (
                added.and_then(|a| a.parse().ok()),
                removed.and_then(|r| r.parse().ok()),
            ) {
                (Some(a), Some(r)) => Some((a, r)),
                _ => None,
            },
        );
        if path.is_some_and(str::is_empty) {
            // A rename: its two paths follow as fields of their own.
            fields.next();
            fields.next();
        }
    }
    out
}

/// The unified diff of every file between `from` and `to`, in `files`' order.
pub async fn patches(
    root: &Path,
    from: &str,
    to: &str,
    files: Vec<FileChange>,
) -> Result<Vec<FileDiff>, ChangesError> {
    let mut command = GitCommand::new(
        root,
        &[
            "diff-tree",
            "-r",
            "-M",
            "-p",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
        ],
    )
    .arg(from)
    .arg(to)
    .command();
    command.stdin(Stdio::null());
    let mut child = command.spawn().map_err(ChangesError::Spawn)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ChangesError::Parse("git diff-tree has no output".into()))?;
    let mut stderr = child.stderr.take();
    let read = read_patches(BufReader::new(stdout), files);
    let diffs = match tokio::time::timeout(GIT_TIMEOUT, read).await {
        Ok(diffs) => diffs?,
        Err(_) => {
            return Err(ChangesError::Timeout {
                command: "diff-tree".into(),
            });
        }
    };
    let status = child.wait().await.map_err(ChangesError::Spawn)?;
    if !status.success() {
        let mut message = String::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.read_to_string(&mut message).await;
        }
        return Err(ChangesError::Git {
            command: "diff-tree".into(),
            stderr: message.trim().to_string(),
        });
    }
    Ok(diffs)
}

async fn read_patches<R: tokio::io::AsyncBufRead + Unpin>(
    mut reader: R,
    files: Vec<FileChange>,
) -> Result<Vec<FileDiff>, ChangesError> {
    let mut diffs: Vec<FileDiff> = Vec::with_capacity(files.len());
    let mut files = files.into_iter();
    let mut total = 0usize;
    let mut in_hunks = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(ChangesError::Io)?
            == 0
        {
            break;
        }
        if line.starts_with(b"diff --git ") {
            let change = files.next().ok_or_else(|| {
                ChangesError::Parse("git printed more files than it counted".into())
            })?;
            diffs.push(FileDiff {
                change,
                patch: String::new(),
                too_large: false,
            });
            in_hunks = false;
            continue;
        }
        let Some(current) = diffs.last_mut() else {
            continue;
        };
        in_hunks |= line.starts_with(b"@@");
        if !in_hunks || current.change.binary || current.too_large {
            continue;
        }
        if current.patch.len() + line.len() > MAX_FILE_PATCH || total + line.len() > MAX_TOTAL_PATCH
        {
            total -= current.patch.len();
            current.patch = String::new();
            current.too_large = true;
            continue;
        }
        total += line.len();
        current.patch.push_str(&String::from_utf8_lossy(&line));
    }
    if files.next().is_some() {
        return Err(ChangesError::Parse(
            "git printed fewer files than it counted".into(),
        ));
    }
    Ok(diffs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_take_two_paths_in_both_formats() {
        let fields: Vec<String> = ["M", "a.txt", "R087", "old name", "new name", "D", "gone"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let files = parse_name_status(&fields);
        assert_eq!(files.len(), 3);
        assert_eq!(files[1].status, FileStatus::Renamed);
        assert_eq!(files[1].old_path.as_deref(), Some("old name"));
        assert_eq!(files[1].path, "new name");
        assert_eq!(files[2].status, FileStatus::Deleted);

        let numstat = b"1\t2\ta.txt\x003\t0\t\x00old name\x00new name\x00-\t-\tgone\x00";
        assert_eq!(
            parse_numstat(numstat),
            vec![Some((1, 2)), Some((3, 0)), None]
        );
    }

    #[tokio::test]
    async fn patches_keep_only_hunks_and_summarize_what_is_too_large() {
        let big = "+x\n".repeat(MAX_FILE_PATCH / 3 + 1);
        let text = format!(
            "diff --git a/a b/a\nindex 1..2 100644\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-old\n+new\n\
             diff --git a/big b/big\n--- a/big\n+++ b/big\n@@ -0,0 +1 @@\n{big}\
             diff --git a/bin b/bin\nBinary files a/bin and b/bin differ\n"
        );
        let file = |path: &str, binary| FileChange {
            path: path.into(),
            old_path: None,
            status: FileStatus::Modified,
            added: 1,
            removed: 1,
            binary,
        };
        let diffs = read_patches(
            text.as_bytes(),
            vec![file("a", false), file("big", false), file("bin", true)],
        )
        .await
        .expect("the patches");
        assert_eq!(diffs[0].patch, "@@ -1 +1 @@\n-old\n+new\n");
        assert!(diffs[1].too_large && diffs[1].patch.is_empty());
        assert!(!diffs[2].too_large && diffs[2].patch.is_empty());
    }
}
