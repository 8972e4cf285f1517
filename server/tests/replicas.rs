//! Several replicas on one NATS JetStream (a real `nats-server` per test): one is
//! active and runs everything, the others stand by and take over when it dies or
//! stalls; the log stays whole through a replica's death, a stalled replica waking
//! up, and NATS itself restarting. `docs/scaling.md` describes the design.

mod common;

use std::time::{Duration, Instant};

use app::protocol::{MessageType, ToolStatus};
use common::{
    NatsServer, ProcessGuard, StatusCode, TestServer, WAIT, assert_closed, assert_dense,
    assert_error, marker, tool_calls, wait_no_processes,
};
use nix::sys::signal::{Signal, kill};

/// Longest a standby may take to notice the active replica is gone: the lease (10 s
/// by default; some tests set 3 s) plus slack for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(60);

fn output_chunks(sse: &common::Sse) -> usize {
    sse.messages()
        .iter()
        .filter(|m| m.kind == MessageType::ToolOutput)
        .count()
}

#[tokio::test]
async fn a_standby_takes_over_when_the_active_replica_is_killed() {
    let nats = NatsServer::start();
    let mut a = TestServer::replica(&nats.url(), "failover", &[]);
    assert!(!a.is_standing_by(), "the first replica is active");
    let mut b = TestServer::replica(&nats.url(), "failover", &[]);
    assert!(b.is_standing_by(), "the second replica stands by");
    let refused = b.get("conversations").await;
    assert_error("a standby", &refused, StatusCode::SERVICE_UNAVAILABLE);

    let id = a.create_default().await;
    let m = marker();
    let _guard = ProcessGuard(m.clone());
    let mut sse = a.stream(&id).await;
    a.chat(&id, &format!("exec -a seq{m} seq 1 1000000000"))
        .await;
    sse.wait_until("30 output chunks", WAIT, |s| output_chunks(s) >= 30)
        .await;
    let killed = Instant::now();
    a.kill9();
    sse.wait_ended(WAIT).await;
    sse.assert_dense_from(0);
    let seen = sse.raw_messages();
    let call = tool_calls(&sse.messages())[0].clone();

    b.wait_serving(TAKEOVER);
    let took_over = killed.elapsed();
    // The browser reconnects (to b, through the balancer) from the last id it saw.
    let last_seen = seen.last().expect("messages were seen").0;
    let mut resumed = b.stream_with(&id, "", Some(&last_seen.to_string())).await;
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
    // Closed exactly once, as interrupted, by the replica that took over.
    assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);
    assert!(
        wait_no_processes(&m, WAIT).await.is_ok(),
        "the command died with its replica"
    );

    // The conversation runs on the new active replica.
    let mut sse = b.stream_from(&id, log.len() as u64).await;
    b.chat(&id, "echo after-failover").await;
    sse.wait_end_of_turns(1).await;
    sse.assert_dense_from(log.len() as u64);
    assert!(sse.all_output().contains("after-failover"));
    println!(
        "[failover] kill -9 of the active replica → the standby serving: {:.2} s \
         (lease 10 s); {} messages before, none lost",
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
    let mut b = TestServer::replica(&nats.url(), "stall", &lease);
    assert!(b.is_standing_by());

    // A stall longer than the lease (a GC pause, a VM migration, SIGSTOP).
    kill(a.pid(), Signal::SIGSTOP).expect("stop the active replica");
    b.wait_serving(TAKEOVER);
    let taken = b.messages_json(&id).await;
    let messages = b.messages(&id).await;
    let call = tool_calls(&messages)[0].clone();
    assert_closed(&messages, &call.tool_call_id, ToolStatus::Interrupted);

    // Waking up, the old replica finds its lease gone: it writes nothing more,
    // stops its command itself and exits.
    kill(a.pid(), Signal::SIGCONT).expect("wake the old replica");
    let status = a.wait_exit(WAIT);
    assert!(
        !status.success(),
        "a replica that lost its lease exits with an error"
    );
    assert!(
        wait_no_processes(&m, WAIT).await.is_ok(),
        "the old replica's command was stopped"
    );
    assert!(
        a.logs().contains("lost its lease"),
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
    let id = a.create_default().await;
    let mut sse = a.stream(&id).await;
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
