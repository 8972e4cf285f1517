//! Styles as CSS, for the view.

use super::{Color, Style};

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
