//! The review panel's logic, free of any view: a turn's diff (`ChangesDiff`)
//! flattened into fixed-height rows with old and new line numbers, the unchanged
//! stretches between hunks folded into one row each, the window of rows a scroll
//! position shows, and which lines a comment is about. Plain Rust so it is tested
//! natively; the panel only renders what this computes.

use std::ops::Range;

use crate::protocol::{Changes, ChangesDiff, FileChange, FileDiff, FileStatus};

#[cfg(test)]
mod tests;

/// What one row of the flattened diff shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// A file's heading: its path (`old → new` for a rename).
    File,
    /// An `@@ -a,b +c,d @@` line.
    Hunk,
    Context,
    Added,
    Removed,
    /// `\ No newline at end of file`, after the line it is about.
    NoNewline,
    /// Unchanged lines between hunks that the diff leaves out.
    Fold,
    /// Why a file has no lines to show (binary, too large, a pure rename).
    Note,
}

/// One row; every row has the same height, which is what lets the panel render only
/// the visible ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub kind: RowKind,
    /// Index into `DiffModel::files`.
    pub file: usize,
    /// Line number in the old version (context and removed lines).
    pub old: Option<u64>,
    /// Line number in the new version (context and added lines).
    pub new: Option<u64>,
    /// The line without its `+`/`-`/` ` prefix; the heading or note otherwise.
    pub text: String,
}

impl Row {
    fn new(kind: RowKind, file: usize, text: impl Into<String>) -> Self {
        Row {
            kind,
            file,
            old: None,
            new: None,
            text: text.into(),
        }
    }

    /// Whether a review comment can be about this row: only the file's lines.
    pub fn commentable(&self) -> bool {
        matches!(
            self.kind,
            RowKind::Context | RowKind::Added | RowKind::Removed
        )
    }

    /// The number a comment quotes: the new version's, or the old one's for a
    /// removed line (it has no place in the new version).
    pub fn line(&self) -> Option<u64> {
        self.new.or(self.old)
    }
}

/// One file of the diff, as the file list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub change: FileChange,
    /// The server left the lines out: only the counts are known.
    pub too_large: bool,
    /// The row of the file's heading.
    pub first_row: usize,
}

/// A whole diff, flattened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffModel {
    pub rows: Vec<Row>,
    pub files: Vec<FileEntry>,
    /// The largest line number shown, which sets the width of the number columns.
    pub max_line: u64,
}

impl DiffModel {
    pub fn build(diff: &ChangesDiff) -> Self {
        let mut model = DiffModel::default();
        for file in &diff.files {
            model.push_file(file);
        }
        model
    }

    fn push_file(&mut self, file: &FileDiff) {
        let index = self.files.len();
        self.files.push(FileEntry {
            change: file.change.clone(),
            too_large: file.too_large,
            first_row: self.rows.len(),
        });
        self.rows
            .push(Row::new(RowKind::File, index, display_path(&file.change)));
        let c = &file.change;
        let note = if c.binary {
            Some("Binary file: not shown".to_string())
        } else if file.too_large {
            Some(format!(
                "Diff too large to show here: +{} −{}",
                c.added, c.removed
            ))
        } else if file.patch.trim().is_empty() {
            Some(
                match c.status {
                    FileStatus::Renamed => "Renamed without changes to its content",
                    FileStatus::TypeChanged => "Changed type (file, symlink or submodule)",
                    _ => "No line changes",
                }
                .to_string(),
            )
        } else {
            None
        };
        match note {
            Some(note) => self.rows.push(Row::new(RowKind::Note, index, note)),
            None => self.push_patch(index, &file.patch),
        }
    }

    fn push_patch(&mut self, file: usize, patch: &str) {
        let (mut old, mut new) = (0u64, 0u64);
        // Where the previous hunk ended in the old version, to count what lies between.
        let mut prev_end: Option<u64> = None;
        let mut in_hunk = false;
        let mut lines = patch.split('\n').peekable();
        while let Some(raw) = lines.next() {
            // The empty piece after a final newline is not a line.
            if raw.is_empty() && lines.peek().is_none() {
                break;
            }
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if let Some(h) = parse_hunk_header(line) {
                let gap = match prev_end {
                    Some(end) => h.old_first().saturating_sub(end),
                    None => h.old_first().saturating_sub(1),
                };
                if gap > 0 {
                    self.rows
                        .push(Row::new(RowKind::Fold, file, fold_text(gap)));
                }
                prev_end = Some(h.old_first() + h.old_len);
                (old, new) = (h.old_first(), h.new_first());
                self.rows.push(Row::new(RowKind::Hunk, file, line));
                in_hunk = true;
                continue;
            }
            if !in_hunk {
                // Anything before the first `@@` (a `diff --git` heading) is not shown.
                continue;
            }
            let (kind, text) = match line.as_bytes().first() {
                Some(b'+') => (RowKind::Added, &line[1..]),
                Some(b'-') => (RowKind::Removed, &line[1..]),
                Some(b' ') => (RowKind::Context, &line[1..]),
                Some(b'\\') => (RowKind::NoNewline, line),
                // An empty context line whose space was stripped on the way.
                None => (RowKind::Context, ""),
                Some(_) => (RowKind::Context, line),
            };
            let mut row = Row::new(kind, file, text);
            match kind {
                RowKind::Added => {
                    row.new = Some(new);
                    new += 1;
                }
                RowKind::Removed => {
                    row.old = Some(old);
                    old += 1;
                }
                RowKind::Context => {
                    row.old = Some(old);
                    row.new = Some(new);
                    old += 1;
                    new += 1;
                }
                _ => {}
            }
            self.max_line = self
                .max_line
                .max(row.old.unwrap_or(0).max(row.new.unwrap_or(0)));
            self.rows.push(row);
        }
    }

