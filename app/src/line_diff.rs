//! A unified line diff of a file change an agent reports (old text → new text):
//! common ends trimmed, then a longest-common-subsequence table over what is
//! left, capped so a huge rewrite cannot freeze the browser.

/// Lines per side (after the common start and end are trimmed) beyond which only
/// a summary is shown: the table costs both sides multiplied.
pub const MAX_LINES: usize = 2_000;
/// Unchanged lines shown around each change.
pub const CONTEXT: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Same,
    Removed,
    Added,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub change: Change,
    pub text: String,
}

/// One `@@ -a,b +c,d @@` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk {
    /// 1-based first lines, as in a unified diff's header.
    pub old_start: usize,
    pub old_len: usize,
    pub new_start: usize,
    pub new_len: usize,
    /// Unchanged lines left out before this hunk.
    pub skipped_before: usize,
    pub lines: Vec<DiffLine>,
}

impl Hunk {
    pub fn header(&self) -> String {
        format!(
            "@@ -{},{} +{},{} @@",
            self.old_start, self.old_len, self.new_start, self.new_len
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diff {
    Hunks {
        hunks: Vec<Hunk>,
        added: usize,
        removed: usize,
        /// Unchanged lines left out after the last hunk.
        skipped_after: usize,
    },
    /// Too large to compare line by line: how many lines differ at most.
    TooLarge { changed: usize },
}

/// The diff from `old` (absent for a new file) to `new`.
pub fn diff(old: Option<&str>, new: &str) -> Diff {
    let old: Vec<&str> = old.map(|o| o.lines().collect()).unwrap_or_default();
    let new: Vec<&str> = new.lines().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );
    if a.len() > MAX_LINES || b.len() > MAX_LINES {
        return Diff::TooLarge {
            changed: a.len() + b.len(),
        };
    }
    let mut ops = vec![Change::Same; prefix];
    ops.extend(lcs_ops(a, b));
    ops.extend(std::iter::repeat_n(Change::Same, suffix));
    hunks(&ops, &old, &new)
}

/// The edit script from `a` to `b`, deletions before insertions at each point.
fn lcs_ops(a: &[&str], b: &[&str]) -> Vec<Change> {
    let width = b.len() + 1;
    // table[i * width + j]: the longest common subsequence of a[i..] and b[j..].
    // Both sides are at most MAX_LINES, so u16 holds every length.
    let mut table = vec![0u16; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i * width + j] = if a[i] == b[j] {
                table[(i + 1) * width + j + 1] + 1
            } else {
                table[(i + 1) * width + j].max(table[i * width + j + 1])
            };
        }
    }
    let mut ops = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(Change::Same);
            i += 1;
            j += 1;
        } else if j == b.len()
            || (i < a.len() && table[(i + 1) * width + j] >= table[i * width + j + 1])
        {
            ops.push(Change::Removed);
            i += 1;
        } else {
            ops.push(Change::Added);
            j += 1;
        }
    }
    ops
}

