//! Heuristic progress extraction from the latest line of tool output, used to
//! draw a progress bar next to a running tool call. False negatives are cheap
//! (no bar) while false positives are confusing, so the ratio form is strict.

/// Fraction in `0.0..=1.0` if `line` shows progress.
///
/// A percentage (`45%`, `45.5 %`; the last one on the line, clamped to 100)
/// wins over a ratio (`12/100`; the last one with numerator ≤ denominator and
/// denominator > 0, not part of a date or path such as `2024/01/02`).
pub fn detect_progress(line: &str) -> Option<f64> {
    last_percentage(line).or_else(|| last_ratio(line))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn char_before(s: &str, i: usize) -> Option<char> {
    s[..i].chars().next_back()
}

fn last_percentage(line: &str) -> Option<f64> {
    let bytes = line.as_bytes();
    let mut found = None;
    for (pct, _) in line.match_indices('%') {
        // Allow one space between number and sign (`45.5 %`).
        let mut end = pct;
        if end > 0 && bytes[end - 1] == b' ' {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && (bytes[start - 1].is_ascii_digit() || bytes[start - 1] == b'.') {
            start -= 1;
        }
        let num = &line[start..end];
        // `v1.2.3%`, `abc5%` and `.5%` are not percentages we trust.
        if !num.starts_with(|c: char| c.is_ascii_digit())
            || num.ends_with('.')
            || num.matches('.').count() > 1
            || char_before(line, start).is_some_and(is_word_char)
        {
            continue;
        }
        if let Ok(v) = num.parse::<f64>() {
            found = Some((v.min(100.0) / 100.0).clamp(0.0, 1.0));
        }
    }
    found
}

fn last_ratio(line: &str) -> Option<f64> {
    let bytes = line.as_bytes();
    let mut found = None;
    for (slash, _) in line.match_indices('/') {
        let mut start = slash;
        while start > 0 && bytes[start - 1].is_ascii_digit() {
            start -= 1;
        }
        let mut end = slash + 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if start == slash || end == slash + 1 {
            continue;
        }
        // Word boundaries, and no neighbouring slash (dates, paths) or
        // decimal point (`1.5/2`, `1/2.5` are not counters).
        let before = char_before(line, start);
        if before.is_some_and(|c| is_word_char(c) || c == '/' || c == '.') {
            continue;
        }
        let after = line[end..].chars().next();
        if after.is_some_and(|c| is_word_char(c) || c == '/') {
            continue;
        }
        if after == Some('.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            continue;
        }
        let (Ok(num), Ok(den)) = (
            line[start..slash].parse::<f64>(),
            line[slash + 1..end].parse::<f64>(),
        ) else {
            continue;
        };
        if den > 0.0 && num <= den {
            found = Some(num / den);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn percentages() {
        assert!(approx(detect_progress("45%"), 0.45));
        assert!(approx(detect_progress("Downloading 45.5 %"), 0.455));
        assert!(approx(detect_progress("[####    ] 50%"), 0.5));
        assert!(approx(detect_progress("██████░░░░ 60%|"), 0.6));
        assert!(approx(detect_progress("10% done, now 90%"), 0.9));
        assert!(approx(detect_progress("150%"), 1.0));
        assert!(approx(detect_progress("0%"), 0.0));
        assert!(approx(detect_progress("100%"), 1.0));
        assert!(approx(detect_progress("(33%)"), 0.33));
        // Percentage wins over ratio.
        assert!(approx(detect_progress("12/100 [=>  ] 12%"), 0.12));
    }

    #[test]
    fn ratios() {
        assert!(approx(detect_progress("12/100"), 0.12));
        assert!(approx(detect_progress("Compiling foo (3/4)"), 0.75));
        assert!(approx(detect_progress("step 1/2 then 3/4"), 0.75));
        assert!(approx(detect_progress("[7/7] Linking"), 1.0));
        assert!(approx(
            detect_progress("Receiving objects: 5/10, done."),
            0.5
        ));
    }

    #[test]
    fn negatives() {
        for s in [
            "",
            "hello world",
            "2024/01/02",
            "built on 2024/01/02 ok",
            "/usr/bin/env",
            "see /tmp/1/2",
            "a/b",
            "5/0",
            "10/5",
            "v1/2",
            "1/2px",
            "1.5/2",
            "1/2.5",
            "printf(\"%d\")",
            "abc45%",
            "v1.2.3%",
            "% alone",
            ".5%",
            "1/2/3",
        ] {
            assert_eq!(detect_progress(s), None, "{s:?}");
        }
    }

    #[test]
    fn ratio_skips_invalid_and_keeps_last_valid() {
        // An invalid later ratio doesn't erase an earlier valid one.
        assert!(approx(detect_progress("3/4 then 9/2"), 0.75));
    }
}
