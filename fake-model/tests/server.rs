//! The server around the dialects: probes, 404s, the request log, pacing of `SLOW`
//! replies, and the `fake-model` binary's one-line handshake.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tether_fake_model::FakeModel;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[tokio::test]
async fn probes_count_tokens_and_unknown_paths() {
    let model = FakeModel::start().await.unwrap();
    let (status, _) = tether_testkit::http::request(model.addr, "HEAD", "/", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = tether_testkit::http::request(model.addr, "GET", "/", None)
        .await
        .unwrap();
    assert_eq!(status, 200);

    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]});
    let count = tether_testkit::http::json(
        model.addr,
        "POST",
        "/v1/messages/count_tokens?beta=true",
        Some(&body),
    )
    .await
    .unwrap();
    assert!(count["input_tokens"].as_u64().unwrap() > 0);

    let (status, text) =
        tether_testkit::http::request(model.addr, "POST", "/v1/embeddings", Some("{}"))
            .await
            .unwrap();
    assert_eq!(status, 404);
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["error"]["type"], "not_found_error");

    let paths: Vec<String> = model
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            "HEAD /",
            "GET /",
            "POST /v1/messages/count_tokens?beta=true",
            "POST /v1/embeddings"
        ]
    );
    assert_eq!(model.requests()[2]["body"], body);
}

/// `SLOW` sends one delta a second, so a cancel test has time to cancel mid-stream.
#[tokio::test]
async fn slow_replies_are_paced_one_delta_a_second() {
    let model = FakeModel::start().await.unwrap();
    let body =
        json!({"model": "m", "stream": true, "tools": [{"name": "Bash", "input_schema": {}}],
                      "messages": [{"role": "user", "content": "SLOW please"}]})
        .to_string();
    let mut stream = TcpStream::connect(model.addr).await.unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut ticks = Vec::new();
    let start = Instant::now();
    while ticks.len() < 2 {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await;
        assert!(read.unwrap().unwrap() > 0, "stream ended early");
        if line.contains("\"text_delta\"") {
            assert!(line.contains(&format!("tick {}", ticks.len())), "{line}");
            ticks.push(start.elapsed());
        }
    }
    let gap = ticks[1] - ticks[0];
    assert!(gap >= Duration::from_millis(800), "deltas {gap:?} apart");
    drop(reader);
    // Hanging up mid-stream must leave the server serving.
    let (status, _) = tether_testkit::http::request(model.addr, "HEAD", "/", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_binary_prints_its_address_and_logs_requests() {
    let dir = std::env::temp_dir().join(format!("fake-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-model"))
        .args(["--port", "0", "--log"])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let addr = line.trim().strip_prefix("listening on 127.0.0.1:").unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{addr}").parse().unwrap();

    let body =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "Say hi"}]});
    let reply = tether_testkit::http::json(addr, "POST", "/v1/chat/completions", Some(&body))
        .await
        .unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "Hello from the fake model."
    );

    let logged = std::fs::read_to_string(&log).unwrap();
    let first: Value = serde_json::from_str(logged.lines().next().unwrap()).unwrap();
    assert_eq!(first["path"], "/v1/chat/completions");
    assert_eq!(first["body"], body);

    let mut rest = String::new();
    child.kill().await.unwrap();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "", "stdout carries only the one line");
    let _ = std::fs::remove_dir_all(&dir);
}
