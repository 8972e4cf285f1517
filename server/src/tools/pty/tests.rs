use super::batch::{EOF_AFTER_KILL, EOF_GRACE, FLUSH_INTERVAL, MIN_FLUSH_GAP};
use super::*;
use crate::tools::chunk::MAX_CHUNK_CHARS;
use std::time::Duration;
use tokio::time::Instant;
use tokio::time::timeout;

fn spec(command: &str) -> SpawnSpec {
    SpawnSpec {
        command: command.to_owned(),
        cwd: std::env::temp_dir(),
        env_remove: Vec::new(),
        env_set: Vec::new(),
        cols: 80,
        rows: 24,
    }
}

struct Run {
    outputs: Vec<(Instant, String)>,
    exited_at: Instant,
    exit: ExitInfo,
}

impl Run {
    fn text(&self) -> String {
        self.outputs.iter().map(|(_, s)| s.as_str()).collect()
    }
}

/// Collects events until `Exited`, then checks that nothing follows it.
async fn collect(mut rx: mpsc::Receiver<PtyEvent>, limit: Duration) -> Run {
    let mut outputs = Vec::new();
    let fut = async {
        loop {
            match rx.recv().await.expect("channel closed before Exited") {
                PtyEvent::Output(s) => outputs.push((Instant::now(), s)),
                PtyEvent::Exited(info) => return (Instant::now(), info),
            }
        }
    };
    let (exited_at, exit) = timeout(limit, fut)
        .await
        .expect("timed out waiting for Exited");
    assert!(rx.recv().await.is_none(), "event after Exited");
    Run {
        outputs,
        exited_at,
        exit,
    }
}

async fn run(command: &str) -> Run {
    let (_h, rx) = spawn(spec(command)).expect("spawn");
    collect(rx, Duration::from_secs(30)).await
}

