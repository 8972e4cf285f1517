//! A small markdown renderer for agents' replies. Text becomes a tree of a few
//! block and inline kinds, and that tree becomes Leptos nodes: nothing in the
//! input is ever treated as HTML, so `<script>` in a reply is shown, not run.
//!
//! It covers what agents write (headings, paragraphs, emphasis, code, lists,
//! links, quotes, rules) and renders a reply cut off mid-stream sensibly: an
//! unclosed code fence is a code block up to the end.

mod inline;
mod view;

#[cfg(test)]
mod tests;

pub use inline::{parse_inline, safe_href};
pub use view::{Markdown, render};

/// Nesting below this (quotes in lists in quotes…) is shown as plain paragraphs,
/// so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// Level 1–6.
    Heading(u8, Vec<Inline>),
    Paragraph(Vec<Inline>),
    /// A fenced code block; `lang` is the fence's info word.
    Code {
        lang: String,
        text: String,
    },
    Quote(Vec<Block>),
    /// `start` is `Some` for a numbered list.
    List {
        start: Option<u64>,
        items: Vec<Vec<Block>>,
    },
    Rule,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Inline {
    Text(String),
    Code(String),
    Emphasis(Vec<Inline>),
    Strong(Vec<Inline>),
    /// `href` is always http, https or mailto (see [`safe_href`]).
    Link {
        href: String,
        children: Vec<Inline>,
    },
}

/// Parses a whole reply.
pub fn parse(text: &str) -> Vec<Block> {
    let lines: Vec<String> = text.lines().map(expand_tabs).collect();
    blocks(&lines, 0)
}

fn expand_tabs(line: &str) -> String {
    if line.contains('\t') {
        line.replace('\t', "    ")
    } else {
        line.to_string()
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// An opening code fence: its character, its length and its indent.
fn fence(line: &str) -> Option<(char, usize, usize)> {
    let indent = indent_of(line);
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let c = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = rest.chars().take_while(|x| *x == c).count();
    (n >= 3).then_some((c, n, indent))
}

fn heading(line: &str) -> Option<(u8, &str)> {
    let t = line.trim_start();
    if indent_of(line) > 3 {
        return None;
    }
    let level = t.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    // A closing run of `#` is decoration.
    let text = rest.trim();
    let stripped = text.trim_end_matches('#');
    let text = if stripped.is_empty() || stripped.ends_with(' ') {
        stripped.trim_end()
    } else {
        text
    };
    Some((level as u8, text))
}

fn is_rule(line: &str) -> bool {
    let t = line.trim();
    let Some(c) = t.chars().next().filter(|c| matches!(c, '-' | '*' | '_')) else {
        return false;
    };
    indent_of(line) <= 3 && t.chars().all(|x| x == c || x == ' ') && t.matches(c).count() >= 3
}

fn is_quote(line: &str) -> bool {
    indent_of(line) <= 3 && line.trim_start().starts_with('>')
}

/// A list item's marker: `Some(n)` for numbered items, and where its text starts.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Marker {
    number: Option<u64>,
    indent: usize,
    /// Column where the item's content starts; continuation lines indent to it.
    content: usize,
}

fn list_marker(line: &str) -> Option<Marker> {
    let indent = indent_of(line);
    let rest = &line[indent..];
    let (number, width) =
        if let Some(c) = rest.chars().next().filter(|c| matches!(c, '-' | '*' | '+')) {
            (None, c.len_utf8())
        } else {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            let delim = rest[digits..].chars().next()?;
            if delim != '.' && delim != ')' {
                return None;
            }
            (rest[..digits].parse::<u64>().ok(), digits + 1)
        };
    let after = &rest[width..];
    if !after.is_empty() && !after.starts_with(' ') {
        return None;
    }
    let spaces = after.len() - after.trim_start_matches(' ').len();
    // Content indented by more than four spaces is code in CommonMark; here it
    // simply starts one space after the marker.
    let spaces = if spaces == 0 || spaces > 4 || after.trim().is_empty() {
        1
    } else {
        spaces
    };
    Some(Marker {
        number,
        indent,
        content: indent + width + spaces,
    })
}

fn starts_block(line: &str, depth: usize) -> bool {
    fence(line).is_some()
        || heading(line).is_some()
        || is_rule(line)
        || (depth < MAX_DEPTH && (is_quote(line) || list_marker(line).is_some()))
}

fn blocks(lines: &[String], depth: usize) -> Vec<Block> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].as_str();
        if is_blank(line) {
            i += 1;
        } else if let Some((c, n, indent)) = fence(line) {
            let lang = line.trim_start()[n..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            let mut text = Vec::new();
            i += 1;
            while i < lines.len() {
                let l = lines[i].as_str();
                if indent_of(l) <= 3
                    && l.trim_start().starts_with(&c.to_string().repeat(n))
                    && l.trim().chars().all(|x| x == c)
                {
                    i += 1;
                    break;
                }
                let strip = indent_of(l).min(indent);
                text.push(&l[strip..]);
                i += 1;
            }
            out.push(Block::Code {
                lang,
                text: text.join("\n"),
            });
        } else if let Some((level, text)) = heading(line) {
            out.push(Block::Heading(level, parse_inline(text)));
            i += 1;
        } else if is_rule(line) {
            out.push(Block::Rule);
            i += 1;
        } else if depth < MAX_DEPTH && is_quote(line) {
            let mut inner = Vec::new();
            while i < lines.len() && is_quote(&lines[i]) {
                let t = lines[i].trim_start();
                let t = &t[1..];
                inner.push(t.strip_prefix(' ').unwrap_or(t).to_string());
                i += 1;
            }
            out.push(Block::Quote(blocks(&inner, depth + 1)));
        } else if let Some(first) = list_marker(line).filter(|_| depth < MAX_DEPTH) {
            let (block, next) = list(lines, i, first, depth);
            out.push(block);
            i = next;
        } else {
            let mut text = vec![line.trim()];
            i += 1;
            while i < lines.len() && !is_blank(&lines[i]) && !starts_block(&lines[i], depth) {
                text.push(lines[i].trim());
                i += 1;
            }
            out.push(Block::Paragraph(parse_inline(&text.join("\n"))));
        }
    }
    out
}

