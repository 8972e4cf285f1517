//! The screen model: one editable current line over a bounded scrollback.

use std::mem;

use super::{Line, Run, Style, Terminal};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Cell {
    ch: char,
    style: Style,
}

const BLANK: Cell = Cell {
    ch: ' ',
    style: Style {
        fg: None,
        bg: None,
        bold: false,
        dim: false,
        italic: false,
        underline: false,
        inverse: false,
        strike: false,
    },
};

impl Terminal {
    /// Whether the oldest completed line is hidden to make room for a
    /// non-empty current line. Hiding (instead of evicting when the current
    /// line becomes non-empty) keeps the result independent of chunking: a
    /// later `\r ESC[K` can empty the current line again and the hidden
    /// line must then reappear exactly as if the chunks had been one.
    pub(super) fn hidden(&self) -> usize {
        let current = usize::from(!self.current_is_empty());
        usize::from(self.completed() + current > self.max_lines)
    }

    /// `put` for each character of `text` (which has no control characters).
    pub(super) fn put_text(&mut self, mut text: &str) {
        while !text.is_empty() {
            if self.col >= self.max_cols {
                self.newline();
            }
            let room = self.max_cols - self.col;
            if self.cells.is_empty()
                && self.col == self.plain.len()
                && (self.plain.is_empty() || self.plain_style == self.style)
                && text.is_ascii()
            {
                let taken = room.min(text.len());
                self.plain.push_str(&text[..taken]);
                self.plain_style = self.style;
                self.col += taken;
                text = &text[taken..];
                continue;
            }
            self.materialize();
            if self.col != self.cells.len() {
                // Overwriting or past the end: the general path.
                let ch = text.chars().next().unwrap_or_default();
                self.put(ch);
                text = &text[ch.len_utf8()..];
                continue;
            }
            // Appending, the common case: in bulk, up to the wrap column.
            let style = self.style;
            let before = self.cells.len();
            let taken = if text.is_ascii() {
                // Bytes are chars here, and an exact-size iterator extends without
                // a capacity check per element.
                let taken = room.min(text.len());
                let cells = text[..taken].bytes().map(|b| Cell {
                    ch: char::from(b),
                    style,
                });
                self.cells.extend(cells);
                taken
            } else {
                let taken = text
                    .char_indices()
                    .nth(room)
                    .map_or(text.len(), |(at, _)| at);
                self.cells
                    .extend(text[..taken].chars().map(|ch| Cell { ch, style }));
                taken
            };
            self.col += self.cells.len() - before;
            text = &text[taken..];
        }
    }

    pub(super) fn put(&mut self, ch: char) {
        self.materialize();
        if self.col >= self.max_cols {
            self.newline();
        }
        let cell = Cell {
            ch,
            style: self.style,
        };
        if self.col < self.cells.len() {
            self.cells[self.col] = cell;
        } else {
            if self.col > self.cells.len() {
                // Gaps left by tab / cursor-forward become unstyled spaces: the
                // terminal would not have painted them either.
                self.cells.resize(self.col, BLANK);
            }
            self.cells.push(cell);
        }
        self.col += 1;
    }

    pub(super) fn newline(&mut self) {
        if self.plain.is_empty() {
            self.sync_current();
        } else {
            let run = Run {
                text: mem::take(&mut self.plain),
                style: self.plain_style,
            };
            self.store.last_mut().expect("store is never empty").runs = vec![run];
        }
        self.cells.clear();
        self.col = 0;
        self.store.push(Line::default());
        // At most max_lines completed lines are retained (plus the current
        // one); evicting here, per line, bounds memory inside a huge chunk.
        while self.completed() > self.max_lines {
            self.evict_oldest();
        }
    }

    pub(super) fn completed(&self) -> usize {
        self.store.len() - self.start - 1
    }

    fn evict_oldest(&mut self) {
        // Free the line's text now; the slot itself is reclaimed in batches.
        self.store[self.start] = Line::default();
        self.start += 1;
        self.dropped += 1;
        if self.start >= self.max_lines.max(64) {
            self.store.drain(..self.start);
            self.start = 0;
        }
    }

    pub(super) fn current_is_empty(&self) -> bool {
        self.cells.is_empty() && self.plain.is_empty()
    }

    /// Turns a `plain` current line into cells.
    fn materialize(&mut self) {
        if !self.plain.is_empty() {
            let style = self.plain_style;
            let cells = self.plain.bytes().map(|b| Cell {
                ch: char::from(b),
                style,
            });
            self.cells.extend(cells);
            self.plain.clear();
        }
    }

    pub(super) fn sync_current(&mut self) {
        if !self.plain.is_empty() {
            let run = Run {
                text: self.plain.clone(),
                style: self.plain_style,
            };
            self.store.last_mut().expect("store is never empty").runs = vec![run];
            return;
        }
        let mut runs: Vec<Run> = Vec::new();
        let mut rest = &self.cells[..];
        while let Some(first) = rest.first() {
            let len = rest
                .iter()
                .position(|c| c.style != first.style)
                .unwrap_or(rest.len());
            // Sized up front: growing the string char by char was a large part of
            // the cost of a flood.
            let mut text = String::with_capacity(len);
            text.extend(rest[..len].iter().map(|c| c.ch));
            runs.push(Run {
                text,
                style: first.style,
            });
            rest = &rest[len..];
        }
        let last = self.store.last_mut().expect("store is never empty");
        last.runs = runs;
    }

    pub(super) fn erase_in_line(&mut self, mode: u32) {
        self.materialize();
        match mode {
            0 => self.cells.truncate(self.col),
            1 => {
                let end = (self.col + 1).min(self.cells.len());
                self.cells[..end].fill(BLANK);
            }
            2 => self.cells.clear(),
            _ => {}
        }
    }
}
