//! A streaming Server-Sent Events reader: chunked transfer decoding and SSE framing,
//! light enough to run 10,000 of at once.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::http::{Dechunker, Head, Result, find, read_head};

/// One parsed SSE event.
#[derive(Debug, Default, Clone)]
pub struct Event {
    /// The `event:` field; `message` when there is none.
    pub name: String,
    /// The `id:` field as sent.
    pub id: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: Vec<u8>,
}

impl Event {
    /// The `id:` field as a number.
    pub fn id_u64(&self) -> Option<u64> {
        self.id.as_deref().and_then(|s| s.parse().ok())
    }

    /// The data as text (lossy UTF-8).
    pub fn data_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// How to open a stream.
#[derive(Debug, Default, Clone)]
pub struct StreamOptions {
    /// Connect from this local address (e.g. 127.0.0.7), so that many streams do not
    /// all count as one client.
    pub local: Option<IpAddr>,
    /// `SO_RCVBUF` for the socket: a small one makes a reader that stops reading
    /// really stop the server from writing (loopback sockets can hold megabytes).
    pub recv_buffer: Option<u32>,
    /// Speak HTTP/1.0, so the body is the plain event bytes until the server closes.
    pub http10: bool,
    /// Extra request headers (e.g. `Last-Event-ID`).
    pub headers: Vec<(String, String)>,
}

/// Reads an SSE response event by event. `next` is cancel-safe: a timeout around it
/// loses nothing.
pub struct SseReader {
    stream: TcpStream,
    head: Head,
    raw: Vec<u8>,
    raw_pos: usize,
    dechunk: Option<Dechunker>,
    body: Vec<u8>,
    body_pos: usize,
    eof: bool,
}

async fn connect(addr: SocketAddr, options: &StreamOptions) -> std::io::Result<TcpStream> {
    if options.local.is_none() && options.recv_buffer.is_none() {
        return TcpStream::connect(addr).await;
    }
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    if let Some(size) = options.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(ip) = options.local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

impl SseReader {
    /// Connects, sends `GET path` and checks for a 200 response.
    pub async fn open(addr: SocketAddr, path: &str) -> Result<Self> {
        Self::open_with(addr, path, &StreamOptions::default()).await
    }

    /// `open` from a given local address.
    pub async fn open_from(addr: SocketAddr, path: &str, local: Option<IpAddr>) -> Result<Self> {
        let options = StreamOptions {
            local,
            ..StreamOptions::default()
        };
        Self::open_with(addr, path, &options).await
    }

    /// `open` as `options` say. A status other than 200 is an error that names it.
    pub async fn open_with(addr: SocketAddr, path: &str, options: &StreamOptions) -> Result<Self> {
        let mut stream = connect(addr, options)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let version = if options.http10 { "1.0" } else { "1.1" };
        let mut req = format!(
            "GET {path} HTTP/{version}\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
        );
        for (name, value) in &options.headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::with_capacity(16 * 1024);
        let (head, body_start) = read_head(&mut stream, &mut raw).await?;
        if head.status != http::StatusCode::OK {
            return Err(format!(
                "GET {path}: status {} {}",
                head.status.as_u16(),
                String::from_utf8_lossy(&raw[body_start..])
            ));
        }
        Ok(SseReader {
            stream,
            dechunk: head.chunked.then(Dechunker::default),
            head,
            raw,
            raw_pos: body_start,
            body: Vec::with_capacity(64 * 1024),
            body_pos: 0,
            eof: false,
        })
    }

    /// The response's status line and headers.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Moves whatever raw bytes are buffered into the decoded body.
    fn decode(&mut self) -> Result<()> {
        match &mut self.dechunk {
            Some(d) => {
                d.feed(&self.raw, &mut self.raw_pos, &mut self.body)?;
                if d.done {
                    self.eof = true;
                }
            }
            None => {
                self.body.extend_from_slice(&self.raw[self.raw_pos..]);
                self.raw_pos = self.raw.len();
            }
        }
        // Compact.
        if self.raw_pos > 0 {
            self.raw.drain(..self.raw_pos);
            self.raw_pos = 0;
        }
        Ok(())
    }

    /// The next event, or `None` at the end of the stream.
    pub async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            if self.raw_pos < self.raw.len() {
                // Bytes that came with the response head, or after a chunk boundary.
                self.decode()?;
            }
            if let Some(ev) = self.parse_one() {
                return Ok(Some(ev));
            }
            if self.eof {
                return Ok(None);
            }
            if self.body_pos > 0 {
                self.body.drain(..self.body_pos);
                self.body_pos = 0;
            }
            // `read_buf` only grows `raw` by what it read, so this await is cancel-safe.
            self.raw.reserve(64 * 1024);
            let n = self
                .stream
                .read_buf(&mut self.raw)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                self.eof = true;
            }
            self.decode()?;
        }
    }

    /// The next complete event in the body. Comments and frames without data are
    /// skipped, as a browser's `EventSource` skips them.
    fn parse_one(&mut self) -> Option<Event> {
        loop {
            let rest = &self.body[self.body_pos..];
            let end = find(rest, b"\n\n")?;
            let mut ev = Event::default();
            let mut has_data = false;
            for line in rest[..end].split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() || line[0] == b':' {
                    continue;
                }
                let (field, value) = match line.iter().position(|&b| b == b':') {
                    Some(i) => {
                        let value = &line[i + 1..];
                        (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
                    }
                    None => (line, &b""[..]),
                };
                match field {
                    b"data" => {
                        if has_data {
                            ev.data.push(b'\n');
                        }
                        ev.data.extend_from_slice(value);
                        has_data = true;
                    }
                    b"event" => ev.name = String::from_utf8_lossy(value).into_owned(),
                    b"id" => ev.id = Some(String::from_utf8_lossy(value).into_owned()),
                    _ => {}
                }
            }
            self.body_pos += end + 2;
            if !has_data {
                continue;
            }
            if ev.name.is_empty() {
                ev.name = "message".into();
            }
            return Some(ev);
        }
    }
}

#[cfg(test)]
mod tests;