/// Whether `m` continues a list that started with `first`.
fn same_list(first: Marker, m: Marker) -> bool {
    first.number.is_some() == m.number.is_some() && m.indent < first.content
}

/// A list from line `i`; returns it and the line after it.
fn list(lines: &[String], mut i: usize, first: Marker, depth: usize) -> (Block, usize) {
    let mut items = Vec::new();
    while i < lines.len() {
        let Some(marker) = list_marker(&lines[i]).filter(|m| same_list(first, *m)) else {
            break;
        };
        let mut item = vec![lines[i].get(marker.content..).unwrap_or("").to_string()];
        i += 1;
        while i < lines.len() {
            let l = lines[i].as_str();
            if is_blank(l) {
                // A blank line continues the item only if indented content follows.
                let next = lines[i..].iter().position(|l| !is_blank(l)).map(|p| i + p);
                match next {
                    Some(n) if indent_of(&lines[n]) >= marker.content => {
                        item.extend(lines[i..n].iter().map(|_| String::new()));
                        i = n;
                    }
                    _ => break,
                }
            } else if indent_of(l) >= marker.content {
                item.push(l[marker.content..].to_string());
                i += 1;
            } else if list_marker(l).is_some() || starts_block(l, depth) {
                break;
            } else {
                // A lazy continuation of the item's paragraph.
                item.push(l.trim().to_string());
                i += 1;
            }
        }
        items.push(blocks(&item, depth + 1));
        // Blank lines between items keep the list going.
        let next = lines[i..].iter().position(|l| !is_blank(l)).map(|p| i + p);
        match next {
            Some(n) if list_marker(&lines[n]).is_some_and(|m| same_list(first, m)) => i = n,
            _ => break,
        }
    }
    let start = first.number;
    (Block::List { start, items }, i)
}
