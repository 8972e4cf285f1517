//! Terminal output → styled runs.
//!
//! The output of a tool call is untrusted bytes from whatever program ran on
//! the server, so this module only ever produces *data* (text + style); the
//! view renders runs as text nodes, never as markup. The model is a single
//! editable "current line" plus an immutable scrollback: that is enough for
//! `\r`-style progress bars and in-line erasing, without the cost and attack
//! surface of a full screen emulator (cursor-up / absolute row movement are
//! deliberately dropped).

mod css;
mod parser;
#[cfg(test)]
mod proptests;
mod screen;
mod sgr;
mod style;
#[cfg(test)]
mod tests;

pub use css::color_css;
pub use style::{Color, Line, Run, Style};

use parser::{State, is_control};
use screen::Cell;

/// Default scrollback bound; the UI can show many tool calls at once, so each
/// one must keep its memory bounded.
pub const DEFAULT_MAX_LINES: usize = 10_000;

/// Lines longer than this are soft-wrapped. Without it a program that never
/// prints `\n` would grow one line without bound, and the current line is
/// re-materialised on every `feed`, so its length is also a per-chunk cost.
pub const DEFAULT_MAX_COLS: usize = 4_096;

/// Takes a program's output chunk by chunk (`feed`) and keeps it as styled lines.
/// Chunk boundaries never change the result, so a stream can be fed as it arrives.
#[derive(Clone, Debug)]
pub struct Terminal {
    /// `store[start..]` are the live lines; the last element is always the
    /// materialised current line. Evicted lines are emptied in place and
    /// compacted in batches so eviction is amortised O(1) while `lines()`
    /// can still hand out one contiguous slice.
    store: Vec<Line>,
    start: usize,
    /// The current line as cells so overwrites (`\r`, backspace, erase) keep
    /// per-character styles.
    cells: Vec<Cell>,
    /// Instead of `cells`, while the current line is ASCII text in one style written
    /// left to right (every line of a flood): appending is then a copy of the text,
    /// not a cell per character. Anything else turns it into cells first.
    plain: String,
    plain_style: Style,
    col: usize,
    style: Style,
    max_lines: usize,
    max_cols: usize,
    dropped: usize,
    state: State,
    /// Bytes consumed by the escape sequence in progress.
    seq_len: usize,
    params: String,
    csi_private: bool,
    csi_inter: bool,
}

impl Default for Terminal {
    fn default() -> Self {
        Self::new()
    }
}

impl Terminal {
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_LINES, DEFAULT_MAX_COLS)
    }

    pub fn with_max_lines(n: usize) -> Self {
        Self::with_limits(n, DEFAULT_MAX_COLS)
    }

    /// Zero limits are raised to 1 so there is always somewhere to write.
    pub fn with_limits(max_lines: usize, max_cols: usize) -> Self {
        Terminal {
            store: vec![Line::default()],
            start: 0,
            cells: Vec::new(),
            plain: String::new(),
            plain_style: Style::default(),
            col: 0,
            style: Style::default(),
            max_lines: max_lines.max(1),
            max_cols: max_cols.max(1),
            dropped: 0,
            state: State::Ground,
            seq_len: 0,
            params: String::new(),
            csi_private: false,
            csi_inter: false,
        }
    }

    pub fn feed(&mut self, chunk: &str) {
        let mut rest = chunk;
        while let Some(ch) = rest.chars().next() {
            if self.state == State::Ground && !is_control(ch) {
                // Plain text up to the next control character or escape: straight to
                // the current line, skipping the per-character state machine (floods
                // are mostly this).
                let end = rest.find(is_control).unwrap_or(rest.len());
                self.put_text(&rest[..end]);
                rest = &rest[end..];
            } else {
                self.step(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
        self.sync_current();
    }

    /// Completed lines, then the current line if anything has been written
    /// to it. A trailing `\n` therefore does not produce an empty last row.
    pub fn lines(&self) -> &[Line] {
        let end = if self.current_is_empty() {
            self.store.len() - 1
        } else {
            self.store.len()
        };
        &self.store[self.start + self.hidden()..end]
    }

    pub fn line_count(&self) -> usize {
        self.lines().len()
    }

    pub fn dropped_lines(&self) -> usize {
        self.dropped + self.hidden()
    }

    /// Retained text: every completed line followed by `\n`, then the current
    /// line, so `"a\n"` round-trips as `"a\n"`.
    pub fn plain_text(&self) -> String {
        let live = &self.store[self.start + self.hidden()..];
        let (current, done) = live.split_last().expect("store is never empty");
        let mut out = String::new();
        for line in done {
            for run in &line.runs {
                out.push_str(&run.text);
            }
            out.push('\n');
        }
        for run in &current.runs {
            out.push_str(&run.text);
        }
        out
    }

    /// Style that the next printed character will get.
    pub fn current_style(&self) -> Style {
        self.style
    }
}