/// Processes (other than zombies) whose process group is `pgid`.
fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // comm may contain spaces and parens; fields resume after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields: state, ppid, pgrp, ...
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_flood_is_exact_and_chunked() {
    let r = run("seq 1 200000").await;
    let expected: String = (1..=200_000).map(|i| format!("{i}\r\n")).collect();
    assert_eq!(
        r.exit,
        ExitInfo {
            exit_code: Some(0),
            signal: None
        }
    );
    for (_, s) in &r.outputs {
        assert!(s.chars().count() <= MAX_CHUNK_CHARS);
        assert!(!s.is_empty());
    }
    let text = r.text();
    assert_eq!(text.len(), expected.len());
    assert!(text == expected, "flood output differs");
    // A flood must be batched, not sent read-by-read in tiny pieces.
    assert!(
        r.outputs.len() < expected.len() / 1000,
        "{} chunks for {} bytes",
        r.outputs.len(),
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_propagates() {
    let r = run("exit 3").await;
    assert_eq!(
        r.exit,
        ExitInfo {
            exit_code: Some(3),
            signal: None
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_output_is_not_lost() {
    for _ in 0..5 {
        let r = run("printf 'abc'; exit 0").await;
        assert_eq!(r.text(), "abc");
        assert_eq!(r.exit.exit_code, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_death_is_reported_by_name() {
    let r = run("kill -KILL $$").await;
    assert_eq!(
        r.exit,
        ExitInfo {
            exit_code: None,
            signal: Some("SIGKILL".into())
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_stubborn_group() {
    let cmd =
        r#"trap "" TERM INT; sleep 1000 & sh -c 'trap "" TERM INT; sleep 1000' & echo ready; wait"#;
    let (h, mut rx) = spawn(spec(cmd)).expect("spawn");
    let pgid = h.pid() as i32;

    let mut seen = String::new();
    timeout(Duration::from_secs(10), async {
        while !seen.contains("ready") {
            match rx.recv().await {
                Some(PtyEvent::Output(s)) => seen.push_str(&s),
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("no ready marker");
    // Two sleeps, sh and bash itself should all be in the group.
    timeout(Duration::from_secs(5), async {
        while live_group_members(pgid).len() < 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("group never fully started");

    let started = Instant::now();
    h.cancel();
    h.cancel(); // idempotent
    let r = collect(rx, Duration::from_secs(8)).await;
    let took = r.exited_at - started;
    assert!(took < Duration::from_secs(5), "Exited after {took:?}");
    assert!(
        took >= Duration::from_millis(3500),
        "SIGKILL came early: {took:?}"
    );
    assert_eq!(r.exit.exit_code, None);
    assert_eq!(r.exit.signal.as_deref(), Some("SIGKILL"));
    assert!(h.is_exited());

    // Reparented members are reaped asynchronously by init; allow for that.
    timeout(Duration::from_secs(3), async {
        while !live_group_members(pgid).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("group members remain: {:?}", live_group_members(pgid)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_at_sigint_for_normal_command() {
    let (h, mut rx) = spawn(spec("echo ready; sleep 1000")).expect("spawn");
    let mut seen = String::new();
    timeout(Duration::from_secs(10), async {
        while !seen.contains("ready") {
            if let Some(PtyEvent::Output(s)) = rx.recv().await {
                seen.push_str(&s);
            }
        }
    })
    .await
    .expect("no ready marker");
    let started = Instant::now();
    h.cancel();
    let r = collect(rx, Duration::from_secs(8)).await;
    assert!(r.exited_at - started < Duration::from_secs(1));
    assert_eq!(r.exit.signal.as_deref(), Some("SIGINT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_grandchild_does_not_hang_exit() {
    // The sleep keeps the terminal open after bash exits; after the 2 s grace
    // the group is killed and the trailing output still arrives.
    let started = Instant::now();
    // Without ignoring SIGHUP, the kernel would kill it when the session
    // leader (bash) exits.
    let (h, rx) = spawn(spec("trap \"\" HUP; sleep 1000 & printf done; exit 5")).expect("spawn");
    let pgid = h.pid() as i32;
    let r = collect(rx, Duration::from_secs(10)).await;
    let took = r.exited_at - started;
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(r.text(), "done");
    assert_eq!(r.exit.exit_code, Some(5));
    timeout(Duration::from_secs(3), async {
        while !live_group_members(pgid).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("background sleep survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_input_answers_prompt() {
    let (h, rx) = spawn(spec(r#"read -p "ok? " a; echo "got:$a""#)).expect("spawn");
    h.write_input(b"y\r").expect("write");
    let r = collect(rx, Duration::from_secs(10)).await;
    assert!(r.text().contains("got:y"), "output: {:?}", r.text());
    assert_eq!(r.exit.exit_code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_is_filtered_and_term_set() {
    // cargo sets this for the test process, so it is really inherited.
    let secret = "CARGO_MANIFEST_DIR";
    assert!(std::env::var_os(secret).is_some());
    let mut s = spec(&format!(
        r#"echo "term=$TERM"; echo "secret=${{{secret}-unset}}"; echo "set=$TETHER_X"; pwd"#
    ));
    s.env_remove = vec![secret.into()];
    s.env_set = vec![("TETHER_X".into(), "hello".into())];
    let dir = std::env::temp_dir().canonicalize().unwrap();
    s.cwd = dir.clone();
    let (_h, rx) = spawn(s).expect("spawn");
    let text = collect(rx, Duration::from_secs(10)).await.text();
    assert!(text.contains("term=xterm-256color\r\n"), "{text:?}");
    assert!(text.contains("secret=unset\r\n"), "{text:?}");
    assert!(text.contains("set=hello\r\n"), "{text:?}");
    assert!(text.contains(&format!("{}\r\n", dir.display())), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cwd_is_an_error() {
    let mut s = spec("true");
    s.cwd = "/definitely/not/here".into();
    assert!(matches!(spawn(s), Err(PtyError::BadCwd(_))));
}

#[test]
fn spawn_outside_runtime_is_an_error() {
    assert!(matches!(spawn(spec("true")), Err(PtyError::NoRuntime)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_output_is_flushed_at_once() {
    let r = run("printf a; sleep 0.3; printf b").await;
    assert_eq!(r.outputs.len(), 2, "{:?}", r.outputs);
    assert_eq!(r.outputs[0].1, "a");
    assert_eq!(r.outputs[1].1, "b");
    let lead = r.exited_at - r.outputs[0].0;
    assert!(
        lead >= Duration::from_millis(200),
        "a arrived only {lead:?} before exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multibyte_output_reassembles() {
    let r = run(r#"for i in $(seq 1 10000); do printf 'é😀'; done"#).await;
    assert_eq!(r.text(), "é😀".repeat(10_000));
    assert!(
        r.outputs
            .iter()
            .all(|(_, s)| s.chars().count() <= MAX_CHUNK_CHARS)
    );
    assert!(!r.text().contains('\u{FFFD}'));
}

#[test]
fn signal_descriptions_map_to_names() {
    assert_eq!(signal_name("Killed"), "SIGKILL");
    assert_eq!(signal_name("Terminated"), "SIGTERM");
    assert_eq!(signal_name("Signal 10"), "SIGUSR1");
    assert_eq!(signal_name("Weird thing"), "Weird thing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_loses_nothing() {
    let (_h, mut rx) = spawn(spec("seq 1 50000")).expect("spawn");
    let mut text = String::new();
    let exit = timeout(Duration::from_secs(60), async {
        loop {
            match rx.recv().await.expect("closed") {
                PtyEvent::Output(s) => {
                    text.push_str(&s);
                    // Simulates a slow browser so the bounded channels fill.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                PtyEvent::Exited(info) => return info,
            }
        }
    })
    .await
    .expect("timed out");
    let expected: String = (1..=50_000).map(|i| format!("{i}\r\n")).collect();
    assert!(text == expected);
    assert_eq!(exit.exit_code, Some(0));
}

// The batcher on its own, driven by fake input under paused time, so the
// flush policy can be checked exactly.
struct Batcher {
    raw: Option<pipe::PipeWriter>,
    exit: Option<oneshot::Sender<ExitInfo>>,
    events: mpsc::Receiver<PtyEvent>,
    shared: Arc<Shared>,
}

fn batcher(pid: i32) -> Batcher {
    let (raw_tx, raw_rx) = pipe::pipe();
    let (exit_tx, exit_rx) = oneshot::channel();
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let shared = Arc::new(Shared {
        pid,
        phase: watch::channel(Phase::Running).0,
        cancel_started: AtomicBool::new(false),
    });
    tokio::spawn(batch_loop(Arc::clone(&shared), raw_rx, exit_rx, ev_tx));
    Batcher {
        raw: Some(raw_tx),
        exit: Some(exit_tx),
        events: ev_rx,
        shared,
    }
}

impl Batcher {
    async fn feed(&self, bytes: &[u8]) {
        // Far below the pipe's capacity, so this never blocks the test's runtime.
        assert!(self.raw.as_ref().unwrap().push(bytes));
    }

    async fn next(&mut self) -> (Duration, PtyEvent) {
        let t0 = Instant::now();
        let ev = self.events.recv().await.expect("closed");
        (t0.elapsed(), ev)
    }

    fn exit(&mut self, code: i32) {
        self.exit
            .take()
            .unwrap()
            .send(ExitInfo {
                exit_code: Some(code),
                signal: None,
            })
            .unwrap();
    }
}

fn out(s: &str) -> PtyEvent {
    PtyEvent::Output(s.to_owned())
}

#[tokio::test(start_paused = true)]
async fn flush_policy_leading_edge_then_interval() {
    let mut b = batcher(i32::MAX);
    b.feed(b"a").await;
    assert_eq!(b.next().await, (Duration::ZERO, out("a")));

    // Interactive output (reads a few ms apart) goes out at once, line by line.
    tokio::time::sleep(Duration::from_millis(10)).await;
    b.feed(b"b").await;
    assert_eq!(b.next().await, (Duration::ZERO, out("b")));
    // ... but never more often than every MIN_FLUSH_GAP.
    tokio::time::sleep(Duration::from_millis(3)).await;
    b.feed(b"c").await;
    assert_eq!(
        b.next().await,
        (MIN_FLUSH_GAP - Duration::from_millis(3), out("c"))
    );

    // Back-to-back reads right after a flush may start a flood, but a few bytes
    // (a program catching up on its lines after a stall) are not one: they go out
    // MIN_FLUSH_GAP after the previous flush, and the next line is interactive again.
    tokio::time::sleep(Duration::from_millis(10)).await;
    b.feed(b"d").await;
    assert_eq!(b.next().await, (Duration::ZERO, out("d")));
    b.feed(b"e").await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    b.feed(b"f").await;
    let (waited, ev) = b.next().await;
    assert_eq!(ev, out("ef"));
    assert_eq!(
        waited,
        MIN_FLUSH_GAP - Duration::from_millis(1),
        "not held for the flood window"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    b.feed(b"g").await;
    assert_eq!(b.next().await, (Duration::ZERO, out("g")));

    // After a quiet period, the first byte goes out at once again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.feed(b"d").await;
    assert_eq!(b.next().await, (Duration::ZERO, out("d")));

    // A split multibyte char is held until complete, not mangled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.feed(&[0xF0, 0x9F]).await;
    b.feed(&[0x98, 0x80]).await;
    assert_eq!(b.next().await.1, out("\u{1F600}"));

    b.exit(0);
    drop(b.raw.take());
    assert_eq!(
        b.next().await.1,
        PtyEvent::Exited(ExitInfo {
            exit_code: Some(0),
            signal: None
        })
    );
    assert!(b.events.recv().await.is_none());
    assert_eq!(b.shared.phase(), Phase::Finished);
}

#[tokio::test(start_paused = true)]
async fn flush_policy_flood_sends_full_pieces_immediately() {
    let mut b = batcher(i32::MAX);
    b.feed(b"x").await;
    assert_eq!(b.next().await.1, out("x"));
    // Two and a half pieces right after a flush: the two full ones cannot wait.
    b.feed(&[b'y'; MAX_CHUNK_CHARS * 3 / 2]).await;
    b.feed(&[b'y'; MAX_CHUNK_CHARS]).await;
    let (w1, e1) = b.next().await;
    let (w2, e2) = b.next().await;
    assert_eq!((w1, w2), (Duration::ZERO, Duration::ZERO));
    assert_eq!(e1, out(&"y".repeat(MAX_CHUNK_CHARS)));
    assert_eq!(e2, out(&"y".repeat(MAX_CHUNK_CHARS)));
    // Nothing more came after them, so the half-piece remainder is the flood's end:
    // it goes out MIN_FLUSH_GAP later rather than after the whole flood window.
    let (w3, e3) = b.next().await;
    assert_eq!(e3, out(&"y".repeat(MAX_CHUNK_CHARS / 2)));
    assert_eq!(w3, MIN_FLUSH_GAP);
}

#[tokio::test(start_paused = true)]
async fn a_flood_keeps_its_window_while_it_brings_enough() {
    let mut b = batcher(i32::MAX);
    b.feed(b"x").await;
    assert_eq!(b.next().await.1, out("x"));
    // 1,000 bytes a millisecond (1 MB/s, above FLOOD_MIN_BYTES per MIN_FLUSH_GAP)
    // for 20 ms: a flood by volume, so it is
    // collected into one message at the end of the window, not cut every few ms.
    let raw = b.raw.take().unwrap();
    let feeder = tokio::spawn(async move {
        for _ in 0..20 {
            assert!(raw.push(&[b'y'; 1000]));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        raw
    });
    let (waited, ev) = b.next().await;
    assert_eq!(ev, out(&"y".repeat(20_000)));
    assert_eq!(waited, FLUSH_INTERVAL);
    drop(feeder.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_confirmed_flood_is_not_cut_by_a_short_stall() {
    let mut b = batcher(i32::MAX);
    b.feed(b"x").await;
    assert_eq!(b.next().await.1, out("x"));
    let raw = b.raw.take().unwrap();
    let feeder = tokio::spawn(async move {
        // 6 ms at 1 MB/s confirms the flood...
        for _ in 0..6 {
            assert!(raw.push(&[b'y'; 1000]));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // ... then a burst completes a whole message, and the output stalls for 10 ms
        // (a reader waiting for a CPU) before it goes on.
        assert!(raw.push(&[b'y'; 30_000]));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(raw.push(&[b'z'; 1000]));
        raw
    });
    assert_eq!(b.next().await.1, out(&"y".repeat(MAX_CHUNK_CHARS)));
    // The stall does not end the flood: the rest waits for the window and goes out
    // with what came after it, not as a small message of its own.
    let (waited, rest) = b.next().await;
    let expected = "y".repeat(36_000 - MAX_CHUNK_CHARS) + &"z".repeat(1000);
    assert_eq!(rest, out(&expected));
    assert_eq!(waited, FLUSH_INTERVAL);
    drop(feeder.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn flood_tail_below_a_whole_message_still_goes_out() {
    let mut b = batcher(i32::MAX);
    b.feed(b"x").await;
    assert_eq!(b.next().await.1, out("x"));
    // A flood that ends right after a whole piece: nothing is left pending, and the
    // few bytes that follow are too few to wake the batcher by themselves.
    b.feed(&[b'y'; MAX_CHUNK_CHARS]).await;
    assert_eq!(
        b.next().await,
        (Duration::ZERO, out(&"y".repeat(MAX_CHUNK_CHARS)))
    );
    b.feed(b"tail").await;
    let (waited, ev) = timeout(Duration::from_secs(5), b.next())
        .await
        .expect("the tail was never sent");
    assert_eq!(ev, out("tail"));
    assert_eq!(
        waited, MIN_FLUSH_GAP,
        "the flood is over: not held for its window"
    );
    // Once the flood is over, output is interactive again: out at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.feed(b"next").await;
    assert_eq!(b.next().await, (Duration::ZERO, out("next")));
}

#[tokio::test(start_paused = true)]
async fn flush_policy_never_starves_under_continuous_output() {
    let mut b = batcher(i32::MAX);
    let feeder = {
        let raw = b.raw.take().unwrap();
        tokio::spawn(async move {
            for _ in 0..100 {
                assert!(raw.push(b"z"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let start = Instant::now();
    let mut last = start;
    let mut total = 0;
    while total < 100 {
        let PtyEvent::Output(s) = b.next().await.1 else {
            panic!()
        };
        total += s.len();
        let now = Instant::now();
        assert!(now - last <= FLUSH_INTERVAL, "gap {:?}", now - last);
        last = now;
    }
    feeder.await.unwrap();
    assert_eq!(total, 100);
}

#[tokio::test(start_paused = true)]
async fn eof_grace_kills_group_then_gives_up() {
    // A real process group standing in for a grandchild that holds the tty.
    use std::os::unix::process::CommandExt;
    let mut holder = std::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = holder.id() as i32;
    let mut b = batcher(pgid);
    b.feed(b"tail").await;
    assert_eq!(b.next().await.1, out("tail"));
    let t0 = Instant::now();
    b.exit(7);
    // Reader never reports EOF (raw sender kept alive).
    let (_, ev) = b.next().await;
    assert_eq!(
        ev,
        PtyEvent::Exited(ExitInfo {
            exit_code: Some(7),
            signal: None
        })
    );
    assert_eq!(t0.elapsed(), EOF_GRACE + EOF_AFTER_KILL);
    let status = holder.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
}

#[test]
fn handle_can_be_shared_across_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PtyHandle>();
}
