//! What a turn changed in the conversation's git work tree: the `changes` message,
//! its diff, the net diff, revert, and the user's git state left exactly as it was.
//! Every test runs real commands in a real repository.

mod common;

use std::path::Path;
use std::process::Command;

use app::protocol::{Changes, ChangesDiff, FileStatus, Message, MessageType, RunStatus};
use common::{StatusCode, TestServer, assert_error, git};
use serde_json::json;

/// A repository with history, a staged change, an unstaged change, an untracked
/// file, an ignored directory and a stash: a tree people really have.
fn busy_repo(dir: &Path) {
    git(dir, &["init", "-q"]);
    write(dir, "a.txt", "one\ntwo\nthree\n");
    write(dir, "b.txt", "bee\n");
    write(dir, "old.txt", "moved content\nline 2\nline 3\nline 4\n");
    write(dir, "staged.txt", "first\n");
    write(dir, ".gitignore", "ignored/\n");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "start"]);
    write(dir, "stashed.txt", "to stash\n");
    git(dir, &["add", "stashed.txt"]);
    git(dir, &["stash", "-q"]);
    write(dir, "staged.txt", "first\nstaged\n");
    git(dir, &["add", "staged.txt"]);
    write(dir, "staged.txt", "first\nstaged\nunstaged\n");
    write(dir, "untracked.txt", "mine\n");
}

/// An in-process server (with `args`) and a conversation in a fresh `busy_repo`.
async fn busy_conversation(args: &[&str]) -> (TestServer, std::path::PathBuf, String) {
    let server = TestServer::in_process_with(args);
    let dir = server.work_dir("repo");
    busy_repo(&dir);
    let id = server.create(&dir).await;
    (server, dir, id)
}

fn write(dir: &Path, path: &str, content: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().expect("a file has a parent"))
        .expect("create the file's directory");
    std::fs::write(full, content).expect("write the file");
}

fn read(dir: &Path, path: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(path)).ok()
}

/// The user's index, stash, refs and HEAD, read without refreshing the index; with
/// `status`, also what `git status` says of the work tree.
fn git_state(dir: &Path, status: bool) -> String {
    let quiet = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let index = std::fs::read(dir.join(".git/index")).expect("the index");
    let mut state = format!(
        "index: {}\nstash:\n{}\nrefs:\n{}\nHEAD: {}",
        sha_of(&index),
        quiet(&["stash", "list", "--format=%H %s"]),
        quiet(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/heads",
            "refs/tags",
            "refs/stash"
        ]),
        quiet(&["symbolic-ref", "HEAD"]),
    );
    if status {
        state.push_str(&quiet(&[
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=all",
        ]));
    }
    state
}

fn tether_refs(dir: &Path) -> usize {
    git(
        dir,
        &["for-each-ref", "--format=%(refname)", "refs/tether/"],
    )
    .lines()
    .count()
}

fn sha_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Runs `command` as one turn and returns the messages the turn added.
async fn turn(server: &TestServer, id: &str, command: &str) -> Vec<Message> {
    let before = server.messages(id).await.len();
    server.chat(id, command).await;
    server
        .wait_state(id, "the turn's end", |s| {
            s.status == RunStatus::Idle && s.message_count as usize > before + 1
        })
        .await;
    server.messages(id).await.split_off(before)
}

fn changes_in(messages: &[Message]) -> Option<(u64, Changes)> {
    messages
        .iter()
        .find(|m| m.kind == MessageType::Changes)
        .map(|m| {
            (
                m.idx,
                m.changes
                    .clone()
                    .expect("a changes message carries changes"),
            )
        })
}

