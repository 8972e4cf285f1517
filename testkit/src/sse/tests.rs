//! The client against canned responses from a loopback listener.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::Request;

/// Serves one connection: reads the request head, then writes `pieces` with a pause
/// between them (so they arrive as separate reads) and closes.
async fn serve_once(pieces: Vec<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        while find(&seen, b"\r\n\r\n").is_none() {
            let n = socket.read(&mut buf).await.expect("read");
            seen.extend_from_slice(&buf[..n]);
        }
        for piece in pieces {
            socket.write_all(piece).await.expect("write");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    addr
}

#[tokio::test]
async fn chunked_events_split_anywhere() {
    let addr = serve_once(vec![
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        b"1c\r\nevent: state\ndata: {\"a\":1}\n\n\r\n",
        b"5\r\n:\n\nid\r\n",
        b"18\r\n: 7\ndata: one\ndata:two\n\n\r\n0\r\n\r\n",
    ])
    .await;
    let mut sse = SseReader::open(addr, "/s").await.expect("open");
    let content_type = &sse.head().headers["content-type"];
    assert_eq!(content_type, "text/event-stream");
    let first = sse.next().await.expect("read").expect("an event");
    assert_eq!(first.name, "state");
    assert_eq!(first.data, b"{\"a\":1}");
    let second = sse.next().await.expect("read").expect("an event");
    assert_eq!(second.name, "message");
    assert_eq!(second.id.as_deref(), Some("7"));
    assert_eq!(second.id_u64(), Some(7));
    assert_eq!(second.data_str(), "one\ntwo");
    assert!(sse.next().await.expect("read").is_none());
}

#[tokio::test]
async fn a_timeout_around_next_loses_nothing() {
    let addr = serve_once(vec![
        b"HTTP/1.0 200 OK\r\n\r\nevent: a\ndata: 1\n\n",
        b"event: b\ndata: 2\n\n",
    ])
    .await;
    let options = StreamOptions {
        http10: true,
        recv_buffer: Some(4096),
        ..StreamOptions::default()
    };
    let mut sse = SseReader::open_with(addr, "/s", &options)
        .await
        .expect("open");
    assert_eq!(sse.next().await.expect("read").expect("a").name, "a");
    // Cancel reads until the second piece has surely arrived.
    for _ in 0..3 {
        let _ = tokio::time::timeout(Duration::from_micros(1), sse.next()).await;
    }
    let b = sse.next().await.expect("read").expect("b");
    assert_eq!((b.name.as_str(), b.data.as_slice()), ("b", &b"2"[..]));
    assert!(sse.next().await.expect("read").is_none());
}

#[tokio::test]
async fn a_status_other_than_200_is_an_error() {
    let addr = serve_once(vec![
        b"HTTP/1.1 429 Too Many\r\ncontent-length: 2\r\n\r\nno",
    ])
    .await;
    let err = SseReader::open(addr, "/s").await.err().expect("an error");
    assert!(err.contains("429"), "{err}");
}

#[tokio::test]
async fn requests_read_chunked_and_sized_bodies() {
    let addr = serve_once(vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n3\r\n{\"a",
        b"\r\n4\r\n\":1}\r\n0\r\n\r\n",
    ])
    .await;
    let response = Request::get("/x").send(addr).await.expect("send");
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.headers()["x-a"], "1");
    let value: serde_json::Value = response.json().expect("JSON");
    assert_eq!(value["a"], 1);

    let addr = serve_once(vec![
        b"HTTP/1.1 413 Too Large\r\ncontent-length: 4\r\n\r\nbig!",
    ])
    .await;
    let response = Request::post("/x")
        .json_body(vec![b'x'; 4 * 1024 * 1024])
        .send(addr)
        .await
        .expect("an early answer is read");
    assert_eq!(response.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.text(), "big!");
}
