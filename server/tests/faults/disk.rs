//! d. An unwritable data directory, and a disk that fills up (the binary: refusing to
//! start, and a file size limit set on the server process).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app::protocol::{MessageType, RunStatus, ToolStatus};

use crate::common::{
    ProcessGuard, TestServer, WAIT, assert_closed, assert_dense, marker, output_of, results_of,
    single_result, tool_calls, wait_no_processes,
};
use crate::support::{SERIAL, assert_no_hidden_open_calls, assert_seq_prefix, describe};

/// Runs the binary on `data_dir`, expecting it to refuse to start. Returns the exit
/// code and stderr.
fn start_expecting_failure(data_dir: &Path) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("--addr")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tether binary");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not exit on the bad data directory {}",
                data_dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("collect the output");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        !stdout.contains("Tether is serving"),
        "it claimed to serve with a bad data directory: {stdout}"
    );
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal instead of exiting: {status:?}"));
    (code, String::from_utf8_lossy(&output.stderr).to_string())
}

#[test]
fn unusable_data_directory_is_refused_at_start_naming_the_path() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let file = root.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write a file");
    let db_is_dir = root.path().join("db-is-a-dir");
    std::fs::create_dir_all(db_is_dir.join("tether.db")).expect("mkdir");
    let garbage = root.path().join("garbage-db");
    std::fs::create_dir_all(&garbage).expect("mkdir");
    std::fs::write(garbage.join("tether.db"), vec![0x5a; 8192]).expect("write garbage");
    let cases = [
        ("a regular file where the directory should be", file.clone()),
        ("a path under a regular file", file.join("data")),
        (
            "a path under /proc",
            Path::new("/proc/tether-faults-test/data").to_path_buf(),
        ),
        ("tether.db is a directory", db_is_dir),
        ("tether.db is not a database", garbage),
    ];
    for (what, dir) in cases {
        let started = Instant::now();
        let (code, stderr) = start_expecting_failure(&dir);
        let shown = dir.display().to_string();
        println!(
            "[data-dir] {what}: exit {code} in {:.2} s: {}",
            started.elapsed().as_secs_f64(),
            stderr.trim()
        );
        assert_ne!(code, 0, "{what}: exit code");
        assert!(
            stderr.contains(&shown),
            "{what}: stderr does not name {shown}: {stderr}"
        );
        assert_eq!(
            stderr.matches("cannot open the data directory").count(),
            1,
            "{what}: unclear error: {stderr}"
        );
    }
}

/// Size limit for files the server writes (`ulimit -f`, KiB): enough for the first
/// commands, far less than the flood. The WAL (which grows up to ~4 MiB before its
/// first checkpoint) hits it first.
const FSIZE_LIMIT_KIB: u64 = 3 * 1024;

