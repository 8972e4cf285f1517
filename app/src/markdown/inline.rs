//! Inline markdown: code spans, emphasis, links and bare URLs. Works on chars so
//! that every index is a character boundary.

use super::Inline;

/// Emphasis nested deeper than this stays literal text.
const MAX_INLINE_DEPTH: usize = 16;

/// Only links that leave for the web or a mail client: never `javascript:`,
/// `data:` or a path into Tether's own API.
pub fn safe_href(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let allowed = ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len());
    (allowed && !url.chars().any(|c| c.is_control() || c.is_whitespace())).then(|| url.to_string())
}

pub fn parse_inline(text: &str) -> Vec<Inline> {
    let chars: Vec<char> = text.chars().collect();
    parse(&chars, 0, false)
}

struct Out {
    nodes: Vec<Inline>,
    text: String,
}

impl Out {
    fn flush(&mut self) {
        if !self.text.is_empty() {
            self.nodes
                .push(Inline::Text(std::mem::take(&mut self.text)));
        }
    }

    fn push(&mut self, node: Inline) {
        self.flush();
        self.nodes.push(node);
    }
}

fn run_len(s: &[char], i: usize, c: char) -> usize {
    s[i..].iter().take_while(|x| **x == c).count()
}

fn collect(s: &[char]) -> String {
    s.iter().collect()
}

/// The end of the code span opening at `i` (index past its closing run).
fn code_span(s: &[char], i: usize) -> Option<(String, usize)> {
    let n = run_len(s, i, '`');
    let mut j = i + n;
    while j < s.len() {
        if s[j] == '`' {
            let m = run_len(s, j, '`');
            if m == n {
                let mut code = collect(&s[i + n..j]).replace('\n', " ");
                if code.len() >= 2
                    && code.starts_with(' ')
                    && code.ends_with(' ')
                    && !code.trim().is_empty()
                {
                    code = code[1..code.len() - 1].to_string();
                }
                return Some((code, j + m));
            }
            j += m;
        } else {
            j += 1;
        }
    }
    None
}

/// Where the closing delimiter (`len` times `c`) of emphasis opened before
/// `from` is, skipping code spans and escapes.
fn closer(s: &[char], from: usize, c: char, len: usize) -> Option<usize> {
    let mut j = from;
    while j < s.len() {
        match s[j] {
            '\\' => j += 2,
            '`' => j = code_span(s, j).map_or(j + run_len(s, j, '`'), |(_, end)| end),
            x if x == c => {
                let run = run_len(s, j, c);
                let after_ok = c != '_' || s.get(j + run).is_none_or(|x| !x.is_alphanumeric());
                let before_ok = j > from && !s[j - 1].is_whitespace();
                if before_ok && after_ok && run == len {
                    return Some(j);
                }
                // `***` closing strong closes an emphasis inside it first.
                if before_ok && after_ok && len == 2 && run > 2 {
                    return Some(j + run - 2);
                }
                j += run;
            }
            _ => j += 1,
        }
    }
    None
}

/// The index of the `close` bracket matching the `open` at `i`.
fn matching(s: &[char], i: usize, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j < s.len() {
        match s[j] {
            '\\' => j += 1,
            x if x == open => depth += 1,
            x if x == close => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            '\n' if open == '(' => return None,
            _ => {}
        }
        j += 1;
    }
    None
}

/// `[label](url)` at `i` (or after `!` for an image): the label, the url and the end.
fn link_parts(s: &[char], i: usize) -> Option<(usize, usize, String, usize)> {
    let label_end = matching(s, i, '[', ']')?;
    if s.get(label_end + 1) != Some(&'(') {
        return None;
    }
    let dest_end = matching(s, label_end + 1, '(', ')')?;
    let dest = collect(&s[label_end + 2..dest_end]);
    let dest = dest.trim();
    // A title after the url is dropped; `<url>` loses its brackets.
    let url = dest.split_whitespace().next().unwrap_or("");
    let url = url
        .strip_prefix('<')
        .and_then(|u| u.strip_suffix('>'))
        .unwrap_or(url);
    Some((i + 1, label_end, url.to_string(), dest_end + 1))
}

