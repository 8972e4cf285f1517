//! What recording a turn's changes costs in a big repository: a turn that edits 100
//! of 10,000 files, in a git work tree (two snapshots and a diff) and in a plain copy
//! of the same files (none), and fetching that turn's full diff.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::json;
use tether_testkit::http;

use crate::client::ConvStream;
use crate::procs::Tether;
use crate::{Ctx, Report};

/// Writes `files` files of ~1 KiB in 100 directories, dated a minute ago like the
/// files of a repository people work in: files as new as the index would make git
/// re-read every one of them ("racily clean"), which no real work tree does for long.
fn fill(dir: &Path, files: usize) -> Result<(), String> {
    let line = "the quick brown fox jumps over the lazy dog, again and again\n";
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    for i in 0..files {
        let sub = dir.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
        let body: String = (0..16).map(|n| format!("{i} {n} {line}")).collect();
        let path = sub.join(format!("f{i:05}.txt"));
        std::fs::write(&path, body).map_err(|e| e.to_string())?;
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(past))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

async fn create(t: &Tether, cwd: &Path) -> Result<String, String> {
    let body = json!({ "cwd": cwd });
    let summary = http::json(t.addr(), "POST", "/api/conversations", Some(&body)).await?;
    summary["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no id in {summary}"))
}

/// Runs `command` as one turn; returns its duration from the chat request to the
/// closing message, and the index of its `changes` message if it has one.
async fn timed_turn(
    t: &Tether,
    id: &str,
    from: u64,
    command: &str,
) -> Result<(f64, Option<u64>, u64), String> {
    let mut stream = ConvStream::open(t.addr(), id, from).await?;
    let started = Instant::now();
    t.chat(id, command).await?;
    let mut changes = None;
    loop {
        let msg = stream.next_message().await?;
        if msg.kind == "changes" {
            changes = Some(msg.idx);
        }
        if msg.kind == "agent" && msg.end_of_turn {
            return Ok((started.elapsed().as_secs_f64() * 1e3, changes, msg.idx + 1));
        }
    }
}

pub async fn changes(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let files = if ctx.smoke { 1_000 } else { 10_000 };
    let t = Tether::start(&ctx.tether).await?;
    let repo = t.cwd.path().join("repo");
    let plain = t.cwd.path().join("plain");
    eprintln!("changes: a repository of {files} files");
    fill(&repo, files)?;
    fill(&plain, files)?;
    git(&repo, &["init", "-q"])?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "start"])?;
    let in_repo = create(&t, &repo).await?;
    let outside = create(&t, &plain).await?;
    let (mut at_repo, mut at_plain) = (0, 0);
    for run in 0..ctx.runs {
        eprintln!("changes run {}", run + 1);
        // 100 files, one in each directory, a different hundred each run, edited by
        // one process so the command itself costs little.
        let edit = format!("sed -i '$a run {run}' d*/f00{}[0-9][0-9].txt", run % 10);
        let mut times = Vec::new();
        for command in ["true", edit.as_str()] {
            let (plain_ms, none, next) = timed_turn(&t, &outside, at_plain, command).await?;
            at_plain = next;
            if none.is_some() {
                return Err("a directory outside git got a changes message".into());
            }
            let (repo_ms, idx, next) = timed_turn(&t, &in_repo, at_repo, command).await?;
            at_repo = next;
            times.push((plain_ms, repo_ms, idx));
        }
        let (quiet_plain, quiet_repo, quiet_idx) = times[0];
        let (edit_plain, edit_repo, idx) = times[1];
        if quiet_idx.is_some() {
            return Err("a turn that changed nothing got a changes message".into());
        }
        let idx = idx.ok_or("the turn in the repository got no changes message")?;
        let started = Instant::now();
        let diff = http::json(
            t.addr(),
            "GET",
            &format!("/api/conversations/{in_repo}/changes?turn={idx}"),
            None,
        )
        .await?;
        let fetch_ms = started.elapsed().as_secs_f64() * 1e3;
        let changed = diff["files"].as_array().map_or(0, Vec::len);
        if changed != 100 {
            return Err(format!(
                "expected 100 changed files, the diff has {changed}"
            ));
        }
        rep.add(
            &format!("changes ({files} files): a turn that changes nothing, outside git"),
            "ms",
            None,
            quiet_plain,
        );
        rep.add(
            "changes: the same in a git work tree (2 snapshots)",
            "ms",
            None,
            quiet_repo,
        );
        rep.add(
            "changes: a turn editing 100 files, outside git",
            "ms",
            None,
            edit_plain,
        );
        rep.add(
            "changes: the same in a git work tree (2 snapshots + summary)",
            "ms",
            None,
            edit_repo,
        );
        rep.add(
            "changes: recording overhead of the editing turn",
            "ms",
            Some(("<=", 1_000.0)),
            edit_repo - edit_plain,
        );
        rep.add(
            "changes: GET the turn's full diff (100 files)",
            "ms",
            Some(("<=", 500.0)),
            fetch_ms,
        );
    }
    t.stop().await;
    Ok(())
}