    /// The file a row belongs to (for "which file is on screen").
    pub fn file_at(&self, row: usize) -> Option<usize> {
        self.rows.get(row).map(|r| r.file)
    }

    /// The lines a comment from row `anchor` to row `focus` (either order) is about:
    /// a range within one file. When `focus` is in another file than `anchor`, or the
    /// anchor is not a line, the comment is about `focus` alone.
    pub fn span(&self, anchor: Option<usize>, focus: usize) -> Option<Span> {
        let focus_row = self.rows.get(focus).filter(|r| r.commentable())?;
        let anchor = anchor
            .filter(|&a| {
                self.rows
                    .get(a)
                    .is_some_and(|r| r.commentable() && r.file == focus_row.file)
            })
            .unwrap_or(focus);
        let rows = anchor.min(focus)..anchor.max(focus) + 1;
        let numbers = self.rows[rows.clone()]
            .iter()
            .filter_map(|r| r.commentable().then(|| r.line()).flatten());
        let (line, end_line) = numbers.fold((u64::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
        Some(Span {
            file: focus_row.file,
            path: self.files[focus_row.file].change.path.clone(),
            rows,
            line,
            end_line,
        })
    }
}

/// What a review comment is about: rows of the flattened diff, and the line numbers
/// it quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub file: usize,
    pub path: String,
    pub rows: Range<usize>,
    pub line: u64,
    pub end_line: u64,
}

impl Span {
    /// `path:line` or `path:line-end`, as the review message quotes it.
    pub fn place(&self) -> String {
        place(&self.path, self.line, self.end_line)
    }
}

/// `path:line` or `path:line-end`, as `review_message` quotes a comment's place.
pub fn place(path: &str, line: u64, end_line: u64) -> String {
    if end_line > line {
        format!("{path}:{line}-{end_line}")
    } else {
        format!("{path}:{line}")
    }
}

/// An `@@ -a,b +c,d @@` header's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HunkHeader {
    pub old_start: u64,
    pub old_len: u64,
    pub new_start: u64,
    pub new_len: u64,
}

impl HunkHeader {
    /// The first old line the hunk covers. A hunk with no old lines names the line
    /// *before* where it goes (0 for the start of the file).
    fn old_first(&self) -> u64 {
        if self.old_len == 0 {
            self.old_start + 1
        } else {
            self.old_start
        }
    }

    fn new_first(&self) -> u64 {
        if self.new_len == 0 {
            self.new_start + 1
        } else {
            self.new_start
        }
    }
}

/// Parses `@@ -a[,b] +c[,d] @@[ section]` (a missing count means 1).
pub fn parse_hunk_header(line: &str) -> Option<HunkHeader> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |r: &str| -> Option<(u64, u64)> {
        match r.split_once(',') {
            Some((start, len)) => Some((start.parse().ok()?, len.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (old_start, old_len) = range(old)?;
    let (new_start, new_len) = range(new)?;
    Some(HunkHeader {
        old_start,
        old_len,
        new_start,
        new_len,
    })
}

fn fold_text(n: u64) -> String {
    format!("⋯ {n} unchanged line{}", if n == 1 { "" } else { "s" })
}

/// A file's path as the list shows it: `old → new` for a rename.
pub fn display_path(c: &FileChange) -> String {
    match &c.old_path {
        Some(old) if old != &c.path => format!("{old} → {}", c.path),
        _ => c.path.clone(),
    }
}

/// The file status as one short word.
pub fn status_label(s: FileStatus) -> &'static str {
    match s {
        FileStatus::Added => "added",
        FileStatus::Deleted => "deleted",
        FileStatus::Modified => "modified",
        FileStatus::Renamed => "renamed",
        FileStatus::TypeChanged => "type changed",
    }
}

/// The timeline's line for a `changes` message: "3 files changed, +10 −2", or for a
/// revert "Reverted #12: 3 files, +2 −10".
pub fn summary(c: &Changes) -> String {
    format!("{}+{} −{}", summary_lead(c), c.added, c.removed)
}

/// The summary up to its counts, which the timeline colours apart.
pub fn summary_lead(c: &Changes) -> String {
    let n = c.files.len();
    let files = format!("{n} file{}", if n == 1 { "" } else { "s" });
    match c.revert_of {
        Some(turn) => format!("Reverted #{turn}: {files}, "),
        None => format!("{files} changed, "),
    }
}

/// The rows a scroll container shows at `scroll_top`, plus `overscan` rows on each
/// side, out of `total` rows of `row_px` each.
pub fn visible_window(
    scroll_top: f64,
    viewport_px: f64,
    row_px: f64,
    total: usize,
    overscan: usize,
) -> Range<usize> {
    if total == 0 || row_px <= 0.0 {
        return 0..0;
    }
    let top = scroll_top.max(0.0);
    let first = ((top / row_px) as usize).min(total);
    let shown = (viewport_px.max(0.0) / row_px).ceil() as usize + 1;
    first.saturating_sub(overscan)..(first + shown + overscan).min(total)
}

/// The file to go to from `current` with `step` (+1 next, -1 previous), staying
/// within `0..count`.
pub fn step_file(current: Option<usize>, step: isize, count: usize) -> Option<usize> {
    if count == 0 {
        return None;
    }
    let next = match current {
        None if step >= 0 => 0,
        None => count - 1,
        Some(c) => c.saturating_add_signed(step).min(count - 1),
    };
    Some(next)
}
