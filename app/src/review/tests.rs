use super::*;

fn change(path: &str, status: FileStatus, added: u64, removed: u64) -> FileChange {
    FileChange {
        path: path.into(),
        old_path: None,
        status,
        added,
        removed,
        binary: false,
    }
}

fn file(change: FileChange, patch: &str) -> FileDiff {
    FileDiff {
        change,
        patch: patch.into(),
        too_large: false,
    }
}

fn diff(files: Vec<FileDiff>) -> ChangesDiff {
    ChangesDiff {
        from_idx: 4,
        to_idx: 4,
        root: "/repo".into(),
        added: files.iter().map(|f| f.change.added).sum(),
        removed: files.iter().map(|f| f.change.removed).sum(),
        files,
    }
}

/// Each row as `kind old new text`, to compare whole models at a glance.
fn show(model: &DiffModel) -> Vec<String> {
    model
        .rows
        .iter()
        .map(|r| {
            let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            format!("{:?} {} {} {}", r.kind, n(r.old), n(r.new), r.text)
        })
        .collect()
}

const TWO_HUNKS: &str = "@@ -2,3 +2,3 @@ fn main\n a\n-b\n+B\n c\n@@ -20,2 +20,3 @@\n x\n+y\n z\n\\ No newline at end of file\n";

#[test]
fn a_patch_becomes_rows_with_both_line_numbers() {
    let model = DiffModel::build(&diff(vec![file(
        change("src/a.rs", FileStatus::Modified, 2, 1),
        TWO_HUNKS,
    )]));
    assert_eq!(
        show(&model),
        [
            "File - - src/a.rs",
            "Fold - - ⋯ 1 unchanged line",
            "Hunk - - @@ -2,3 +2,3 @@ fn main",
            "Context 2 2 a",
            "Removed 3 - b",
            "Added - 3 B",
            "Context 4 4 c",
            "Fold - - ⋯ 15 unchanged lines",
            "Hunk - - @@ -20,2 +20,3 @@",
            "Context 20 20 x",
            "Added - 21 y",
            "Context 21 22 z",
            "NoNewline - - \\ No newline at end of file",
        ]
    );
    assert_eq!(model.max_line, 22);
    assert_eq!(model.files[0].first_row, 0);
}

#[test]
fn new_and_deleted_files_count_from_one() {
    let model = DiffModel::build(&diff(vec![
        file(
            change("new.txt", FileStatus::Added, 2, 0),
            "@@ -0,0 +1,2 @@\n+one\n+two\n",
        ),
        file(
            change("gone.txt", FileStatus::Deleted, 0, 1),
            "@@ -1 +0,0 @@\n-bye\n",
        ),
    ]));
    assert_eq!(
        show(&model),
        [
            "File - - new.txt",
            "Hunk - - @@ -0,0 +1,2 @@",
            "Added - 1 one",
            "Added - 2 two",
            "File - - gone.txt",
            "Hunk - - @@ -1 +0,0 @@",
            "Removed 1 - bye",
        ]
    );
    assert_eq!(model.files[1].first_row, 4);
    assert_eq!(model.file_at(6), Some(1));
}

#[test]
fn an_insertion_without_context_folds_what_lies_between() {
    // `-U0` style: an insertion after line 5, then a change at line 10.
    let model = DiffModel::build(&diff(vec![file(
        change("f", FileStatus::Modified, 2, 1),
        "@@ -5,0 +6 @@\n+new\n@@ -10 +11 @@\n-old\n+NEW\n",
    )]));
    let rows = show(&model);
    assert_eq!(rows[1], "Fold - - ⋯ 5 unchanged lines");
    assert_eq!(rows[3], "Added - 6 new");
    assert_eq!(rows[4], "Fold - - ⋯ 4 unchanged lines");
    assert_eq!(rows[6], "Removed 10 - old");
    assert_eq!(rows[7], "Added - 11 NEW");
}

#[test]
fn binary_too_large_and_renamed_files_are_summarized() {
    let mut binary = change("logo.png", FileStatus::Modified, 0, 0);
    binary.binary = true;
    let mut big = file(change("big.log", FileStatus::Modified, 90_000, 3), "");
    big.too_large = true;
    let mut moved = change("new/name.rs", FileStatus::Renamed, 0, 0);
    moved.old_path = Some("old/name.rs".into());
    let model = DiffModel::build(&diff(vec![file(binary, ""), big, file(moved, "")]));
    assert_eq!(
        show(&model),
        [
            "File - - logo.png",
            "Note - - Binary file: not shown",
            "File - - big.log",
            "Note - - Diff too large to show here: +90000 −3",
            "File - - old/name.rs → new/name.rs",
            "Note - - Renamed without changes to its content",
        ]
    );
    assert!(model.files[1].too_large);
}