#[tokio::test]
async fn disk_full_during_a_flood_stops_the_command_and_keeps_the_log() {
    // The limit applies to files this process writes; on NATS, `nats.rs` fills the
    // stream instead.
    if crate::common::sqlite_only("disk_full_during_a_flood") {
        return;
    }
    let _serial = SERIAL.lock().await;
    // SIGXFSZ ignored: a write past the limit fails with EFBIG, as on a full disk,
    // instead of killing the process.
    let script = format!("trap '' XFSZ; ulimit -f {FSIZE_LIMIT_KIB}; exec \"$0\" \"$@\"");
    let mut server = TestServer::start_wrapped(&["bash", "-c", &script], &[], &[]);
    let limit = std::fs::read_to_string(format!("/proc/{}/limits", server.pid()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max file size"))
        .unwrap_or_default()
        .to_string();
    assert!(
        limit.contains(&(FSIZE_LIMIT_KIB * 1024).to_string()),
        "the limit is not in force: {limit}"
    );
    let id = server.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = server.stream(&id).await;
    server.chat(&id, "echo before").await;
    sse.wait_end_of_turns(1).await;
    let started = Instant::now();
    server
        .chat(&id, &format!("exec -a seq{m} seq 1 1000000000"))
        .await;
    // The command must be stopped: its process goes away and the conversation is idle.
    let state = server
        .wait_state(&id, "the flood to stop", |s| {
            s.status == RunStatus::Idle && s.outstanding_tool_calls.is_empty()
        })
        .await;
    let stopped_after = started.elapsed();
    if let Err(pids) = wait_no_processes(&format!("seq{m}"), Duration::from_secs(10)).await {
        panic!("the flood still runs although nothing can be saved: {pids:?}");
    }
    // The server is still up and serves everything it stored.
    let log = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    assert_eq!(state.message_count, messages.len() as u64);
    sse.wait_idx(state.message_count - 1).await;
    sse.assert_dense_from(0);
    for (idx, raw) in sse.raw_messages() {
        assert_eq!(raw, log[idx as usize], "streamed message {idx}");
    }
    let mut replay = server.stream_from(&id, 0).await;
    replay.wait_idx(state.message_count - 1).await;
    assert_eq!(replay.raw_messages().len(), log.len());
    let call = tool_calls(&messages)[1].clone();
    let lines = assert_seq_prefix(&output_of(&messages, &call.tool_call_id));
    let results = results_of(&messages, &call.tool_call_id);
    let closed_live = match results.as_slice() {
        [] => false,
        [result] => {
            assert_eq!(result.status, Some(ToolStatus::Error), "{result:#?}");
            assert!(
                result.content.contains("could not be saved"),
                "an unclear result: {}",
                result.content
            );
            // The closing `end_of_turn` may not fit while the disk is full: the
            // conversation then closes the turn before anything else is appended
            // (the next chat) or at the restart. Both are checked below.
            true
        }
        more => panic!("several results: {more:#?}"),
    };
    let db_size =
        |name: &str| std::fs::metadata(server.data_dir().join(name)).map_or(0, |m| m.len());
    println!(
        "[disk-full] limit {FSIZE_LIMIT_KIB} KiB: flood stopped after {:.2} s with {} messages stored \
         ({lines} lines of output); tether.db {} B, tether.db-wal {} B",
        stopped_after.as_secs_f64(),
        messages.len(),
        db_size("tether.db"),
        db_size("tether.db-wal")
    );
    match results.first() {
        Some(result) => println!(
            "[disk-full] result while full: {:?}: {}",
            result.status, result.content
        ),
        None => println!(
            "[disk-full] result while full: none; the log shows the call still open until the restart closes it"
        ),
    }
    // A new command while the disk is full: refused clearly as a condition that can
    // pass (503, as for any storage outage), or accepted if space happened to remain;
    // never a hang or a crash.
    let (status, body) = server
        .post(
            &format!("conversations/{id}/chat"),
            serde_json::json!({ "message": "echo during" }),
        )
        .await;
    println!("[disk-full] chat while full: {status} {body}");
    assert!(
        status == crate::common::StatusCode::ACCEPTED
            || (status == crate::common::StatusCode::SERVICE_UNAVAILABLE
                && body["error"].as_str().is_some_and(|e| !e.is_empty())),
        "chat while full: {status} {body}"
    );
    server
        .wait_state(&id, "idle again", |s| s.status == RunStatus::Idle)
        .await;
    let during = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    assert_no_hidden_open_calls(&messages);

    // Room again: everything stored is intact and the open turn gets closed.
    server.set_wrapper(&[]);
    server.restart();
    let after = server.messages_json(&id).await;
    let messages = server.messages(&id).await;
    assert_dense(&messages, 0);
    assert!(after.len() >= during.len());
    assert_eq!(
        &after[..during.len()],
        &during[..],
        "stored messages changed over the restart"
    );
    for m in messages.iter().skip(during.len().saturating_sub(4)) {
        println!("[disk-full]   {}", describe(m));
    }
    for line in server
        .logs()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
    {
        println!("[disk-full]   log: {line}");
    }
    let status = single_result(&messages, &call.tool_call_id)
        .status
        .expect("a status");
    if closed_live {
        assert_eq!(status, ToolStatus::Error);
    } else {
        // Closed after the disk-full period (at a retry) or by crash recovery.
        assert!(
            matches!(status, ToolStatus::Error | ToolStatus::Interrupted),
            "{status:?}"
        );
    }
    assert_closed(&messages, &call.tool_call_id, status);
    assert_no_hidden_open_calls(&messages);
    for m in &messages {
        if m.kind == MessageType::Agent && !m.tool_calls.is_empty() {
            // Every call in the log has exactly one result.
            single_result(&messages, &m.tool_calls[0].tool_call_id);
        }
    }
    let state = server.state(&id).await;
    assert_eq!(state.status, RunStatus::Idle);
    println!(
        "[disk-full] after the restart without the limit: {} messages, dense and parseable; the flood's call closed as {status:?}",
        messages.len()
    );
    let mut sse = server.stream_from(&id, after.len() as u64).await;
    server.chat(&id, "echo after").await;
    sse.wait_end_of_turns(1).await;
    assert!(sse.all_output().contains("after\r\n"));
}
