//! Terminal output → styled runs.
//!
//! The output of a tool call is untrusted bytes from whatever program ran on
//! the server, so this module only ever produces *data* (text + style); the
//! view renders runs as text nodes, never as markup. The model is a single
//! editable "current line" plus an immutable scrollback: that is enough for
//! `\r`-style progress bars and in-line erasing, without the cost and attack
//! surface of a full screen emulator (cursor-up / absolute row movement are
//! deliberately dropped).

use std::mem;

/// Default scrollback bound; the UI can show many tool calls at once, so each
/// one must keep its memory bounded.
pub const DEFAULT_MAX_LINES: usize = 10_000;

/// Lines longer than this are soft-wrapped. Without it a program that never
/// prints `\n` would grow one line without bound, and the current line is
/// re-materialised on every `feed`, so its length is also a per-chunk cost.
pub const DEFAULT_MAX_COLS: usize = 4_096;

/// Longest CSI / plain escape sequence we keep parsing. CSI parameters are
/// buffered, so this is the memory bound for a never-ending sequence.
const MAX_CSI_LEN: usize = 256;

/// Longest OSC/DCS/APC/PM/SOS string we keep swallowing. Their payload is not
/// buffered, so this bound exists only so that an unterminated string cannot
/// hide all later output; it is larger than the CSI bound so that long OSC 8
/// hyperlink URLs are still consumed rather than leaking into the text.
const MAX_STRING_LEN: usize = 4_096;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Color {
    /// 0–15 are the 16 themeable ANSI colours, 16–255 the xterm 256-colour
    /// cube and grey ramp.
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Style {
    pub fg: Option<Color>,
    pub bg: Option<Color>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub inverse: bool,
    pub strike: bool,
}

#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct Run {
    pub text: String,
    pub style: Style,
}

#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct Line {
    pub runs: Vec<Run>,
}

