//! `app::ansi::Terminal`, the UI's renderer of untrusted terminal output: any input,
//! fed in any chunks, never panics; what it keeps has no control characters other
//! than the `\n` between lines; and the result does not depend on the chunking.
//!
//! Input layout: byte 0 picks the line limit, byte 1 the column limit (0: the
//! defaults), byte 2 the number of cuts, then one byte per cut (a char position,
//! scaled to the text), then the text (lossy UTF-8, as the server sends it).

#![no_main]

use app::ansi::Terminal;
use libfuzzer_sys::fuzz_target;

fn terminal(lines: u8, cols: u8) -> Terminal {
    match (lines, cols) {
        (0, 0) => Terminal::new(),
        // Small limits make eviction and soft-wrapping happen on short inputs.
        _ => Terminal::with_limits(usize::from(lines % 16), usize::from(cols % 64)),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (lines, cols, cut_count) = (data[0], data[1], usize::from(data[2] % 32));
    let rest = &data[3..];
    if rest.len() < cut_count {
        return;
    }
    let (cut_data, payload) = rest.split_at(cut_count);
    let text = String::from_utf8_lossy(payload);
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let mut points: Vec<usize> = cut_data
        .iter()
        .map(|&c| bounds[usize::from(c) * (bounds.len() - 1) / 255])
        .collect();
    points.push(0);
    points.push(text.len());
    points.sort_unstable();
    points.dedup();

    let mut whole = terminal(lines, cols);
    whole.feed(&text);
    let mut chunked = terminal(lines, cols);
    for w in points.windows(2) {
        chunked.feed(&text[w[0]..w[1]]);
    }

    let plain = whole.plain_text();
    if let Some(c) = plain.chars().find(|&c| c != '\n' && c.is_control()) {
        panic!("plain_text keeps the control character {c:?}: {plain:?}");
    }
    for line in whole.lines() {
        for run in &line.runs {
            assert!(!run.text.is_empty(), "an empty run");
            assert!(!run.text.contains('\n'), "a newline inside a line");
        }
    }
    assert_eq!(chunked.plain_text(), plain, "chunking changed the text");
    assert_eq!(chunked.lines(), whole.lines(), "chunking changed the lines");
    assert_eq!(chunked.dropped_lines(), whole.dropped_lines());
    assert_eq!(chunked.current_style(), whole.current_style());
});
