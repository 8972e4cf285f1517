//! Several replicas on one NATS JetStream (a real `nats-server` per test): every
//! replica serves every stream and read; each conversation is run by the one that
//! owns it, which gets every change posted to any replica; another takes it over
//! when its owner dies or stalls. The log stays whole through a replica's death, a
//! stalled replica waking up, and NATS itself restarting. `docs/scaling.md`
//! describes the design.

mod common;

use std::time::{Duration, Instant};

use app::protocol::{MessageType, RunStatus, ToolStatus};
use common::{
    NatsServer, ProcessGuard, Request, StatusCode, TestServer, WAIT, assert_closed, assert_dense,
    assert_error, marker, pids_with, tool_calls, wait_no_processes, wait_processes,
};
use nix::sys::signal::{Signal, kill};

/// Longest another replica may take to notice an owner is gone: its claim (10 s by
/// default; some tests set 3 s) plus slack for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(60);

fn output_chunks(sse: &common::Sse) -> usize {
    sse.messages()
        .iter()
        .filter(|m| m.kind == MessageType::ToolOutput)
        .count()
}

/// Whether process `pid` is `ancestor` or one of its descendants.
fn descends_from(pid: i32, ancestor: i32) -> bool {
    let mut pid = pid;
    while pid > 1 {
        if pid == ancestor {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // `pid (comm) state ppid …`; comm may hold spaces or parentheses.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        pid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
    }
    false
}

/// Waits until `server` lists conversation `id` (a follower learns of it from NATS).
async fn wait_known(server: &TestServer, id: &str) {
    let deadline = Instant::now() + WAIT;
    while !server.summaries().await.iter().any(|s| s.id == id) {
        assert!(
            Instant::now() < deadline,
            "a follower did not learn of conversation {id} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `server` serves `len` messages of conversation `id`, and returns them.
/// Replicas agree a moment apart: a follower applies what JetStream delivers when it
/// arrives, and the owner shows its own append only once the ack is back, so another
/// replica's stream can be ahead of either.
async fn wait_log_len(server: &TestServer, id: &str, len: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = server.messages_json(id).await;
        if log.len() >= len {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "the replica serves {} of {len} messages after {WAIT:?}",
            log.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_replica_serves_and_the_owner_runs_what_any_replica_is_asked() {
    let nats = NatsServer::start();
    let a = TestServer::replica(&nats.url(), "three", &[]);
    let b = TestServer::replica(&nats.url(), "three", &[]);
    let c = TestServer::replica(&nats.url(), "three", &[]);

    // Created through C, so C owns and runs it; streamed at once from B (which looks
    // it up in NATS if its feed has not brought it yet).
    let id = c.create_default().await;
    let mut on_b = b.stream(&id).await;
    let mut everything_on_a = a.events().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let first = b
        .chat(&id, &format!("echo started; exec -a sleeper{m} sleep 600"))
        .await;
    assert!(!first.queued);
    on_b.wait_output_contains("started").await;
    let pids = wait_processes(&format!("sleeper{m}"), WAIT).await;
    assert!(
        !pids.is_empty() && pids.iter().all(|p| descends_from(*p, c.pid().as_raw())),
        "the command runs on the conversation's owner"
    );

    // A chat posted to B waits behind the running turn on C; B shows it queued.
    let second = b.chat(&id, "echo second-turn").await;
    assert!(second.queued, "the second message waits for the first turn");
    b.wait_state(&id, "a running turn with one message queued", |s| {
        s.status == RunStatus::Running && s.queued_messages == 1
    })
    .await;

    // Cancelling the call through A stops C's process; the queued turn then runs.
    let call = tool_calls(&on_b.messages())[0].clone();
    let (status, body) = a
        .cancel(
            &id,
            serde_json::json!({ "tool_call_id": call.tool_call_id }),
        )
        .await;
    assert!(status.is_success(), "cancel through A: {status} {body}");
    assert!(
        wait_no_processes(&format!("sleeper{m}"), WAIT)
            .await
            .is_ok(),
        "the cancel reached C's process"
    );
    on_b.wait_end_of_turns(2).await;
    assert!(on_b.all_output().contains("second-turn"));
    b.wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;

    // Every view is the same log: B's stream, A's reads and C's own.
    on_b.assert_dense_from(0);
    let log = c.messages_json(&id).await;
    let streamed: Vec<_> = on_b.raw_messages().into_iter().map(|(_, m)| m).collect();
    assert_eq!(streamed, log, "B streamed exactly C's log");
    assert_eq!(
        wait_log_len(&a, &id, log.len()).await,
        log,
        "A reads exactly C's log"
    );
    assert_closed(
        &c.messages(&id).await,
        &call.tool_call_id,
        ToolStatus::Cancelled,
    );
    // The list streamed by A catches up with the count (it never runs ahead).
    everything_on_a
        .wait_until("the conversation's full count on A", WAIT, |s| {
            s.summaries()
                .iter()
                .any(|x| x.id == id && x.message_count == log.len() as u64)
        })
        .await;
    assert!(
        everything_on_a
            .summaries()
            .iter()
            .all(|x| x.message_count <= log.len() as u64)
    );
}

#[tokio::test]
async fn another_replica_answers_bad_requests_and_shares_as_the_owner_does() {
    let nats = NatsServer::start();
    let a = TestServer::replica(&nats.url(), "answers", &[]);
    let b = TestServer::replica(&nats.url(), "answers", &[]);
    let c = TestServer::replica(&nats.url(), "answers", &[]);
    let id = a.create_default().await;
    wait_known(&b, &id).await;

    // Bad input through another replica gets the owner's own 4xx and changes nothing.
    let broken = b
        .post_raw(&format!("conversations/{id}/chat"), "{not json")
        .await;
    assert_error(
        "broken JSON via another replica",
        &broken,
        StatusCode::BAD_REQUEST,
    );
    let unknown = b
        .post(
            "conversations/no-such-id/chat",
            serde_json::json!({ "message": "echo x" }),
        )
        .await;
    assert_error(
        "a chat to no conversation via another replica",
        &unknown,
        StatusCode::NOT_FOUND,
    );
    assert!(a.messages_json(&id).await.is_empty(), "nothing was written");

    // A share made through B opens the conversation on C; revoked through C, it no
    // longer works on B.
    let (status, created) = b
        .post(&format!("conversations/{id}/shares"), serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["url"]
        .as_str()
        .and_then(|u| u.strip_prefix("/s/"))
        .expect("a share link")
        .to_string();
    let read_with_share = |server: &TestServer| {
        Request::get(&server.conv(&id, "messages"))
            .header("Authorization", format!("Share {secret}"))
    };
    let deadline = Instant::now() + WAIT;
    while c.send(read_with_share(&c)).await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "the share never worked on C");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let share_id = created["share_id"].as_str().expect("a share id");
    let revoked = c
        .send(Request::new(
            "DELETE",
            &c.conv(&id, &format!("shares/{share_id}")),
        ))
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let deadline = Instant::now() + WAIT;
    while b.send(read_with_share(&b)).await.status() != StatusCode::FORBIDDEN {
        assert!(
            Instant::now() < deadline,
            "the revoked share still works on B"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn another_replica_takes_over_when_the_owner_is_killed() {
    let nats = NatsServer::start();
    let mut a = TestServer::replica(&nats.url(), "failover", &[]);
    let b = TestServer::replica(&nats.url(), "failover", &[]);
    let c = TestServer::replica(&nats.url(), "failover", &[]);

    let id = a.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut on_a = a.stream(&id).await;
    wait_known(&b, &id).await;
    wait_known(&c, &id).await;
    let mut on_b = b.stream(&id).await;
    let mut on_c = c.stream(&id).await;
    a.chat(&id, &format!("exec -a seq{m} seq 1 1000000000"))
        .await;
    on_a.wait_until("30 output chunks", WAIT, |s| output_chunks(s) >= 30)
        .await;
    let killed = Instant::now();
    a.kill9();
    on_a.wait_ended(WAIT).await;
    on_a.assert_dense_from(0);
    let seen = on_a.raw_messages();
    let call = tool_calls(&on_a.messages())[0].clone();

    // B or C notices the owner is gone once its claim expires, takes the
    // conversation and closes the turn; neither stream stops meanwhile.
    on_b.wait_until("the interrupted turn's end", TAKEOVER, |s| {
        s.messages().iter().any(|m| m.end_of_turn)
    })
    .await;
    let took_over = killed.elapsed();
    on_c.wait_end_of_turns(1).await;

    // A browser on the dead replica reconnects (through the balancer) to another,
    // from the last id it saw.
    let last_seen = seen.last().expect("messages were seen").0;
    let mut resumed = c.stream_with(&id, "", Some(&last_seen.to_string())).await;
    resumed
        .wait_until("the interrupted turn's end", WAIT, |s| {
            s.messages().iter().any(|m| m.end_of_turn)
        })
        .await;
    resumed.assert_dense_from(last_seen + 1);

    let log = b.messages_json(&id).await;
    let messages = b.messages(&id).await;
    assert_dense(&messages, 0);
    for (idx, raw) in &seen {
        assert_eq!(
            &log[*idx as usize], raw,
            "message {idx} changed in the failover"
        );
    }
    for (name, stream) in [("B", &on_b), ("C", &on_c)] {
        stream.assert_dense_from(0);
        let streamed: Vec<_> = stream.raw_messages().into_iter().map(|(_, m)| m).collect();
        assert_eq!(streamed, log, "{name} streamed the log exactly");
    }
    // Closed exactly once, as interrupted, by the replica that took over.
    assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);
    assert!(
        wait_no_processes(&m, WAIT).await.is_ok(),
        "the command died with its replica"
    );

    // A chat through either replica runs on the new owner.
    c.chat(&id, "echo after-failover").await;
    on_b.wait_end_of_turns(2).await;
    on_b.assert_dense_from(0);
    assert!(on_b.all_output().contains("after-failover"));
    let streamed = on_b.raw_messages().len();
    assert_eq!(wait_log_len(&c, &id, streamed).await.len(), streamed);
    println!(
        "[failover] kill -9 of the owner → the turn closed by another replica: {:.2} s \
         (one machine: a dead local owner's claim is taken without waiting out its \
         10 s); {} messages before, none lost",
        took_over.as_secs_f64(),
        seen.len()
    );
}

#[tokio::test]
async fn a_stalled_replica_is_fenced_when_it_wakes_and_stops_its_command() {
    let nats = NatsServer::start();
    let lease = ["--nats-lease-secs", "3"];
    let mut a = TestServer::replica(&nats.url(), "stall", &lease);
    let id = a.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = a.stream(&id).await;
    a.chat(
        &id,
        &format!(
            "exec -a ticker{m} bash -c 'for ((i = 1; ; i++)); do echo tick-$i; sleep 0.02; done'"
        ),
    )
    .await;
    sse.wait_output_contains("tick-20").await;
    let b = TestServer::replica(&nats.url(), "stall", &lease);
    wait_known(&b, &id).await;
    let mut on_b = b.stream(&id).await;

    // A stall longer than the claim (a GC pause, a VM migration, SIGSTOP): B takes
    // the conversation over and closes the turn.
    kill(a.pid(), Signal::SIGSTOP).expect("stop the owner");
    let stopped = Instant::now();
    on_b.wait_until("the interrupted turn's end", TAKEOVER, |s| {
        s.messages().iter().any(|m| m.end_of_turn)
    })
    .await;
    // A stalled owner's process still exists, so B must wait for its claim to
    // expire: the same path as an owner on another machine dying.
    println!(
        "[failover] owner stalled → the turn closed by another replica once the 3 s \
         claim expired: {:.2} s",
        stopped.elapsed().as_secs_f64()
    );
    let taken = b.messages_json(&id).await;
    let messages = b.messages(&id).await;
    let call = tool_calls(&messages)[0].clone();
    assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);

    // Waking up, the old owner finds its claim gone: it writes nothing more, stops
    // its command itself and exits.
    kill(a.pid(), Signal::SIGCONT).expect("wake the old replica");
    let status = a.wait_exit(WAIT);
    assert!(
        !status.success(),
        "a replica that lost a conversation exits with an error"
    );
    assert!(
        wait_no_processes(&m, WAIT).await.is_ok(),
        "the old replica's command was stopped"
    );
    assert!(
        a.logs().contains("could not keep"),
        "the old replica says why it stopped: {}",
        a.logs()
    );
    assert_eq!(
        b.messages_json(&id).await,
        taken,
        "the old replica's late output reached the log"
    );

    let mut sse = b.stream_from(&id, taken.len() as u64).await;
    b.chat(&id, "echo still-fine").await;
    sse.wait_end_of_turns(1).await;
    assert!(sse.all_output().contains("still-fine"));
}

#[tokio::test]
async fn a_nats_restart_mid_command_loses_nothing() {
    let mut nats = NatsServer::start();
    let a = TestServer::replica(&nats.url(), "restart", &[]);
    let b = TestServer::replica(&nats.url(), "restart", &[]);
    let id = a.create_default().await;
    wait_known(&b, &id).await;
    let mut sse = a.stream(&id).await;
    // B follows A through JetStream, which restarts under both.
    let mut on_b = b.stream(&id).await;
    a.chat(
        &id,
        "for i in $(seq 1 150); do echo line-$i; sleep 0.02; done",
    )
    .await;
    sse.wait_output_contains("line-10").await;
    nats.restart();
    sse.wait_end_of_turns(1).await;
    sse.assert_dense_from(0);
    let expected: String = (1..=150).map(|i| format!("line-{i}\r\n")).collect();
    let messages = a.messages(&id).await;
    let call = tool_calls(&messages)[0].clone();
    assert_eq!(
        common::output_of(&messages, &call.tool_call_id),
        expected,
        "the output is whole after NATS restarted"
    );
    assert_closed(&messages, &call.tool_call_id, ToolStatus::Completed);
    assert_eq!(sse.raw_messages().len(), messages.len());

    let t0 = Instant::now();
    // The follower's stream went on from where it was: every message, once.
    on_b.wait_end_of_turns(1).await;
    println!(
        "[nats restart] the follower's stream reached the turn's end {:.3} s after the owner's",
        t0.elapsed().as_secs_f64()
    );
    on_b.assert_dense_from(0);
    let streamed: Vec<_> = on_b.raw_messages().into_iter().map(|(_, m)| m).collect();
    assert_eq!(
        streamed,
        a.messages_json(&id).await,
        "B streamed A's log exactly"
    );
    // Its view of the state recovered too, and a chat through it still reaches A.
    b.wait_state(&id, "idle", |s| s.status == RunStatus::Idle)
        .await;
    b.chat(&id, "echo after-the-restart").await;
    on_b.wait_end_of_turns(2).await;
    on_b.assert_dense_from(0);
    assert!(on_b.all_output().contains("after-the-restart"));
}

#[tokio::test]
async fn a_full_stream_refuses_writes_with_503_and_changes_nothing() {
    let nats = NatsServer::start();
    // An operator-made stream with a size limit: Tether keeps its configuration.
    let client = async_nats::connect(nats.url())
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "full-log".into(),
        subjects: vec!["full.log.*".into()],
        max_bytes: 24 * 1024,
        discard: async_nats::jetstream::stream::DiscardPolicy::New,
        allow_direct: true,
        allow_atomic_publish: true,
        ..Default::default()
    })
    .await
    .expect("create the small stream");
    let a = TestServer::replica(&nats.url(), "full", &[]);
    let id = a.create_default().await;
    let mut sse = a.stream(&id).await;
    a.chat(&id, "echo small").await;
    sse.wait_end_of_turns(1).await;
    let before = a.messages_json(&id).await;

    let big = format!("echo {}", "x".repeat(30 * 1024));
    let refused = a
        .post(
            &format!("conversations/{id}/chat"),
            serde_json::json!({ "message": big }),
        )
        .await;
    assert_error(
        "a chat message the stream has no room for",
        &refused,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    assert!(
        refused.1["error"]
            .as_str()
            .unwrap_or_default()
            .contains("NATS"),
        "the error says where: {}",
        refused.1
    );
    assert_eq!(a.messages_json(&id).await, before, "nothing was written");

    // The oldest messages were not dropped to make room, and a small turn still fits.
    a.chat(&id, "echo fits").await;
    sse.wait_end_of_turns(2).await;
    let after = a.messages(&id).await;
    assert_dense(&after, 0);
    assert_eq!(&a.messages_json(&id).await[..before.len()], &before[..]);
    assert!(sse.all_output().contains("fits"));
}

#[tokio::test]
async fn an_agents_approval_is_answered_through_another_replica() {
    let nats = NatsServer::start();
    let agent = common::fake_agent_flag("");
    let a = TestServer::replica(&nats.url(), "approve", &["--agent", &agent]);
    let b = TestServer::replica(&nats.url(), "approve", &["--agent", &agent]);
    let id = a.create_fake().await;
    wait_known(&b, &id).await;
    let mut on_b = b.stream(&id).await;

    // The chat and the approval both go through B; the agent runs on A, its owner.
    b.chat(&id, "ask-run echo approved-$((40+2))").await;
    let state = b
        .wait_state(&id, "a pending permission request", |s| {
            !s.pending_permissions.is_empty()
        })
        .await;
    // The replicas' own command lines name the agent too.
    let (a_pid, b_pid) = (a.pid().as_raw(), b.pid().as_raw());
    let agents: Vec<i32> = pids_with("fake-acp-agent")
        .into_iter()
        .filter(|p| ![a_pid, b_pid].contains(p))
        .collect();
    assert!(
        agents.iter().any(|p| descends_from(*p, a_pid))
            && !agents.iter().any(|p| descends_from(*p, b_pid)),
        "the agent runs on the owner, A, only: agents {agents:?}, A {a_pid}, B {b_pid}"
    );
    let request = &state.pending_permissions[0];
    let answer =
        |option: &str| serde_json::json!({ "request_id": request.request_id, "option_id": option });
    let (status, body) = b
        .post(&format!("conversations/{id}/permission"), answer("yes"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answer"]["outcome"], "allow_once");
    // A second answer, through either replica, finds the question answered.
    let again = b
        .post(&format!("conversations/{id}/permission"), answer("no"))
        .await;
    assert_error("a second answer through B", &again, StatusCode::CONFLICT);

    on_b.wait_end_of_turns(1).await;
    on_b.assert_dense_from(0);
    // B can stream the turn's end from JetStream before A's append has its ack and
    // A's own log shows it. A reports idle only after that append returned, so wait
    // for idle before reading A's log.
    b.wait_state(&id, "idle with nothing to approve", |s| {
        s.status == RunStatus::Idle && s.pending_permissions.is_empty()
    })
    .await;
    let log = a.messages(&id).await;
    assert_eq!(
        on_b.raw_messages().len(),
        log.len(),
        "A's log holds exactly what B streamed"
    );
    let calls = tool_calls(&log);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_closed(&log, &calls[0].tool_call_id, ToolStatus::Completed);
    assert!(on_b.all_output().contains("approved-42"));
    let answers = log
        .iter()
        .filter(|m| m.kind == MessageType::PermissionAnswer)
        .count();
    assert_eq!(answers, 1, "the approval was logged once");
}
