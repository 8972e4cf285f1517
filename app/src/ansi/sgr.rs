//! SGR (`ESC [ … m`): the parameters that set colours and attributes.

use std::mem;

use super::parser::parse_param;
use super::{Color, Style, Terminal};

impl Terminal {
    pub(super) fn sgr(&mut self) {
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
