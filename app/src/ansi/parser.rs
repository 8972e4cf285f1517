//! The escape-sequence state machine: decides what each character means and
//! hands printable text and edits to the screen model.

use super::Terminal;

/// Longest CSI / plain escape sequence we keep parsing. CSI parameters are
/// buffered, so this is the memory bound for a never-ending sequence.
pub(super) const MAX_CSI_LEN: usize = 256;

/// Longest OSC/DCS/APC/PM/SOS string we keep swallowing. Their payload is not
/// buffered, so this bound exists only so that an unterminated string cannot
/// hide all later output; it is larger than the CSI bound so that long OSC 8
/// hyperlink URLs are still consumed rather than leaking into the text.
pub(super) const MAX_STRING_LEN: usize = 4_096;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum State {
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

impl Terminal {
    pub(super) fn step(&mut self, ch: char) {
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
}

/// C0, DEL and C1 (ESC included) are invisible; C1 is not interpreted as 8-bit
/// CSI/OSC because UTF-8 programs essentially never mean that.
pub(super) fn is_control(ch: char) -> bool {
    matches!(ch, '\0'..='\x1f' | '\x7f'..='\u{9f}')
}

/// Empty parameter → `None` (callers default it, usually to 0). Oversized
/// numbers saturate so they fall into "unknown" instead of wrapping.
pub(super) fn parse_param(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    Some(s.bytes().filter(u8::is_ascii_digit).fold(0u32, |acc, b| {
        acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    }))
}
