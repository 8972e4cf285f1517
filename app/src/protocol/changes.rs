//! What a turn changed in the conversation's git work tree: the `changes` message's
//! summary, the diff fetched on demand, and reverting a turn. See "Changes" in
//! `docs/protocol.md`.

use serde::{Deserialize, Serialize};

/// How one file changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Added,
    Deleted,
    Modified,
    /// Moved (`old_path` says from where), possibly edited too.
    Renamed,
    /// A file became a symlink, a submodule, or the other way round.
    TypeChanged,
}

/// One file of a turn's changes, without its diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Relative to the repository's top directory, `/`-separated.
    pub path: String,
    /// Where a renamed file came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub status: FileStatus,
    /// Lines added (0 for a binary file).
    pub added: u64,
    /// Lines removed (0 for a binary file).
    pub removed: u64,
    /// Git sees the content as binary: counted, never rendered.
    #[serde(default)]
    pub binary: bool,
}

/// On a `changes` message: what one turn (or a revert) changed in the work tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// The repository's top directory: paths are relative to it.
    pub root: String,
    /// Tether's private snapshot of the tree when the turn started.
    pub before: String,
    /// Tether's private snapshot of the tree when the turn ended.
    pub after: String,
    /// Every changed file, sorted by path.
    pub files: Vec<FileChange>,
    /// Lines added over all files.
    pub added: u64,
    /// Lines removed over all files.
    pub removed: u64,
    /// Set when these changes are the revert of the turn whose `changes` message
    /// has this index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_of: Option<u64>,
}

/// One file of `GET changes`: its summary and its unified diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    #[serde(flatten)]
    pub change: FileChange,
    /// The file's hunks as `git diff` prints them, from the first `@@` line on;
    /// empty for binary files, pure renames and diffs left out as too large.
    #[serde(default)]
    pub patch: String,
    /// The diff was longer than the server sends for one file: only the counts are
    /// known.
    #[serde(default)]
    pub too_large: bool,
}

/// `GET /api/conversations/{id}/changes?turn=N` (one turn) or `?since=N` (the net
/// change from turn N's start to the end of the latest turn). `N` is the index of
/// a `changes` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesDiff {
    /// The index of the `changes` message the diff starts from.
    pub from_idx: u64,
    /// The index of the `changes` message it ends at (equal to `from_idx` for one
    /// turn).
    pub to_idx: u64,
    pub root: String,
    pub files: Vec<FileDiff>,
    pub added: u64,
    pub removed: u64,
}

/// `POST /api/conversations/{id}/revert`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevertRequest {
    /// The index of the turn's `changes` message.
    pub turn: u64,
}

/// `POST revert` answers with the index of the `changes` message that records the
/// revert.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevertResponse {
    pub idx: u64,
    pub changes: Changes,
}

/// One review comment, as the browser collects them before sending the review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewComment {
    pub path: String,
    /// First line commented on, in the new version of the file (the old version for
    /// a removed line).
    pub line: u64,
    /// Last line, for a range; equal to `line` for one line.
    pub end_line: u64,
    pub text: String,
}

/// The chat message a review becomes: every comment quoted as `path:line`.
pub fn review_message(comments: &[ReviewComment]) -> String {
    let mut out = String::from("Review of your changes:\n");
    for c in comments {
        let place = if c.end_line > c.line {
            format!("{}:{}-{}", c.path, c.line, c.end_line)
        } else {
            format!("{}:{}", c.path, c.line)
        };
        let text = c.text.trim();
        if text.contains('\n') {
            out.push_str(&format!("\n- {place}:\n"));
            for line in text.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        } else {
            out.push_str(&format!("\n- {place}: {text}\n"));
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(path: &str, line: u64, end_line: u64, text: &str) -> ReviewComment {
        ReviewComment {
            path: path.into(),
            line,
            end_line,
            text: text.into(),
        }
    }

    #[test]
    fn a_review_quotes_each_place_and_comment() {
        let text = review_message(&[
            comment("src/main.rs", 12, 12, "use the constant"),
            comment("README.md", 3, 7, "too long\nsplit it"),
        ]);
        assert_eq!(
            text,
            "Review of your changes:\n\n- src/main.rs:12: use the constant\n\n- README.md:3-7:\n  too long\n  split it"
        );
    }
}
