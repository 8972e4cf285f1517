//! Properties over random input: chunking and the fast paths never change the
//! result, and the output stays within its bounds.

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
        (0u8..=255, 0u8..=255, 0u8..=255).prop_map(|(r, g, b)| format!("\x1b[48;2;{r};{g};{b}m")),
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
