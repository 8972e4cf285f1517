//! A minimal HTTP/1.1 client: JSON requests for the control plane, and a streaming
//! Server-Sent Events reader (chunked transfer decoding + SSE framing) light enough to
//! run 10,000 of at once and fast enough not to be the bottleneck of a flood.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub type Result<T> = std::result::Result<T, String>;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Head {
    status: u16,
    chunked: bool,
    content_length: Option<usize>,
}

fn parse_head(head: &[u8]) -> Result<Head> {
    let text = std::str::from_utf8(head).map_err(|e| format!("bad response head: {e}"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok();
        }
    }
    Ok(Head {
        status,
        chunked,
        content_length,
    })
}

/// Decodes `Transfer-Encoding: chunked` incrementally.
#[derive(Default)]
struct Dechunker {
    /// Bytes of the current chunk still to come; `None` while a size line is expected.
    remaining: Option<usize>,
    /// The CRLF after a chunk's data is still to be skipped.
    skip_crlf: bool,
    done: bool,
}

impl Dechunker {
    /// Moves decoded bytes from `raw[*pos..]` to `out`; stops when more input is needed.
    fn feed(&mut self, raw: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Result<()> {
        loop {
            if self.done {
                return Ok(());
            }
            if self.skip_crlf {
                if raw.len() - *pos < 2 {
                    return Ok(());
                }
                *pos += 2;
                self.skip_crlf = false;
            }
            match self.remaining {
                None => {
                    let Some(end) = find(&raw[*pos..], b"\r\n") else {
                        return Ok(());
                    };
                    let line = std::str::from_utf8(&raw[*pos..*pos + end]).unwrap_or("");
                    let size =
                        usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                            .map_err(|_| format!("bad chunk size line {line:?}"))?;
                    *pos += end + 2;
                    if size == 0 {
                        self.done = true;
                        return Ok(());
                    }
                    self.remaining = Some(size);
                }
                Some(n) => {
                    let take = n.min(raw.len() - *pos);
                    if take == 0 {
                        return Ok(());
                    }
                    out.extend_from_slice(&raw[*pos..*pos + take]);
                    *pos += take;
                    if take == n {
                        self.remaining = None;
                        self.skip_crlf = true;
                    } else {
                        self.remaining = Some(n - take);
                    }
                }
            }
        }
    }
}

/// One request on a fresh connection (`Connection: close`); returns status and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let body = json.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if json.is_some() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let end = find(&raw, b"\r\n\r\n").ok_or("no response head")?;
    let head = parse_head(&raw[..end])?;
    let mut pos = end + 4;
    let body = if head.chunked {
        let mut out = Vec::new();
        Dechunker::default().feed(&raw, &mut pos, &mut out)?;
        out
    } else {
        let len = head.content_length.unwrap_or(raw.len() - pos);
        raw[pos..(pos + len).min(raw.len())].to_vec()
    };
    Ok((head.status, String::from_utf8_lossy(&body).into_owned()))
}

/// `request` that insists on a 2xx status and parses the JSON body.
pub async fn json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value> {
    let text = body.map(serde_json::Value::to_string);
    let (status, resp) = request(addr, method, path, text.as_deref()).await?;
    if !(200..300).contains(&status) {
        return Err(format!("{method} {path}: {status} {resp}"));
    }
    serde_json::from_str(&resp).map_err(|e| format!("{method} {path}: bad JSON {e}: {resp}"))
}

/// One parsed SSE event.
#[derive(Debug, Default)]
pub struct Event {
    pub name: String,
    pub id: Option<u64>,
    pub data: Vec<u8>,
}

/// Reads an SSE response event by event.
pub struct SseReader {
    stream: TcpStream,
    raw: Vec<u8>,
    raw_pos: usize,
    dechunk: Option<Dechunker>,
    body: Vec<u8>,
    body_pos: usize,
    eof: bool,
}

impl SseReader {
    /// Connects, sends `GET path` and checks for a 200 `text/event-stream` response.
    pub async fn open(addr: SocketAddr, path: &str) -> Result<Self> {
        Self::open_from(addr, path, None).await
    }

    /// `open` from a given local address (e.g. 127.0.0.7), so that many streams do not
    /// all count as one client.
    pub async fn open_from(
        addr: SocketAddr,
        path: &str,
        local: Option<std::net::IpAddr>,
    ) -> Result<Self> {
        let mut stream = match local {
            None => TcpStream::connect(addr).await,
            Some(ip) => {
                let socket = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(|e| format!("socket: {e}"))?;
                socket
                    .bind(SocketAddr::new(ip, 0))
                    .map_err(|e| format!("bind {ip}: {e}"))?;
                socket.connect(addr).await
            }
        }
        .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        );
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::with_capacity(16 * 1024);
        let head_end = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end;
            }
            let mut buf = [0u8; 4096];
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed before the response head".into());
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = parse_head(&raw[..head_end])?;
        if head.status != 200 {
            return Err(format!(
                "GET {path}: status {} {}",
                head.status,
                String::from_utf8_lossy(&raw[head_end + 4..])
            ));
        }
        Ok(SseReader {
            stream,
            raw,
            raw_pos: head_end + 4,
            dechunk: head.chunked.then(Dechunker::default),
            body: Vec::with_capacity(64 * 1024),
            body_pos: 0,
            eof: false,
        })
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
            let start = self.raw.len();
            self.raw.resize(start + 64 * 1024, 0);
            let n = self
                .stream
                .read(&mut self.raw[start..])
                .await
                .map_err(|e| format!("read: {e}"))?;
            self.raw.truncate(start + n);
            if n == 0 {
                self.eof = true;
            }
            self.decode()?;
        }
    }

    fn parse_one(&mut self) -> Option<Event> {
        let rest = &self.body[self.body_pos..];
        let end = find(rest, b"\n\n")?;
        let mut ev = Event::default();
        for line in rest[..end].split(|&b| b == b'\n') {
            if let Some(v) = line.strip_prefix(b"data: ") {
                if !ev.data.is_empty() {
                    ev.data.push(b'\n');
                }
                ev.data.extend_from_slice(v);
            } else if let Some(v) = line.strip_prefix(b"event: ") {
                ev.name = String::from_utf8_lossy(v).into_owned();
            } else if let Some(v) = line.strip_prefix(b"id: ") {
                ev.id = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            }
        }
        if ev.name.is_empty() {
            ev.name = "message".into();
        }
        self.body_pos += end + 2;
        Some(ev)
    }
}