async fn diff(server: &TestServer, id: &str, query: &str) -> ChangesDiff {
    let (status, body) = server
        .get(&format!("conversations/{id}/changes?{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).expect("a ChangesDiff")
}

#[tokio::test]
async fn a_turn_that_edits_adds_deletes_and_renames_gets_its_exact_diff() {
    let (server, dir, id) = busy_conversation(&[]).await;
    let state_before = git_state(&dir, false);

    let messages = turn(
        &server,
        &id,
        "printf 'four\\n' >> a.txt && sed -i 's/two/TWO/' a.txt && rm b.txt && mv old.txt new.txt \
         && mkdir -p src/deep && printf 'fn main() {}\\n' > src/deep/main.rs \
         && printf '\\000\\001\\002' > blob.bin && mkdir -p ignored && echo junk > ignored/x",
    )
    .await;
    assert_eq!(
        git_state(&dir, false),
        state_before,
        "the user's git state changed"
    );

    let (idx, changes) = changes_in(&messages).expect("a changes message");
    let closing = messages.last().expect("the turn's messages");
    assert!(
        closing.end_of_turn && closing.idx > idx,
        "changes come before the turn's end"
    );
    let summary: Vec<_> = changes
        .files
        .iter()
        .map(|f| {
            (
                f.path.as_str(),
                f.old_path.as_deref(),
                f.status,
                f.added,
                f.removed,
                f.binary,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a.txt", None, FileStatus::Modified, 2, 1, false),
            ("b.txt", None, FileStatus::Deleted, 0, 1, false),
            ("blob.bin", None, FileStatus::Added, 0, 0, true),
            ("new.txt", Some("old.txt"), FileStatus::Renamed, 0, 0, false),
            ("src/deep/main.rs", None, FileStatus::Added, 1, 0, false),
        ]
    );
    assert_eq!((changes.added, changes.removed), (3, 2));
    assert_eq!(changes.root, dir.display().to_string());

    let full = diff(&server, &id, &format!("turn={idx}")).await;
    assert_eq!((full.from_idx, full.to_idx), (idx, idx));
    let patch_of = |path: &str| {
        full.files
            .iter()
            .find(|f| f.change.path == path)
            .unwrap_or_else(|| panic!("{path} in the diff"))
    };
    assert_eq!(
        patch_of("a.txt").patch,
        "@@ -1,3 +1,4 @@\n one\n-two\n+TWO\n three\n+four\n"
    );
    assert_eq!(
        patch_of("src/deep/main.rs").patch,
        "@@ -0,0 +1 @@\n+fn main() {}\n"
    );
    assert!(patch_of("blob.bin").patch.is_empty());
    assert!(
        patch_of("new.txt").patch.is_empty(),
        "a pure rename has no hunks"
    );
    assert_eq!(git_state(&dir, false), state_before);
}

#[tokio::test]
async fn revert_restores_exactly_and_refuses_after_a_later_edit() {
    let (server, dir, id) = busy_conversation(&[]).await;
    let state_before = git_state(&dir, true);
    let originals: Vec<_> = ["a.txt", "b.txt", "old.txt", "staged.txt", "untracked.txt"]
        .iter()
        .map(|p| (*p, read(&dir, p)))
        .collect();

    let messages = turn(
        &server,
        &id,
        "echo more >> a.txt && echo changed > staged.txt && rm b.txt && mv old.txt new.txt \
         && mkdir -p made/here && echo hi > made/here/file.txt",
    )
    .await;
    let (idx, _) = changes_in(&messages).expect("a changes message");

    let (status, body) = server
        .post(
            &format!("conversations/{id}/revert"),
            json!({ "turn": idx }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (path, content) in &originals {
        assert_eq!(&read(&dir, path), content, "{path} after the revert");
    }
    assert!(!dir.join("new.txt").exists());
    assert!(
        !dir.join("made").exists(),
        "the directories the turn made are gone"
    );
    assert_eq!(git_state(&dir, true), state_before);
    // The revert is in the log, with what it changed.
    let log = server.messages(&id).await;
    let entry = log.last().expect("the log");
    assert_eq!(entry.idx, body["idx"].as_u64().expect("the revert's idx"));
    let reverted = entry.changes.clone().expect("the revert's changes");
    assert_eq!(reverted.revert_of, Some(idx));
    assert_eq!(reverted.files.len(), 5);

    // A turn, then someone edits one of its files again: no revert.
    let messages = turn(&server, &id, "echo agent >> a.txt && echo agent > c.txt").await;
    let (second, _) = changes_in(&messages).expect("a changes message");
    write(&dir, "a.txt", "edited by hand\n");
    let count = server.messages(&id).await.len();
    let refs = tether_refs(&dir);
    let refused = server
        .post(
            &format!("conversations/{id}/revert"),
            json!({ "turn": second }),
        )
        .await;
    assert_error("revert after an edit", &refused, StatusCode::CONFLICT);
    assert!(
        refused.1["error"]
            .as_str()
            .expect("an error message")
            .contains("a.txt"),
        "{}",
        refused.1
    );
    assert_eq!(read(&dir, "a.txt").as_deref(), Some("edited by hand\n"));
    assert_eq!(read(&dir, "c.txt").as_deref(), Some("agent\n"));
    assert_eq!(
        server.messages(&id).await.len(),
        count,
        "a refusal logs nothing"
    );
    assert_eq!(tether_refs(&dir), refs, "a refusal keeps no snapshot");
}

#[tokio::test]
async fn the_net_diff_spans_later_turns_and_quiet_turns_add_nothing() {
    let (server, dir, id) = busy_conversation(&[]).await;

    let first = turn(&server, &id, "sed -i 's/one/ONE/' a.txt").await;
    let (first_idx, _) = changes_in(&first).expect("changes");
    let state = git_state(&dir, true);
    let quiet = turn(&server, &id, "echo nothing to change; cat a.txt").await;
    assert!(
        changes_in(&quiet).is_none(),
        "a turn that changes nothing adds no changes message"
    );
    assert_eq!(
        git_state(&dir, true),
        state,
        "two snapshots left no trace in git status"
    );
    let third = turn(
        &server,
        &id,
        "sed -i 's/three/THREE/' a.txt && echo x > extra.txt",
    )
    .await;
    let (third_idx, _) = changes_in(&third).expect("changes");

    let net = diff(&server, &id, &format!("since={first_idx}")).await;
    assert_eq!((net.from_idx, net.to_idx), (first_idx, third_idx));
    let paths: Vec<_> = net.files.iter().map(|f| f.change.path.as_str()).collect();
    assert_eq!(paths, ["a.txt", "extra.txt"]);
    assert_eq!(
        net.files[0].patch,
        "@@ -1,3 +1,3 @@\n-one\n+ONE\n two\n-three\n+THREE\n"
    );
    let only_first = diff(&server, &id, &format!("turn={first_idx}")).await;
    assert_eq!(only_first.files.len(), 1);
}

#[tokio::test]
async fn outside_a_work_tree_nothing_is_recorded() {
    let server = TestServer::in_process();
    let dir = server.work_dir("plain");
    let id = server.create(&dir).await;
    let messages = turn(&server, &id, "echo hi > file.txt").await;
    assert!(
        messages
            .iter()
            .all(|m| m.kind != MessageType::Changes && m.kind != MessageType::Notice),
        "{messages:?}"
    );
}

#[tokio::test]
async fn a_tree_over_the_snapshot_limit_gets_a_note_and_the_turn_runs() {
    let (server, _dir, id) = busy_conversation(&["--max-snapshot-mb", "1"]).await;
    let messages = turn(
        &server,
        &id,
        "head -c 3000000 /dev/zero > big.bin && echo done",
    )
    .await;
    let note = messages
        .iter()
        .find(|m| m.kind == MessageType::Notice)
        .expect("a note saying why there is no diff");
    assert!(note.content.contains("not recorded"), "{}", note.content);
    assert!(
        note.content.contains("--max-snapshot-mb"),
        "{}",
        note.content
    );
    assert!(changes_in(&messages).is_none());
    assert!(messages.last().expect("the turn's messages").end_of_turn);
}

#[tokio::test]
async fn restart_removes_the_snapshots_and_old_diffs_are_gone() {
    let (server, dir, id) = busy_conversation(&[]).await;
    let messages = turn(&server, &id, "echo more >> a.txt").await;
    let (idx, _) = changes_in(&messages).expect("changes");
    assert_eq!(tether_refs(&dir), 2, "one ref per snapshot");

    let (status, body) = server
        .post(&format!("conversations/{id}/restart"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        tether_refs(&dir),
        0,
        "a restart removes every snapshot's ref"
    );
    let gone = server
        .get(&format!("conversations/{id}/changes?turn={idx}"))
        .await;
    assert_error("a diff from before the restart", &gone, StatusCode::GONE);
    let revert = server
        .post(
            &format!("conversations/{id}/revert"),
            json!({ "turn": idx }),
        )
        .await;
    assert_error(
        "a revert from before the restart",
        &revert,
        StatusCode::GONE,
    );
}

#[tokio::test]
async fn bad_queries_and_a_revert_during_a_turn_change_nothing() {
    let (server, dir, id) = busy_conversation(&[]).await;
    let messages = turn(&server, &id, "echo more >> a.txt").await;
    let (idx, _) = changes_in(&messages).expect("changes");
    let user_idx = messages[0].idx;

    for query in ["", "turn=1&since=1", "turn=x", "other=1"] {
        let answer = server
            .get(&format!("conversations/{id}/changes?{query}"))
            .await;
        assert_error(query, &answer, StatusCode::BAD_REQUEST);
    }
    let not_changes = server
        .get(&format!("conversations/{id}/changes?turn={user_idx}"))
        .await;
    assert_error("a user message", &not_changes, StatusCode::NOT_FOUND);
    let past_end = server
        .get(&format!("conversations/{id}/changes?turn=99999"))
        .await;
    assert_error("past the end", &past_end, StatusCode::NOT_FOUND);

    // A running turn holds the tree.
    let gate = dir.join("gate");
    server
        .chat(
            &id,
            &format!("while [ ! -e {} ]; do sleep 0.05; done", gate.display()),
        )
        .await;
    server
        .wait_state(&id, "the turn running", |s| {
            !s.outstanding_tool_calls.is_empty()
        })
        .await;
    let content = read(&dir, "a.txt");
    let busy = server
        .post(
            &format!("conversations/{id}/revert"),
            json!({ "turn": idx }),
        )
        .await;
    assert_error("a revert during a turn", &busy, StatusCode::CONFLICT);
    assert_eq!(read(&dir, "a.txt"), content);
    std::fs::write(&gate, "").expect("open the gate");
    server
        .wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
}

#[tokio::test]
async fn an_agents_file_writes_are_in_its_turns_changes() {
    let server = TestServer::with_fake_agent("");
    let id = server.create_fake().await;
    let dir = server.work_dir("work");
    git(&dir, &["init", "-q"]);
    git(&dir, &["commit", "-q", "--allow-empty", "-m", "start"]);
    let messages = turn(&server, &id, "write notes/a.txt first\\nsecond\nsay done").await;
    let (idx, changes) = changes_in(&messages).expect("a changes message");
    assert_eq!(changes.files.len(), 1);
    assert_eq!(changes.files[0].path, "notes/a.txt");
    assert_eq!(changes.files[0].status, FileStatus::Added);
    let full = diff(&server, &id, &format!("turn={idx}")).await;
    assert_eq!(
        full.files[0].patch,
        "@@ -0,0 +1,2 @@\n+first\n+second\n\\ No newline at end of file\n"
    );
}

#[tokio::test]
async fn a_repository_git_cannot_read_gets_a_note_and_the_turn_runs() {
    let (server, dir, id) = busy_conversation(&[]).await;
    std::fs::write(dir.join(".git/HEAD"), "garbage\n").expect("break the repository");
    let messages = turn(&server, &id, "echo edit >> a.txt && echo ran").await;
    let note = messages
        .iter()
        .find(|m| m.kind == MessageType::Notice)
        .expect("a note saying why there is no diff");
    assert!(note.content.contains("not recorded"), "{}", note.content);
    assert!(changes_in(&messages).is_none());
    assert!(messages.last().expect("the turn's messages").end_of_turn);
    assert_eq!(
        read(&dir, "a.txt").as_deref(),
        Some("one\ntwo\nthree\nedit\n")
    );
}
