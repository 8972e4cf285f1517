//! Read-only share links: a share watches its own conversation (page, stream,
//! messages, state, download) and nothing else; it changes nothing; revoking it
//! ends its open streams; an expired one is refused; bad input changes nothing.

mod common;

use common::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use common::{Request, Sse, SseReader, StatusCode, TestServer, WAIT, assert_error, json_of};
use serde_json::{Value, json};
use server::store::ShareRecord;
use tether_testkit::StreamOptions;

const TOKEN: &str = "0123456789abcdef0123";

fn owner() -> String {
    format!("Bearer {TOKEN}")
}

fn share(secret: &str) -> String {
    format!("Share {secret}")
}

/// A request as the owner (with the token).
async fn as_owner(server: &TestServer, request: Request) -> (StatusCode, Value) {
    json_of(&server.send(request.header(AUTHORIZATION, owner())).await)
}

async fn create_conversation(server: &TestServer, dir: &str) -> String {
    let (status, body) = as_owner(
        server,
        Request::post(&server.api("conversations"))
            .json(&json!({ "cwd": server.work_dir(dir).to_str() })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("an id").to_string()
}

/// Creates a share of `id`; returns `(share_id, secret)`.
async fn create_share(server: &TestServer, id: &str, body: Value) -> (String, String) {
    let (status, created) = as_owner(
        server,
        Request::post(&server.conv(id, "shares")).json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let url = created["url"].as_str().expect("a url");
    let secret = url.strip_prefix("/s/").expect("a /s/ link").to_string();
    assert_eq!(secret.len(), 64, "32 random bytes in hex: {url}");
    (created["share_id"].as_str().expect("an id").into(), secret)
}

async fn with_share(server: &TestServer, secret: &str, request: Request) -> (StatusCode, Value) {
    json_of(
        &server
            .send(request.header(AUTHORIZATION, share(secret)))
            .await,
    )
}

async fn share_stream(server: &TestServer, id: &str, secret: &str) -> Sse {
    let options = StreamOptions {
        headers: vec![("Authorization".into(), share(secret))],
        ..StreamOptions::default()
    };
    let reader = tokio::time::timeout(
        WAIT,
        SseReader::open_with(server.addr, &server.conv(id, "stream"), &options),
    )
    .await
    .expect("a response head in time")
    .expect("a 200 stream");
    Sse::new(reader)
}

async fn message_count(server: &TestServer, id: &str) -> u64 {
    let (status, state) = as_owner(server, Request::get(&server.conv(id, "state"))).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    state["message_count"].as_u64().expect("a count")
}

#[tokio::test]
async fn a_share_watches_its_conversation_live_and_reads_it() {
    let server = TestServer::in_process_with(&["--token", TOKEN]);
    let id = create_conversation(&server, "a").await;
    let (_, secret) = create_share(&server, &id, json!({})).await;

    // The browser's way in: the link sets an HttpOnly cookie and redirects to the page.
    let response = server.send(Request::get(&format!("/s/{secret}"))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], format!("/c/{id}"));
    let cookie = response.headers()[SET_COOKIE].to_str().expect("ascii");
    assert!(
        cookie.starts_with(&format!("tether_share={secret};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    // (The page itself is rendered in the Playwright test: a debug build's deep page
    // tree does not fit an in-process runtime worker's stack.)
    let pair = format!("tether_share={secret}");

    // Live: output of a command the owner runs arrives on the share's stream.
    let mut stream = share_stream(&server, &id, &secret).await;
    as_owner(
        &server,
        Request::post(&server.conv(&id, "chat"))
            .json(&json!({ "message": "echo shared-$((40+2))" })),
    )
    .await;
    stream.wait_output_contains("shared-42").await;
    stream.wait_end_of_turns(1).await;

    for rest in ["state", "messages", "download", "download?format=text"] {
        let response = server
            .send(Request::get(&server.conv(&id, rest)).header(COOKIE, &pair))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{rest}");
        assert!(
            response.text().contains("shared-42") || rest == "state",
            "{rest}"
        );
    }
}

#[tokio::test]
async fn a_share_reaches_nothing_else_and_changes_nothing() {
    let server = TestServer::in_process_with(&["--token", TOKEN]);
    let id = create_conversation(&server, "a").await;
    let other = create_conversation(&server, "b").await;
    let (share_id, secret) = create_share(&server, &id, json!({})).await;

    // Another conversation: not its page, stream or data.
    for path in [
        format!("/c/{other}"),
        server.conv(&other, "state"),
        server.conv(&other, "messages"),
        server.conv(&other, "stream"),
        server.conv(&other, "download"),
    ] {
        let r = with_share(&server, &secret, Request::get(&path)).await;
        assert_error(&path, &r, StatusCode::FORBIDDEN);
    }
    // Nothing that lists, creates or administers.
    for path in [
        "/".to_string(),
        server.api("conversations"),
        server.api("events"),
        server.api("agents"),
        server.conv(&id, "shares"),
        server.conv(&id, "suggest-reprompt"),
    ] {
        let r = with_share(&server, &secret, Request::get(&path)).await;
        assert_error(&path, &r, StatusCode::FORBIDDEN);
    }
    // No state-changing request, even on its own conversation.
    let posts = [
        ("chat", json!({ "message": "touch pwned" })),
        ("cancel", json!({})),
        ("restart", json!({})),
        ("input", json!({ "tool_call_id": "x", "data": "y" })),
        ("permission", json!({ "request_id": "x", "option_id": "y" })),
        ("mode", json!({ "id": "x" })),
        ("shares", json!({})),
    ];
    for (rest, body) in posts {
        let r = with_share(
            &server,
            &secret,
            Request::post(&server.conv(&id, rest)).json(&body),
        )
        .await;
        assert_error(rest, &r, StatusCode::FORBIDDEN);
        assert!(
            r.1["error"]
                .as_str()
                .unwrap_or_default()
                .contains("share link"),
            "{}",
            r.1
        );
    }
    let r = with_share(
        &server,
        &secret,
        Request::post(&server.api("conversations")).json(&json!({})),
    )
    .await;
    assert_error("create a conversation", &r, StatusCode::FORBIDDEN);
    let r = with_share(
        &server,
        &secret,
        Request::new("DELETE", &server.conv(&id, &format!("shares/{share_id}"))),
    )
    .await;
    assert_error("revoke itself", &r, StatusCode::FORBIDDEN);
    assert_eq!(message_count(&server, &id).await, 0, "nothing was appended");
    assert!(!server.work_dir("a").join("pwned").exists());

    // The owner's list shows the share, never its secret.
    let (status, list) = as_owner(&server, Request::get(&server.conv(&id, "shares"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["share_id"], share_id.as_str());
    assert!(!list.to_string().contains(&secret));
    // A wrong secret is refused outright.
    let r = with_share(
        &server,
        &"0".repeat(64),
        Request::get(&server.conv(&id, "state")),
    )
    .await;
    assert_error("unknown share", &r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_ends_open_streams_and_refuses_the_link() {
    let server = TestServer::in_process_with(&["--token", TOKEN]);
    let id = create_conversation(&server, "a").await;
    let (share_id, secret) = create_share(&server, &id, json!({ "expires_in_secs": 3600 })).await;
    let (_, kept) = create_share(&server, &id, json!({})).await;
    let mut stream = share_stream(&server, &id, &secret).await;
    let mut other = share_stream(&server, &id, &kept).await;
    stream
        .wait_until("the first state", WAIT, |s| !s.states().is_empty())
        .await;

    let response = server
        .send(
            Request::new("DELETE", &server.conv(&id, &format!("shares/{share_id}")))
                .header(AUTHORIZATION, owner()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    stream.wait_ended(WAIT).await;

    let r = with_share(&server, &secret, Request::get(&server.conv(&id, "state"))).await;
    assert_error("revoked", &r, StatusCode::FORBIDDEN);
    assert!(
        r.1["error"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked"),
        "{}",
        r.1
    );
    let r = json_of(&server.send(Request::get(&format!("/s/{secret}"))).await);
    assert_error("revoked link", &r, StatusCode::FORBIDDEN);
    let r = as_owner(
        &server,
        Request::new("DELETE", &server.conv(&id, &format!("shares/{share_id}"))),
    )
    .await;
    assert_error("revoked twice", &r, StatusCode::NOT_FOUND);

    // The other share is untouched: its stream still follows the conversation.
    as_owner(
        &server,
        Request::post(&server.conv(&id, "chat")).json(&json!({ "message": "echo still-$((1+1))" })),
    )
    .await;
    other.wait_output_contains("still-2").await;
}

#[tokio::test]
async fn expired_links_are_refused_and_shares_survive_a_restart() {
    let mut server = TestServer::start_with(&["--token", TOKEN]);
    let id = create_conversation(&server, "a").await;
    let (_, lasting) = create_share(&server, &id, json!({ "expires_in_secs": 86_400 })).await;
    server.kill9();
    // An expiry in the past, written where the server keeps shares.
    let expired_secret = "e".repeat(64);
    {
        let store = server.store().await;
        let hash: String = {
            use sha2::Digest;
            sha2::Sha256::digest(expired_secret.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        store
            .create_share(&ShareRecord {
                id: "expired-share".into(),
                conversation_id: id.clone(),
                secret_sha256: hash,
                created_at: "2020-01-01T00:00:00.000Z".into(),
                expires_at: Some("2020-01-01T01:00:00.000Z".into()),
                revoked: false,
            })
            .await
            .expect("insert a share");
    }
    server.restart();

    let r = with_share(
        &server,
        &expired_secret,
        Request::get(&server.conv(&id, "state")),
    )
    .await;
    assert_error("expired", &r, StatusCode::FORBIDDEN);
    assert!(
        r.1["error"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{}",
        r.1
    );
    let r = json_of(
        &server
            .send(Request::get(&format!("/s/{expired_secret}")))
            .await,
    );
    assert_error("expired link", &r, StatusCode::FORBIDDEN);
    let (_, list) = as_owner(&server, Request::get(&server.conv(&id, "shares"))).await;
    let expired: Vec<bool> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["expired"].as_bool().expect("expired"))
        .collect();
    assert_eq!(expired, vec![true, false], "{list}");

    // The one created before the restart still works.
    let r = with_share(&server, &lasting, Request::get(&server.conv(&id, "state"))).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
}

#[tokio::test]
async fn bad_share_requests_are_refused_and_change_nothing() {
    let server = TestServer::in_process_with(&["--token", TOKEN]);
    let id = create_conversation(&server, "a").await;
    let other = create_conversation(&server, "b").await;
    for (what, body, status) in [
        (
            "too short",
            json!({ "expires_in_secs": 59 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "too long",
            json!({ "expires_in_secs": 30 * 86_400 + 1 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not a number",
            json!({ "expires_in_secs": "soon" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown field",
            json!({ "expire": 60 }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = as_owner(
            &server,
            Request::post(&server.conv(&id, "shares")).json(&body),
        )
        .await;
        assert_error(what, &r, status);
    }
    let r = as_owner(
        &server,
        Request::post(&server.conv("no-such-id", "shares")).json(&json!({})),
    )
    .await;
    assert_error("unknown conversation", &r, StatusCode::NOT_FOUND);
    let r = as_owner(&server, Request::get(&server.conv("no-such-id", "shares"))).await;
    assert_error("list of unknown conversation", &r, StatusCode::NOT_FOUND);
    let (share_id, _) = create_share(&server, &id, json!({ "expires_in_secs": 60 })).await;
    let r = as_owner(
        &server,
        Request::new(
            "DELETE",
            &server.conv(&other, &format!("shares/{share_id}")),
        ),
    )
    .await;
    assert_error(
        "revoke through another conversation",
        &r,
        StatusCode::NOT_FOUND,
    );
    let r = as_owner(
        &server,
        Request::new("DELETE", &server.conv(&id, "shares/nope")),
    )
    .await;
    assert_error("unknown share", &r, StatusCode::NOT_FOUND);
    let (_, list) = as_owner(&server, Request::get(&server.conv(&id, "shares"))).await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "only the good one: {list}"
    );
    let (_, list) = as_owner(&server, Request::get(&server.conv(&other, "shares"))).await;
    assert_eq!(list, json!([]));
    // Without the token, no one manages shares.
    let r = json_of(
        &server
            .send(Request::post(&server.conv(&id, "shares")).json(&json!({})))
            .await,
    );
    assert_error("no token", &r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_a_token_a_share_still_only_watches() {
    let server = TestServer::in_process();
    let id = server.create_default().await;
    let (status, created) = server
        .post(&format!("conversations/{id}/shares"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["url"]
        .as_str()
        .expect("url")
        .trim_start_matches("/s/")
        .to_string();
    let r = with_share(&server, &secret, Request::get(&server.conv(&id, "state"))).await;
    assert_eq!(r.0, StatusCode::OK);
    let r = with_share(
        &server,
        &secret,
        Request::post(&server.conv(&id, "chat")).json(&json!({ "message": "true" })),
    )
    .await;
    assert_error("chat with a share", &r, StatusCode::FORBIDDEN);
    // Everyone else on loopback is as before.
    assert_eq!(server.summaries().await.len(), 1);
}