/// A bare `http(s)://` URL at `i`: its end, without trailing punctuation.
fn bare_url(s: &[char], i: usize) -> Option<usize> {
    let rest = collect(&s[i..s.len().min(i + 8)]).to_ascii_lowercase();
    if !(rest.starts_with("http://") || rest.starts_with("https://")) {
        return None;
    }
    if i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '/') {
        return None;
    }
    let mut end = i;
    while end < s.len() && !s[end].is_whitespace() && !matches!(s[end], '<' | '>' | '"' | '`') {
        end += 1;
    }
    while end > i {
        let last = s[end - 1];
        let opens = s[i..end].iter().filter(|c| **c == '(').count();
        let closes = s[i..end].iter().filter(|c| **c == ')').count();
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*' | '_')
            || (last == ')' && closes > opens)
        {
            end -= 1;
        } else {
            break;
        }
    }
    (end > i + 8).then_some(end)
}

fn parse(s: &[char], depth: usize, in_link: bool) -> Vec<Inline> {
    let mut out = Out {
        nodes: Vec::new(),
        text: String::new(),
    };
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            '\\' if s.get(i + 1).is_some_and(|n| n.is_ascii_punctuation()) => {
                out.text.push(s[i + 1]);
                i += 2;
            }
            '`' => match code_span(s, i) {
                Some((code, end)) => {
                    out.push(Inline::Code(code));
                    i = end;
                }
                None => {
                    let n = run_len(s, i, '`');
                    out.text.extend(&s[i..i + n]);
                    i += n;
                }
            },
            '*' | '_' => {
                let run = run_len(s, i, c);
                let next_ok = s.get(i + run).is_some_and(|n| !n.is_whitespace());
                let prev_ok = c != '_' || i == 0 || !s[i - 1].is_alphanumeric();
                let len = if run >= 2 { 2 } else { 1 };
                let found = (depth < MAX_INLINE_DEPTH && next_ok && prev_ok)
                    .then(|| closer(s, i + len, c, len))
                    .flatten();
                match found {
                    Some(end) => {
                        let inner = parse(&s[i + len..end], depth + 1, in_link);
                        out.push(if len == 2 {
                            Inline::Strong(inner)
                        } else {
                            Inline::Emphasis(inner)
                        });
                        i = end + len;
                    }
                    None => {
                        out.text.extend(&s[i..i + run]);
                        i += run;
                    }
                }
            }
            '[' | '!' if !in_link => {
                let image = c == '!';
                let at = if image { i + 1 } else { i };
                match (s.get(at) == Some(&'['))
                    .then(|| link_parts(s, at))
                    .flatten()
                {
                    Some((label_start, label_end, url, end)) => {
                        let mut label = parse(&s[label_start..label_end], depth + 1, true);
                        if label.is_empty() {
                            label = vec![Inline::Text(if image {
                                "image".into()
                            } else {
                                url.clone()
                            })];
                        }
                        // Images become links to them: a reply loads nothing by itself.
                        match safe_href(&url) {
                            Some(href) => out.push(Inline::Link {
                                href,
                                children: label,
                            }),
                            None => {
                                out.flush();
                                out.nodes.extend(label);
                            }
                        }
                        i = end;
                    }
                    None => {
                        out.text.push(c);
                        i += 1;
                    }
                }
            }
            '<' if !in_link => {
                let end = s[i + 1..]
                    .iter()
                    .position(|x| *x == '>' || *x == '<' || x.is_whitespace())
                    .map(|p| i + 1 + p);
                let href = end
                    .filter(|e| s[*e] == '>')
                    .and_then(|e| safe_href(&collect(&s[i + 1..e])));
                match (href, end) {
                    (Some(href), Some(end)) => {
                        out.push(Inline::Link {
                            children: vec![Inline::Text(href.clone())],
                            href,
                        });
                        i = end + 1;
                    }
                    _ => {
                        out.text.push('<');
                        i += 1;
                    }
                }
            }
            'h' | 'H' if !in_link => match bare_url(s, i) {
                Some(end) => {
                    let url = collect(&s[i..end]);
                    match safe_href(&url) {
                        Some(href) => out.push(Inline::Link {
                            children: vec![Inline::Text(url)],
                            href,
                        }),
                        None => out.text.push_str(&url),
                    }
                    i = end;
                }
                None => {
                    out.text.push(c);
                    i += 1;
                }
            },
            _ => {
                out.text.push(c);
                i += 1;
            }
        }
    }
    out.flush();
    out.nodes
}
