//! Secure by default: the token, Host and Origin checks, what commands inherit, and
//! the limits. Each test would fail without the protection it names.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use app::protocol::ToolStatus;
use common::header::{AUTHORIZATION, COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE};
use common::{Request, SseReader, StatusCode, json_of};
use common::{TestServer, WAIT, assert_error, output_of, tool_calls};
use serde_json::{Value, json};

const TOKEN: &str = "a-very-secret-test-token-0123456789";

#[test]
fn a_public_address_without_a_token_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["--addr", "0.0.0.0:0", "--data-dir"])
        .arg(data.path())
        .env_remove("TETHER_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run tether");
    assert!(!output.status.success(), "it must refuse to start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TETHER_TOKEN"),
        "the error says how to fix it: {stderr}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "it never served"
    );
}

#[tokio::test]
async fn with_a_token_every_route_needs_it() {
    let server = TestServer::in_process_with(&["--token", TOKEN]);

    // Nothing without the token: API, streams, pages.
    for path in ["/api/conversations", "/api/events", "/"] {
        let r = json_of(&server.send(Request::get(path)).await);
        assert_error(path, &r, StatusCode::UNAUTHORIZED);
    }
    let r = json_of(
        &server
            .send(
                Request::get(&server.api("conversations"))
                    .header(AUTHORIZATION, "Bearer not-the-token-at-all-no"),
            )
            .await,
    );
    assert_error("wrong bearer", &r, StatusCode::UNAUTHORIZED);

    // Programs: a Bearer header.
    let response = server
        .send(
            Request::post(&server.api("conversations"))
                .header(AUTHORIZATION, format!("Bearer {TOKEN}"))
                .json(&json!({ "cwd": server.work_dir("w").to_str() })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Browsers: `/?token=` once sets an HttpOnly, SameSite=Strict cookie and redirects
    // to the same page without the token.
    let response = server.send(Request::get(&format!("/?token={TOKEN}"))).await;
    assert!(response.status().is_redirection());
    assert_eq!(response.headers()[LOCATION], "/");
    let cookie = response.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value").to_string();
    let page = server.send(Request::get("/").header(COOKIE, &pair)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let list = server
        .send(Request::get(&server.api("conversations")).header(COOKIE, &pair))
        .await;
    assert_eq!(list.status(), StatusCode::OK);

    let r = json_of(
        &server
            .send(Request::get("/?token=wrong-wrong-wrong-wrong"))
            .await,
    );
    assert_error("wrong token in the URL", &r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn foreign_origins_cannot_change_state_or_stream() {
    let server = TestServer::in_process_with(&["--allow-origin", "https://proxy.example"]);
    let id = server.create_default().await;
    let own = server.url.clone();

    let r = json_of(
        &server
            .send(
                Request::post(&server.conv(&id, "chat"))
                    .header(ORIGIN, "http://evil.example")
                    .json(&json!({ "message": "touch pwned" })),
            )
            .await,
    );
    assert_error("cross-site chat", &r, StatusCode::FORBIDDEN);
    assert_eq!(
        server.state(&id).await.message_count,
        0,
        "nothing was appended"
    );
    assert!(!server.work_dir("work").join("pwned").exists());

    let r = json_of(
        &server
            .send(Request::get(&server.conv(&id, "stream")).header(ORIGIN, "http://evil.example"))
            .await,
    );
    assert_error("cross-site stream", &r, StatusCode::FORBIDDEN);
    let r = json_of(
        &server
            .send(Request::post(&server.conv(&id, "cancel")).header("sec-fetch-site", "cross-site"))
            .await,
    );
    assert_error("cross-site without Origin", &r, StatusCode::FORBIDDEN);

    for origin in [own.as_str(), "https://proxy.example"] {
        let response = server
            .send(
                Request::post(&server.conv(&id, "chat"))
                    .header(ORIGIN, origin)
                    .json(&json!({ "message": "true" })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "origin {origin}");
    }
    // No CORS grant is ever made.
    let response = server
        .send(Request::get(&server.api("conversations")).header(ORIGIN, "http://evil.example"))
        .await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn foreign_host_names_are_refused_on_loopback() {
    let server = TestServer::in_process_with(&["--allow-host", "tether.internal"]);
    let port = server.addr.port();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".into(),
        format!("127.0.0.2:{port}"),
    ] {
        for path in ["/api/conversations", "/"] {
            let r = json_of(&server.send(Request::get(path).header(HOST, &host)).await);
            assert_error(&format!("Host {host} {path}"), &r, StatusCode::FORBIDDEN);
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "tether.internal".into(),
    ] {
        let response = server
            .send(Request::get(&server.api("conversations")).header(HOST, &host))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "Host {host}");
    }
}

#[tokio::test]
async fn commands_do_not_inherit_secrets() {
    let server = TestServer::start_with_env(
        &["--env-deny", "MY_SECRET_*,PLAIN_SECRET", "--token", TOKEN],
        &[
            ("MY_SECRET_KEY", "k1"),
            ("PLAIN_SECRET", "k2"),
            ("TETHER_EXTRA", "k3"),
            ("HARMLESS_VALUE", "visible"),
        ],
    );
    let auth = format!("Bearer {TOKEN}");
    let created: Value = server
        .send(
            Request::post(&server.api("conversations"))
                .header(AUTHORIZATION, &auth)
                .json(&json!({ "cwd": server.work_dir("w").to_str() })),
        )
        .await
        .json()
        .expect("JSON");
    let id = created["id"].as_str().expect("id").to_string();
    server
        .send(
            Request::post(&server.conv(&id, "chat"))
                .header(AUTHORIZATION, &auth)
                .json(&json!({ "message": "env | sort" })),
        )
        .await;
    let deadline = std::time::Instant::now() + WAIT;
    let output = loop {
        let messages: Vec<app::protocol::Message> = server
            .send(Request::get(&server.conv(&id, "messages")).header(AUTHORIZATION, &auth))
            .await
            .json()
            .expect("JSON");
        if messages.iter().any(|m| m.end_of_turn) {
            let calls = tool_calls(&messages);
            break output_of(&messages, &calls[0].tool_call_id);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the command did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        output.contains("HARMLESS_VALUE=visible"),
        "ordinary variables are inherited"
    );
    assert!(output.contains("TERM=xterm-256color"));
    for secret in [
        "TETHER_TOKEN",
        "MY_SECRET_KEY",
        "PLAIN_SECRET",
        "TETHER_EXTRA",
        TOKEN,
    ] {
        assert!(
            !output.contains(secret),
            "{secret} leaked into the command's environment"
        );
    }
}

#[tokio::test]
async fn limits_have_clear_errors() {
    let server = TestServer::in_process_with(&[
        "--max-message-bytes",
        "100",
        "--max-streams-per-client",
        "2",
        "--max-conversations",
        "2",
        "--max-running-tools",
        "1",
    ]);
    let a = server.create_default().await;
    let b = server.create(&server.work_dir("b")).await;
    let r = server
        .post(
            "conversations",
            json!({ "cwd": server.work_dir("c").to_str() }),
        )
        .await;
    assert_error("third conversation", &r, StatusCode::TOO_MANY_REQUESTS);

    let r = server
        .post(
            &format!("conversations/{a}/chat"),
            json!({ "message": "x".repeat(101) }),
        )
        .await;
    assert_error("long message", &r, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(server.state(&a).await.message_count, 0);

    // Streams per client: the third is refused until one closes.
    let first = server.stream(&a).await;
    let _second = server.events().await;
    let r = json_of(&server.send(Request::get(&server.conv(&b, "stream"))).await);
    assert_error("third stream", &r, StatusCode::TOO_MANY_REQUESTS);
    drop(first);
    let deadline = std::time::Instant::now() + WAIT;
    let path = server.conv(&b, "stream");
    loop {
        // Only a 200 starts an endless body: read no further than its head.
        if SseReader::open(server.addr, &path).await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a closed stream must free its slot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Running commands: the second, while the first runs, is refused with a clear result.
    let gate = server.work_dir("work").join("gate");
    server
        .chat(&a, "while [ ! -e gate ]; do sleep 0.02; done")
        .await;
    server
        .wait_state(&a, "a running tool", |s| {
            !s.outstanding_tool_calls.is_empty()
        })
        .await;
    server.chat(&b, "echo should-not-run").await;
    let refused = loop {
        let messages = server.messages(&b).await;
        if let Some(result) = messages.iter().find(|m| m.status.is_some()) {
            break result.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status, Some(ToolStatus::Error));
    assert!(
        refused.content.contains("too many commands"),
        "{}",
        refused.content
    );
    std::fs::write(&gate, b"").expect("open the gate");
}
