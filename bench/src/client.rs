//! Clients of Tether's conversation stream and ttyd's websocket (the raw PTY
//! readers are in `limit`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use tether_testkit::{Result, SseReader};

/// The fields of a Tether message the harness looks at.
#[derive(Debug, Deserialize)]
pub struct Msg {
    pub idx: u64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub end_of_turn: bool,
    #[serde(default)]
    pub status: Option<String>,
}

/// A conversation stream that checks the protocol's ordering guarantees as it reads.
pub struct ConvStream {
    sse: SseReader,
    next_idx: u64,
}

impl ConvStream {
    /// Opens `stream?from=N` and waits for the first (`state`) event.
    pub async fn open(addr: SocketAddr, id: &str, from: u64) -> Result<Self> {
        Self::open_from(addr, id, from, None).await
    }

    /// `open` from a given local address.
    pub async fn open_from(
        addr: SocketAddr,
        id: &str,
        from: u64,
        local: Option<std::net::IpAddr>,
    ) -> Result<Self> {
        let path = format!("/api/conversations/{id}/stream?from={from}");
        let mut sse = SseReader::open_from(addr, &path, local).await?;
        match sse.next().await? {
            Some(ev) if ev.name == "state" => {}
            other => return Err(format!("expected a state event first, got {other:?}")),
        }
        Ok(ConvStream {
            sse,
            next_idx: from,
        })
    }

    /// Opens any SSE endpoint that follows the same framing (the ceiling server).
    pub async fn open_path(addr: SocketAddr, path: &str) -> Result<Self> {
        let mut sse = SseReader::open(addr, path).await?;
        match sse.next().await? {
            Some(ev) if ev.name == "state" => {}
            other => return Err(format!("expected a state event first, got {other:?}")),
        }
        Ok(ConvStream { sse, next_idx: 0 })
    }

    /// The next `message` event, parsed, skipping state and heartbeat events.
    pub async fn next_message(&mut self) -> Result<Msg> {
        loop {
            let ev = self.sse.next().await?.ok_or("stream ended")?;
            if ev.name != "message" {
                continue;
            }
            let msg: Msg =
                serde_json::from_slice(&ev.data).map_err(|e| format!("bad message: {e}"))?;
            if msg.idx != self.next_idx || ev.id_u64() != Some(msg.idx) {
                return Err(format!(
                    "out of order: expected idx {}, got {} (id {:?})",
                    self.next_idx, msg.idx, ev.id
                ));
            }
            self.next_idx += 1;
            return Ok(msg);
        }
    }

    /// The next message as raw frame data with its id, without JSON parsing.
    pub async fn next_raw(&mut self) -> Result<(u64, Vec<u8>)> {
        loop {
            let ev = self.sse.next().await?.ok_or("stream ended")?;
            if ev.name != "message" {
                continue;
            }
            let id = ev.id_u64().ok_or("message without id")?;
            if id != self.next_idx {
                return Err(format!(
                    "out of order: expected {}, got {id}",
                    self.next_idx
                ));
            }
            self.next_idx += 1;
            return Ok((id, ev.data));
        }
    }

    /// Reads one turn's output: every `tool_output` chunk goes to `on_output`; returns the
    /// `tool` message's status and the instant it arrived, after reading to `end_of_turn`.
    pub async fn read_turn(
        &mut self,
        mut on_output: impl FnMut(&str),
    ) -> Result<(String, Instant)> {
        let mut tool_at = None;
        loop {
            let msg = self.next_message().await?;
            match msg.kind.as_str() {
                "tool_output" => {
                    if tool_at.is_some() {
                        return Err("tool_output after the tool message".into());
                    }
                    on_output(&msg.content);
                }
                "tool" => {
                    if tool_at.is_some() {
                        return Err("two tool messages in one turn".into());
                    }
                    tool_at = Some((msg.status.unwrap_or_default(), Instant::now()));
                }
                "agent" if msg.end_of_turn => {
                    return tool_at.ok_or_else(|| "turn ended without a tool message".into());
                }
                _ => {}
            }
        }
    }
}

/// Connects to ttyd's websocket, starts the command and feeds its output to `on_output`
/// until ttyd closes the connection. Returns the time from the start message to the close.
pub async fn ttyd_session(addr: SocketAddr, mut on_output: impl FnMut(&[u8])) -> Result<Duration> {
    let mut req = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "tty".parse().map_err(|_| "header")?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| format!("ttyd websocket: {e}"))?;
    let start = Instant::now();
    ws.send(WsMessage::text(
        r#"{"AuthToken":"","columns":120,"rows":32}"#,
    ))
    .await
    .map_err(|e| format!("ttyd send: {e}"))?;
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(WsMessage::Binary(data)) => {
                if data.first() == Some(&b'0') {
                    on_output(&data[1..]);
                }
            }
            Ok(WsMessage::Text(text)) => {
                if text.as_bytes().first() == Some(&b'0') {
                    on_output(&text.as_bytes()[1..]);
                }
            }
            Ok(WsMessage::Close(_)) => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(start.elapsed())
}