/// Groups the script into hunks with `CONTEXT` lines around each change.
fn hunks(ops: &[Change], old: &[&str], new: &[&str]) -> Diff {
    let added = ops.iter().filter(|c| **c == Change::Added).count();
    let removed = ops.iter().filter(|c| **c == Change::Removed).count();
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k] != Change::Same).collect();
    // Op ranges to show, merged when their context would touch.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &k in &changed {
        let (from, to) = (k.saturating_sub(CONTEXT), (k + CONTEXT + 1).min(ops.len()));
        match ranges.last_mut() {
            Some(last) if from <= last.1 => last.1 = to,
            _ => ranges.push((from, to)),
        }
    }
    // Line numbers (0-based) before each op.
    let mut positions = Vec::with_capacity(ops.len() + 1);
    let (mut o, mut n) = (0, 0);
    for op in ops {
        positions.push((o, n));
        match op {
            Change::Same => {
                o += 1;
                n += 1;
            }
            Change::Removed => o += 1,
            Change::Added => n += 1,
        }
    }
    positions.push((o, n));
    let mut out = Vec::new();
    let mut shown_until = 0;
    for (from, to) in ranges {
        let (old_from, new_from) = positions[from];
        let (old_to, new_to) = positions[to];
        let lines = (from..to)
            .map(|k| {
                let (oi, ni) = positions[k];
                let text = match ops[k] {
                    Change::Added => new[ni],
                    _ => old[oi],
                };
                DiffLine {
                    change: ops[k],
                    text: text.to_string(),
                }
            })
            .collect();
        let (old_len, new_len) = (old_to - old_from, new_to - new_from);
        out.push(Hunk {
            // As `diff -u` does: an empty side's start is the line before it.
            old_start: if old_len == 0 { old_from } else { old_from + 1 },
            old_len,
            new_start: if new_len == 0 { new_from } else { new_from + 1 },
            new_len,
            skipped_before: from - shown_until,
            lines,
        });
        shown_until = to;
    }
    Diff::Hunks {
        hunks: out,
        added,
        removed,
        skipped_after: ops.len() - shown_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(d: &Diff) -> String {
        let Diff::Hunks { hunks, .. } = d else {
            return format!("{d:?}");
        };
        let mut out = String::new();
        for h in hunks {
            out.push_str(&format!("[{}] {}\n", h.skipped_before, h.header()));
            for l in &h.lines {
                let sign = match l.change {
                    Change::Same => ' ',
                    Change::Removed => '-',
                    Change::Added => '+',
                };
                out.push_str(&format!("{sign}{}\n", l.text));
            }
        }
        out
    }

    #[test]
    fn identical_texts_have_no_hunks() {
        assert_eq!(
            diff(Some("a\nb\n"), "a\nb\n"),
            Diff::Hunks {
                hunks: vec![],
                added: 0,
                removed: 0,
                skipped_after: 2
            }
        );
    }

    #[test]
    fn a_replaced_line_in_the_middle_keeps_three_lines_of_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        let d = diff(Some(old), new);
        assert_eq!(
            render(&d),
            "[1] @@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
        let Diff::Hunks {
            added,
            removed,
            skipped_after,
            ..
        } = d
        else {
            panic!()
        };
        assert_eq!((added, removed, skipped_after), (1, 1, 1));
    }

    #[test]
    fn distant_changes_make_separate_hunks_and_near_ones_merge() {
        let old: String = (1..=30).map(|i| format!("{i}\n")).collect();
        let new: String = (1..=30)
            .map(|i| match i {
                3 => "three\n".to_string(),
                10 => "10\nten\n".to_string(),
                25 => String::new(),
                _ => format!("{i}\n"),
            })
            .collect();
        assert_eq!(
            render(&diff(Some(&old), &new)),
            "[0] @@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n\
             [1] @@ -8,6 +8,7 @@\n 8\n 9\n 10\n+ten\n 11\n 12\n 13\n\
             [8] @@ -22,7 +23,6 @@\n 22\n 23\n 24\n-25\n 26\n 27\n 28\n"
        );
    }

    #[test]
    fn a_new_file_is_all_additions() {
        let d = diff(None, "x\ny");
        assert_eq!(render(&d), "[0] @@ -0,0 +1,2 @@\n+x\n+y\n");
    }

    #[test]
    fn deleting_everything_is_all_removals() {
        assert_eq!(
            render(&diff(Some("x\ny"), "")),
            "[0] @@ -1,2 +0,0 @@\n-x\n-y\n"
        );
    }

    #[test]
    fn the_script_is_a_shortest_one() {
        let d = diff(Some("a\nb\nc\nd\ne"), "a\nc\nd\nb\ne");
        let Diff::Hunks { added, removed, .. } = d else {
            panic!()
        };
        assert_eq!(added + removed, 2);
    }

    #[test]
    fn huge_rewrites_get_a_summary() {
        let old: String = (0..MAX_LINES + 5).map(|i| format!("a{i}\n")).collect();
        let new: String = (0..10).map(|i| format!("b{i}\n")).collect();
        assert_eq!(
            diff(
                Some(&format!("head\n{old}tail")),
                &format!("head\n{new}tail")
            ),
            Diff::TooLarge {
                changed: MAX_LINES + 15
            }
        );
        // A long file with a small change is compared, thanks to the trimmed ends.
        let long: String = (0..10 * MAX_LINES).map(|i| format!("{i}\n")).collect();
        let changed = long.replacen("\n5000\n", "\nfive thousand\n", 1);
        assert!(matches!(
            diff(Some(&long), &changed),
            Diff::Hunks {
                added: 1,
                removed: 1,
                ..
            }
        ));
    }

    proptest::proptest! {
        #[test]
        fn applying_the_script_gives_both_texts(
            old in proptest::collection::vec(0u8..4, 0..40),
            new in proptest::collection::vec(0u8..4, 0..40),
        ) {
            let a: Vec<String> = old.iter().map(u8::to_string).collect();
            let b: Vec<String> = new.iter().map(u8::to_string).collect();
            let a_ref: Vec<&str> = a.iter().map(String::as_str).collect();
            let b_ref: Vec<&str> = b.iter().map(String::as_str).collect();
            let ops = lcs_ops(&a_ref, &b_ref);
            let (mut i, mut j) = (0, 0);
            for op in ops {
                match op {
                    Change::Same => { proptest::prop_assert_eq!(a[i].as_str(), b[j].as_str()); i += 1; j += 1; }
                    Change::Removed => i += 1,
                    Change::Added => j += 1,
                }
            }
            proptest::prop_assert_eq!((i, j), (a.len(), b.len()));
        }
    }
}