#[test]
fn carriage_returns_and_stripped_blank_context_lines_are_handled() {
    let model = DiffModel::build(&diff(vec![file(
        change("dos.txt", FileStatus::Modified, 1, 1),
        "@@ -1,3 +1,3 @@\r\n a\r\n\n-b\r\n+c\r\n",
    )]));
    assert_eq!(
        show(&model)[2..],
        [
            "Context 1 1 a",
            "Context 2 2 ",
            "Removed 3 - b",
            "Added - 3 c"
        ]
    );
}

#[test]
fn hunk_headers_parse_with_and_without_counts() {
    assert_eq!(
        parse_hunk_header("@@ -1 +1,2 @@ section"),
        Some(HunkHeader {
            old_start: 1,
            old_len: 1,
            new_start: 1,
            new_len: 2
        })
    );
    assert_eq!(parse_hunk_header("@@ -x +1 @@"), None);
    assert_eq!(parse_hunk_header(" context"), None);
}

#[test]
fn a_span_quotes_new_numbers_and_old_ones_for_removed_lines() {
    let model = DiffModel::build(&diff(vec![
        file(change("src/a.rs", FileStatus::Modified, 2, 1), TWO_HUNKS),
        file(
            change("b.txt", FileStatus::Added, 1, 0),
            "@@ -0,0 +1 @@\n+b\n",
        ),
    ]));
    // One added line.
    let s = model.span(None, 5).unwrap();
    assert_eq!((s.line, s.end_line, s.place()), (3, 3, "src/a.rs:3".into()));
    // A removed line quotes its old number.
    assert_eq!(model.span(None, 4).unwrap().line, 3);
    // A range, in either order, skipping the hunk header and the fold between.
    let s = model.span(Some(10), 3).unwrap();
    assert_eq!((s.rows.clone(), s.place()), (3..11, "src/a.rs:2-21".into()));
    assert_eq!(model.span(Some(3), 10).unwrap().rows, 3..11);
    // An anchor in another file, or on a heading, is dropped.
    let s = model.span(Some(3), 15).unwrap();
    assert_eq!((s.rows.clone(), s.place()), (15..16, "b.txt:1".into()));
    assert_eq!(model.span(Some(0), 3).unwrap().rows, 3..4);
    // Headings, folds and notes take no comments.
    assert_eq!(model.span(None, 0), None);
    assert_eq!(model.span(None, 7), None);
    assert_eq!(model.span(None, 99), None);
}

#[test]
fn the_window_covers_the_viewport_and_the_overscan() {
    assert_eq!(visible_window(0.0, 400.0, 20.0, 100_000, 10), 0..31);
    assert_eq!(
        visible_window(20.0 * 50_000.0, 400.0, 20.0, 100_000, 10),
        49_990..50_031
    );
    // At the end, and past it (the content shrank under the scroll position).
    assert_eq!(
        visible_window(20.0 * 99_990.0, 400.0, 20.0, 100_000, 10),
        99_980..100_000
    );
    assert_eq!(visible_window(1e9, 400.0, 20.0, 100, 10), 90..100);
    assert_eq!(visible_window(0.0, 400.0, 20.0, 0, 10), 0..0);
    assert_eq!(visible_window(-5.0, 0.0, 20.0, 3, 0), 0..1);
}

#[test]
fn a_huge_diff_flattens_quickly_and_the_window_stays_small() {
    let mut patch = String::from("@@ -1,100000 +1,100000 @@\n");
    for i in 0..50_000 {
        patch.push_str(&format!("-old {i}\n+new {i}\n"));
    }
    let model = DiffModel::build(&diff(vec![file(
        change("huge.txt", FileStatus::Modified, 50_000, 50_000),
        &patch,
    )]));
    assert_eq!(model.rows.len(), 100_002);
    assert_eq!(model.rows.last().unwrap().new, Some(50_000));
    let w = visible_window(1_000_000.0, 800.0, 20.0, model.rows.len(), 20);
    assert!(w.len() < 100, "{w:?}");
}

#[test]
fn files_step_within_bounds() {
    assert_eq!(step_file(None, 1, 3), Some(0));
    assert_eq!(step_file(None, -1, 3), Some(2));
    assert_eq!(step_file(Some(1), 1, 3), Some(2));
    assert_eq!(step_file(Some(2), 1, 3), Some(2));
    assert_eq!(step_file(Some(0), -1, 3), Some(0));
    assert_eq!(step_file(Some(0), 1, 0), None);
}

#[test]
fn the_summary_counts_files_and_lines() {
    let mut c = Changes {
        root: "/r".into(),
        before: "b".into(),
        after: "a".into(),
        files: vec![change("a", FileStatus::Modified, 3, 1)],
        added: 3,
        removed: 1,
        revert_of: None,
    };
    assert_eq!(summary(&c), "1 file changed, +3 −1");
    c.files.push(change("b", FileStatus::Added, 0, 0));
    c.revert_of = Some(12);
    assert_eq!(summary(&c), "Reverted #12: 2 files, +3 −1");
}
