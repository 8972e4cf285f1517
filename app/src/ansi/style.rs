//! What the terminal produces: text in runs of one style, line by line.

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