impl Line {
    pub fn text(&self) -> String {
        self.runs.iter().map(|r| r.text.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.iter().all(|r| r.text.is_empty())
    }
}

/// CSS colour for `c`. The 16 base colours go through CSS variables so the
/// page theme (light/dark) decides what "red" looks like; the 256-colour
/// cube and truecolor are absolute by definition.
pub fn color_css(c: Color) -> String {
    match c {
        Color::Indexed(n @ 0..=15) => format!("var(--ansi-{n})"),
        Color::Indexed(n @ 16..=231) => {
            const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
            let n = n - 16;
            let (r, g, b) = (n / 36, (n / 6) % 6, n % 6);
            format!(
                "rgb({},{},{})",
                LEVELS[r as usize], LEVELS[g as usize], LEVELS[b as usize]
            )
        }
        Color::Indexed(n) => {
            let v = 8 + 10 * (n - 232);
            format!("rgb({v},{v},{v})")
        }
        Color::Rgb(r, g, b) => format!("rgb({r},{g},{b})"),
    }
}

impl Style {
    /// Space-separated classes: `b` bold, `d` dim, `i` italic, `u`
    /// underline, `s` strike. Short names because they repeat on every run.
    pub fn css_classes(&self) -> String {
        let flags = [
            (self.bold, "b"),
            (self.dim, "d"),
            (self.italic, "i"),
            (self.underline, "u"),
            (self.strike, "s"),
        ];
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `color:…;background:…` (either part omitted when default). Inverse
    /// swaps the colours; a default colour that gets swapped onto the other
    /// property is expressed as `var(--term-fg)` / `var(--term-bg)` because
    /// CSS has no way to say "the other property's inherited value".
    pub fn inline_style(&self) -> String {
        let (fg, bg) = if self.inverse {
            (
                Some(
                    self.bg
                        .map(color_css)
                        .unwrap_or_else(|| "var(--term-bg)".into()),
                ),
                Some(
                    self.fg
                        .map(color_css)
                        .unwrap_or_else(|| "var(--term-fg)".into()),
                ),
            )
        } else {
            (self.fg.map(color_css), self.bg.map(color_css))
        };
        let mut parts = Vec::with_capacity(2);
        if let Some(fg) = fg {
            parts.push(format!("color:{fg}"));
        }
        if let Some(bg) = bg {
            parts.push(format!("background:{bg}"));
        }
        parts.join(";")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Cell {
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Ground,
    /// After ESC.
    Esc,
    /// ESC followed by intermediates (e.g. `ESC ( B` charset selection).
    EscInter,
    Csi,
    /// OSC / DCS / SOS / PM / APC payload, ended by BEL or ST.
    Str,
    /// ESC seen inside a string: `\` completes ST, anything else starts a
    /// new escape.
    StrEsc,
}

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
                // the cells, skipping the per-character state machine (floods are
                // mostly this).
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

    /// Whether the oldest completed line is hidden to make room for a
    /// non-empty current line. Hiding (instead of evicting when the current
    /// line becomes non-empty) keeps the result independent of chunking: a
    /// later `\r ESC[K` can empty the current line again and the hidden
    /// line must then reappear exactly as if the chunks had been one.
    fn hidden(&self) -> usize {
        let current = usize::from(!self.current_is_empty());
        usize::from(self.completed() + current > self.max_lines)
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

    fn step(&mut self, ch: char) {
        if self.state != State::Ground {
            self.seq_len += ch.len_utf8();
            let limit = match self.state {
                State::Str | State::StrEsc => MAX_STRING_LEN,
                _ => MAX_CSI_LEN,
            };
            if self.seq_len > limit {
                // Abandon: later output must stay visible, and the partial
                // sequence is dropped rather than shown.
                self.state = State::Ground;
                return;
            }
        }
        match self.state {
            State::Ground => self.ground(ch),
            State::Esc => match ch {
                '[' => {
                    self.state = State::Csi;
                    self.params.clear();
                    self.csi_private = false;
                    self.csi_inter = false;
                }
                ']' | 'P' | 'X' | '^' | '_' => self.state = State::Str,
                '\x20'..='\x2f' => self.state = State::EscInter,
                '\x1b' => self.begin_escape(),
                '\x18' | '\x1a' => self.state = State::Ground,
                // Two-character escapes (ESC 7, ESC =, ESC c, ...) have no
                // meaning in the single-line model.
                '\x30'..='\x7e' => self.state = State::Ground,
                _ => {
                    self.state = State::Ground;
                    self.ground(ch);
                }
            },
            State::EscInter => match ch {
                '\x20'..='\x2f' => {}
                '\x30'..='\x7e' | '\x18' | '\x1a' => self.state = State::Ground,
                '\x1b' => self.begin_escape(),
                _ => {
                    self.state = State::Ground;
                    self.ground(ch);
                }
            },
            State::Csi => match ch {
                '0'..='9' | ';' | ':' => self.params.push(ch),
                '<' | '=' | '>' | '?' => self.csi_private = true,
                '\x20'..='\x2f' => self.csi_inter = true,
                '\x40'..='\x7e' => {
                    self.state = State::Ground;
                    self.dispatch_csi(ch);
                }
                '\x1b' => self.begin_escape(),
                '\x18' | '\x1a' => self.state = State::Ground,
                // xterm executes C0 controls embedded in a CSI.
                '\0'..='\x1f' => self.control(ch),
                '\x7f' => {}
                _ => {
                    self.state = State::Ground;
                    self.ground(ch);
                }
            },
            State::Str => match ch {
                '\x07' | '\u{9c}' | '\x18' | '\x1a' => self.state = State::Ground,
                '\x1b' => self.state = State::StrEsc,
                _ => {}
            },
            State::StrEsc => {
                if ch == '\\' {
                    self.state = State::Ground;
                } else {
                    self.begin_escape();
                    self.step(ch);
                }
            }
        }
    }

    fn begin_escape(&mut self) {
        self.state = State::Esc;
        self.seq_len = 0;
    }

    fn ground(&mut self, ch: char) {
        match ch {
            '\x1b' => self.begin_escape(),
            _ if is_control(ch) => self.control(ch),
            _ => self.put(ch),
        }
    }

    fn control(&mut self, ch: char) {
        match ch {
            '\n' => self.newline(),
            '\r' => self.col = 0,
            '\x08' => self.col = self.col.saturating_sub(1),
            '\t' => self.col = ((self.col / 8 + 1) * 8).min(self.max_cols),
            _ => {}
        }
    }

    /// `put` for each character of `text` (which has no control characters).
    fn put_text(&mut self, mut text: &str) {
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

    fn put(&mut self, ch: char) {
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

    fn newline(&mut self) {
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

    fn completed(&self) -> usize {
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

    fn current_is_empty(&self) -> bool {
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

    fn sync_current(&mut self) {
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

    fn first_param(&self) -> Option<u32> {
        self.params.split([';', ':']).next().and_then(parse_param)
    }

    fn dispatch_csi(&mut self, fin: char) {
        // Private (`?25l`, `>4;2m`) and intermediate forms are different
        // commands that merely share a final byte; never treat them as SGR.
        if self.csi_private || self.csi_inter {
            return;
        }
        let clamp = |c: usize, max: usize| c.min(max.saturating_sub(1));
        match fin {
            'm' => self.sgr(),
            'K' => self.erase_in_line(self.first_param().unwrap_or(0)),
            // Horizontal movement stays within the current line, so it is
            // supported: progress tools use `ESC[1G` / `ESC[nD` instead of \r.
            'G' | '`' => {
                let n = self.first_param().unwrap_or(1).max(1) as usize;
                self.col = clamp(n - 1, self.max_cols);
            }
            'C' | 'a' => {
                let n = self.first_param().unwrap_or(1).max(1) as usize;
                self.col = clamp(self.col.saturating_add(n), self.max_cols);
            }
            'D' => {
                let n = self.first_param().unwrap_or(1).max(1) as usize;
                self.col = self.col.saturating_sub(n);
            }
            _ => {}
        }
    }

    fn erase_in_line(&mut self, mode: u32) {
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

    fn sgr(&mut self) {
        let params = mem::take(&mut self.params);
        let ps: Vec<&str> = params.split(';').collect();
        let mut i = 0;
        while i < ps.len() {
            let p = ps[i];
            if p.contains(':') {
                let subs: Vec<u32> = p.split(':').map(|s| parse_param(s).unwrap_or(0)).collect();
                self.sgr_colon(&subs);
                i += 1;
                continue;
            }
            let code = parse_param(p).unwrap_or(0);
            if matches!(code, 38 | 48 | 58) {
                let (color, used) = extended_color(&ps[i + 1..]);
                self.set_extended(code, color);
                i += 1 + used;
                continue;
            }
            self.sgr_simple(code);
            i += 1;
        }
        self.params = params;
    }

    /// ITU T.416 colon forms: `38:5:n`, `38:2:r:g:b`, `38:2:cs:r:g:b`,
    /// and `4:n` underline styles.
    fn sgr_colon(&mut self, subs: &[u32]) {
        let get = |i: usize| subs.get(i).copied().unwrap_or(0);
        match get(0) {
            code @ (38 | 48 | 58) => {
                let color = match get(1) {
                    5 if subs.len() >= 3 => indexed(get(2)),
                    2 if subs.len() >= 6 => rgb(get(3), get(4), get(5)),
                    2 if subs.len() == 5 => rgb(get(2), get(3), get(4)),
                    _ => None,
                };
                self.set_extended(code, color);
            }
            4 => self.style.underline = get(1) != 0,
            code => self.sgr_simple(code),
        }
    }

    fn set_extended(&mut self, code: u32, color: Option<Color>) {
        // Malformed / out-of-range colours are ignored like xterm does,
        // rather than resetting the colour. 58 (underline colour) is parsed
        // only so its arguments are not misread as other attributes.
        let Some(color) = color else { return };
        match code {
            38 => self.style.fg = Some(color),
            48 => self.style.bg = Some(color),
            _ => {}
        }
    }

    fn sgr_simple(&mut self, code: u32) {
        let s = &mut self.style;
        match code {
            0 => *s = Style::default(),
            1 => s.bold = true,
            2 => s.dim = true,
            3 => s.italic = true,
            4 | 21 => s.underline = true,
            7 => s.inverse = true,
            9 => s.strike = true,
            22 => {
                s.bold = false;
                s.dim = false;
            }
            23 => s.italic = false,
            24 => s.underline = false,
            27 => s.inverse = false,
            29 => s.strike = false,
            30..=37 => s.fg = Some(Color::Indexed((code - 30) as u8)),
            39 => s.fg = None,
            40..=47 => s.bg = Some(Color::Indexed((code - 40) as u8)),
            49 => s.bg = None,
            90..=97 => s.fg = Some(Color::Indexed((code - 90 + 8) as u8)),
            100..=107 => s.bg = Some(Color::Indexed((code - 100 + 8) as u8)),
            _ => {}
        }
    }
}

/// Empty parameter → `None` (callers default it, usually to 0). Oversized
/// numbers saturate so they fall into "unknown" instead of wrapping.
/// C0, DEL and C1 (ESC included) are invisible; C1 is not interpreted as 8-bit
/// CSI/OSC because UTF-8 programs essentially never mean that.
fn is_control(ch: char) -> bool {
    matches!(ch, '\0'..='\x1f' | '\x7f'..='\u{9f}')
}

fn parse_param(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    Some(s.bytes().filter(u8::is_ascii_digit).fold(0u32, |acc, b| {
        acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    }))
}

fn indexed(n: u32) -> Option<Color> {
    u8::try_from(n).ok().map(Color::Indexed)
}

fn rgb(r: u32, g: u32, b: u32) -> Option<Color> {
    Some(Color::Rgb(
        u8::try_from(r).ok()?,
        u8::try_from(g).ok()?,
        u8::try_from(b).ok()?,
    ))
}

/// Semicolon form after 38/48/58: returns the colour and how many following
/// parameters it consumed, so a truncated form cannot make its arguments be
/// read as attributes (e.g. `38;5` followed by nothing).
fn extended_color(rest: &[&str]) -> (Option<Color>, usize) {
    let p = |i: usize| rest.get(i).and_then(|s| parse_param(s)).unwrap_or(0);
    match rest.first().map(|s| parse_param(s).unwrap_or(0)) {
        Some(5) if rest.len() >= 2 => (indexed(p(1)), 2),
        Some(2) if rest.len() >= 4 => (rgb(p(1), p(2), p(3)), 4),
        Some(5 | 2) => (None, rest.len()),
        Some(_) => (None, 1),
        None => (None, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(input: &str) -> Terminal {
        let mut t = Terminal::new();
        t.feed(input);
        t
    }

    fn texts(t: &Terminal) -> Vec<String> {
        t.lines().iter().map(Line::text).collect()
    }

    fn single_run(input: &str) -> Run {
        let t = term(input);
        assert_eq!(t.line_count(), 1, "{input:?}");
        let runs = &t.lines()[0].runs;
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs[0].clone()
    }

    #[test]
    fn plain_lines() {
        let t = term("hello\nworld");
        assert_eq!(texts(&t), ["hello", "world"]);
        assert_eq!(t.plain_text(), "hello\nworld");
        let t = term("a\n\nb\n");
        assert_eq!(texts(&t), ["a", "", "b"]);
        assert_eq!(t.plain_text(), "a\n\nb\n");
        assert_eq!(term("").line_count(), 0);
    }

    #[test]
    fn sgr_basic_colors_and_reset() {
        let t = term("\x1b[31mred\x1b[0m plain \x1b[1;42mbold\x1b[m");
        let runs = &t.lines()[0].runs;
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].text, "red");
        assert_eq!(runs[0].style.fg, Some(Color::Indexed(1)));
        assert_eq!(runs[1].text, " plain ");
        assert_eq!(runs[1].style, Style::default());
        assert_eq!(runs[2].style.bg, Some(Color::Indexed(2)));
        assert!(runs[2].style.bold);
        assert_eq!(t.current_style(), Style::default());
    }

    #[test]
    fn sgr_bright_and_default_colors() {
        let r = single_run("\x1b[91;103mx");
        assert_eq!(r.style.fg, Some(Color::Indexed(9)));
        assert_eq!(r.style.bg, Some(Color::Indexed(11)));
        let r = single_run("\x1b[91;103;39;49mx");
        assert_eq!(r.style, Style::default());
    }

    #[test]
    fn sgr_256_and_truecolor() {
        let r = single_run("\x1b[38;5;208;48;5;17mx");
        assert_eq!(r.style.fg, Some(Color::Indexed(208)));
        assert_eq!(r.style.bg, Some(Color::Indexed(17)));
        let r = single_run("\x1b[38;2;10;20;30;48;2;1;2;3;1mx");
        assert_eq!(r.style.fg, Some(Color::Rgb(10, 20, 30)));
        assert_eq!(r.style.bg, Some(Color::Rgb(1, 2, 3)));
        assert!(r.style.bold, "params after a truecolor group still apply");
    }

    #[test]
    fn sgr_colon_forms() {
        let r = single_run("\x1b[38:5:196mx");
        assert_eq!(r.style.fg, Some(Color::Indexed(196)));
        let r = single_run("\x1b[38:2::1:2:3;48:2:4:5:6mx");
        assert_eq!(r.style.fg, Some(Color::Rgb(1, 2, 3)));
        assert_eq!(r.style.bg, Some(Color::Rgb(4, 5, 6)));
        let r = single_run("\x1b[4:3mx");
        assert!(r.style.underline);
        let r = single_run("\x1b[4m\x1b[4:0mx");
        assert!(!r.style.underline);
    }

    #[test]
    fn sgr_malformed_is_harmless() {
        // Out-of-range colours are ignored; truncated forms don't leak
        // their arguments as attributes (5 would be blink, 2 dim).
        let r = single_run("\x1b[38;5;300mx");
        assert_eq!(r.style.fg, None);
        let r = single_run("\x1b[38;2;1;2mx");
        assert_eq!(r.style, Style::default());
        let r = single_run("\x1b[38;5mx");
        assert_eq!(r.style, Style::default());
        let r = single_run("\x1b[99999999999999999999mx");
        assert_eq!(r.style, Style::default());
        // Private-marker SGR lookalike (xterm modifyOtherKeys) is not SGR.
        let r = single_run("\x1b[>4;2mx");
        assert_eq!(r.style, Style::default());
    }

    #[test]
    fn attributes_and_their_resets() {
        let r = single_run("\x1b[1;2;3;4;7;9mx");
        let s = r.style;
        assert!(s.bold && s.dim && s.italic && s.underline && s.inverse && s.strike);
        assert_eq!(s.css_classes(), "b d i u s");
        let r = single_run("\x1b[1;2;3;4;7;9m\x1b[22;23;24;27;29mx");
        assert_eq!(r.style, Style::default());
        assert_eq!(r.style.css_classes(), "");
        // Empty parameter means 0 (reset).
        let r = single_run("\x1b[1m\x1b[;mx");
        assert_eq!(r.style, Style::default());
    }

    #[test]
    fn runs_merge_per_style() {
        let t = term("ab\x1b[1mcd\x1b[1mef\x1b[0mgh");
        let runs = &t.lines()[0].runs;
        let texts: Vec<&str> = runs.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["ab", "cdef", "gh"]);
    }

    #[test]
    fn carriage_return_collapses_progress() {
        let t = term("10%\r20%\r30%\n");
        assert_eq!(texts(&t), ["30%"]);
        assert_eq!(t.plain_text(), "30%\n");
        let t = term("a\r\nb\r\n");
        assert_eq!(texts(&t), ["a", "b"]);
        // Overwrite is per character, like a real terminal.
        assert_eq!(texts(&term("100%\r50%")), ["50%%"]);
        // The usual erase idiom clears the tail.
        assert_eq!(texts(&term("100%\r\x1b[K50%")), ["50%"]);
        assert_eq!(texts(&term("100%\x1b[2K\r50%")), ["50%"]);
    }

    #[test]
    fn overwrite_keeps_per_char_style() {
        let t = term("\x1b[31mabcd\r\x1b[32mXY");
        let runs = &t.lines()[0].runs;
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].text, "XY");
        assert_eq!(runs[0].style.fg, Some(Color::Indexed(2)));
        assert_eq!(runs[1].text, "cd");
        assert_eq!(runs[1].style.fg, Some(Color::Indexed(1)));
    }

    #[test]
    fn backspace() {
        assert_eq!(texts(&term("abc\x08d")), ["abd"]);
        assert_eq!(texts(&term("\x08\x08x")), ["x"]);
        assert_eq!(texts(&term("ab\x08\x08\x08cd")), ["cd"]);
    }

    #[test]
    fn tabs() {
        assert_eq!(texts(&term("a\tb")), ["a       b"]);
        assert_eq!(texts(&term("12345678\tb")), ["12345678        b"]);
        assert_eq!(texts(&term("\tx")), ["        x"]);
    }

    #[test]
    fn horizontal_cursor_movement() {
        assert_eq!(texts(&term("abcdef\x1b[3Dx")), ["abcxef"]);
        assert_eq!(texts(&term("abcdef\x1b[1Gx")), ["xbcdef"]);
        assert_eq!(texts(&term("a\x1b[3Cb")), ["a   b"]);
        assert_eq!(texts(&term("abcdef\x1b[3G\x1b[1K")), ["   def"]);
    }

    #[test]
    fn unknown_sequences_dropped() {
        let input = concat!(
            "\x1b[2J\x1b[H\x1b[?25l\x1b[3A\x1b[1;5H",
            "\x1b]0;title\x07",
            "\x1b]8;;http://example.com\x1b\\link\x1b]8;;\x1b\\",
            "\x1bPdcs payload\x1b\\",
            "\x1b(B\x1b7\x1b8\x1b=",
            "ok\x07\x00\x0b\x0c\x7f\u{9b}!",
        );
        assert_eq!(texts(&term(input)), ["linkok!"]);
    }

    #[test]
    fn html_is_kept_verbatim() {
        let s = "<img src=x onerror=alert(1)> &amp; <script>\"'</script>";
        let r = single_run(s);
        assert_eq!(r.text, s);
    }

    #[test]
    fn unicode_text() {
        assert_eq!(texts(&term("héllo ✓ 漢字\n")), ["héllo ✓ 漢字"]);
    }

    #[test]
    fn max_lines_eviction() {
        let mut t = Terminal::with_max_lines(3);
        t.feed("1\n2\n3\n4\n5\n");
        assert_eq!(texts(&t), ["3", "4", "5"]);
        assert_eq!(t.dropped_lines(), 2);
        t.feed("6");
        assert_eq!(texts(&t), ["4", "5", "6"]);
        assert_eq!(t.dropped_lines(), 3);
        assert_eq!(t.plain_text(), "4\n5\n6");
        // Many evictions exercise batch compaction.
        for i in 0..1000 {
            t.feed(&format!("{i}\n"));
        }
        assert_eq!(texts(&t), ["997", "998", "999"]);
        // "6" was unterminated, so "0\n" extends it to "60".
        assert_eq!(t.dropped_lines(), 1002);
        assert!(t.store.len() <= 3 + 64 + 1);
    }

    #[test]
    fn eviction_is_chunking_independent() {
        let whole = {
            let mut t = Terminal::with_max_lines(1);
            t.feed("a\nb\r\x1b[K");
            t
        };
        let mut split = Terminal::with_max_lines(1);
        split.feed("a\nb");
        assert_eq!(texts(&split), ["b"]);
        assert_eq!(split.dropped_lines(), 1);
        split.feed("\r\x1b[K");
        assert_eq!(texts(&split), ["a"]);
        assert_eq!(split.dropped_lines(), 0);
        assert_eq!(split.lines(), whole.lines());
        assert_eq!(split.plain_text(), whole.plain_text());
        assert_eq!(split.plain_text(), "a\n");
    }

    #[test]
    fn long_lines_soft_wrap() {
        let mut t = Terminal::with_limits(100, 4);
        t.feed("abcdefghij");
        assert_eq!(texts(&t), ["abcd", "efgh", "ij"]);
        let mut t = Terminal::with_limits(100, 4);
        t.feed("\t\t\tx");
        // Tabs move the cursor without painting cells.
        assert_eq!(texts(&t), ["", "x"]);
    }

    #[test]
    fn runaway_sequences_are_abandoned() {
        // An unterminated CSI must not buffer without bound nor swallow
        // output forever.
        let mut t = Terminal::new();
        t.feed("\x1b[");
        for _ in 0..100 {
            t.feed("1;1;1;1;1;");
        }
        assert!(t.params.len() <= MAX_CSI_LEN);
        t.feed("visible");
        assert!(t.plain_text().ends_with("visible"), "{}", t.plain_text());

        let mut t = Terminal::new();
        t.feed("\x1b]0;");
        t.feed(&"x".repeat(MAX_STRING_LEN * 2));
        t.feed("\ntail");
        assert!(t.plain_text().ends_with("\ntail"));
        // Long but terminated OSC 8 URLs are still consumed whole.
        let url = "u".repeat(1000);
        assert_eq!(
            texts(&term(&format!("\x1b]8;;{url}\x1b\\t\x1b]8;;\x1b\\"))),
            ["t"]
        );
    }

    #[test]
    fn split_at_every_offset_matches_unsplit() {
        let input = concat!(
            "\x1b[1;38;2;10;20;30mbold\x1b[0m \x1b]0;t\x07x\x1b]8;;u\x1b\\y",
            "\x1b[38:5:9m1%\r2%\r\x1b[K3%\n\x1b[?25lab\x08c\td\x1b[2Ge\x1b(Bé✓\r\n",
        );
        let whole = term(input);
        let chars: Vec<(usize, char)> = input.char_indices().collect();
        for &(i, _) in &chars {
            let mut t = Terminal::new();
            t.feed(&input[..i]);
            t.feed(&input[i..]);
            assert_eq!(t.lines(), whole.lines(), "split at {i}");
        }
        let mut t = Terminal::new();
        for (_, c) in chars {
            t.feed(c.encode_utf8(&mut [0; 4]));
        }
        assert_eq!(t.lines(), whole.lines());
        assert_eq!(t.plain_text(), whole.plain_text());
    }

    #[test]
    fn css_output() {
        assert_eq!(color_css(Color::Indexed(1)), "var(--ansi-1)");
        assert_eq!(color_css(Color::Indexed(15)), "var(--ansi-15)");
        assert_eq!(color_css(Color::Indexed(16)), "rgb(0,0,0)");
        assert_eq!(color_css(Color::Indexed(196)), "rgb(255,0,0)");
        assert_eq!(color_css(Color::Indexed(231)), "rgb(255,255,255)");
        assert_eq!(color_css(Color::Indexed(232)), "rgb(8,8,8)");
        assert_eq!(color_css(Color::Indexed(255)), "rgb(238,238,238)");
        assert_eq!(color_css(Color::Rgb(1, 2, 3)), "rgb(1,2,3)");

        let s = Style {
            fg: Some(Color::Indexed(1)),
            bg: Some(Color::Rgb(1, 2, 3)),
            ..Style::default()
        };
        assert_eq!(
            s.inline_style(),
            "color:var(--ansi-1);background:rgb(1,2,3)"
        );
        let inv = Style { inverse: true, ..s };
        assert_eq!(
            inv.inline_style(),
            "color:rgb(1,2,3);background:var(--ansi-1)"
        );
        let inv_default = Style {
            inverse: true,
            ..Style::default()
        };
        assert_eq!(
            inv_default.inline_style(),
            "color:var(--term-bg);background:var(--term-fg)"
        );
        assert_eq!(Style::default().inline_style(), "");
        let bold = Style {
            bold: true,
            underline: true,
            ..Style::default()
        };
        assert_eq!(bold.css_classes(), "b u");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z <>&\"'é✓]{0,8}",
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\r\n".to_string()),
            Just("\x08".to_string()),
            Just("\t".to_string()),
            Just("\x1b[K".to_string()),
            Just("\x1b[0m".to_string()),
            Just("\x1b]0;title\x07".to_string()),
            Just("\x1b]8;;http://x\x1b\\".to_string()),
            Just("\x1b[?25l".to_string()),
            Just("\x1b(B".to_string()),
            (0u16..300).prop_map(|n| format!("\x1b[38;5;{n}m")),
            (0u8..=255, 0u8..=255, 0u8..=255)
                .prop_map(|(r, g, b)| format!("\x1b[48;2;{r};{g};{b}m")),
            "\x1b\\[[0-9;:?]{0,12}[@-~]",
            "[\x00-\x1f]",
        ]
    }

    fn input() -> impl Strategy<Value = String> {
        prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_result(
            s in input(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let whole = {
                let mut t = Terminal::with_max_lines(2);
                t.feed(&s);
                t
            };
            let mut bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
            bounds.push(s.len());
            let mut points: Vec<usize> = cuts.iter().map(|c| bounds[c.index(bounds.len())]).collect();
            points.push(0);
            points.push(s.len());
            points.sort_unstable();
            points.dedup();
            let mut t = Terminal::with_max_lines(2);
            for w in points.windows(2) {
                t.feed(&s[w[0]..w[1]]);
            }
            prop_assert_eq!(t.lines(), whole.lines());
            prop_assert_eq!(t.plain_text(), whole.plain_text());
            prop_assert_eq!(t.dropped_lines(), whole.dropped_lines());
        }

        #[test]
        fn fast_paths_match_the_state_machine(s in input()) {
            // The reference: every character through `step`, as before the fast paths.
            let mut slow = Terminal::with_limits(3, 7);
            for ch in s.chars() {
                slow.step(ch);
            }
            slow.sync_current();
            let mut fast = Terminal::with_limits(3, 7);
            fast.feed(&s);
            prop_assert_eq!(fast.lines(), slow.lines());
            prop_assert_eq!(fast.dropped_lines(), slow.dropped_lines());
            prop_assert_eq!(fast.current_style(), slow.current_style());
        }

        #[test]
        fn output_never_contains_escapes_and_respects_bounds(s in input()) {
            let mut t = Terminal::with_limits(5, 20);
            t.feed(&s);
            prop_assert!(t.line_count() <= 5);
            for line in t.lines() {
                prop_assert!(line.text().chars().count() <= 20);
                for run in &line.runs {
                    prop_assert!(!run.text.is_empty());
                    prop_assert!(!run.text.chars().any(|c| c.is_control()));
                }
                for w in line.runs.windows(2) {
                    prop_assert_ne!(w[0].style, w[1].style);
                }
            }
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,200}|[\x00-\x7f]{0,200}") {
            let mut t = Terminal::with_max_lines(3);
            t.feed(&s);
            let _ = t.plain_text();
        }
    }
}
