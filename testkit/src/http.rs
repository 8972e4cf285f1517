//! HTTP/1.1 requests over a plain `TcpStream`, one connection each
//! (`Connection: close`), read to a complete [`Response`].

use std::net::SocketAddr;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub type Result<T> = std::result::Result<T, String>;

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status line and headers of a response.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    pub content_length: Option<usize>,
}

pub(crate) fn parse_head(head: &[u8]) -> Result<Head> {
    let text = std::str::from_utf8(head).map_err(|e| format!("bad response head: {e}"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| StatusCode::from_bytes(s.as_bytes()).ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = HeaderMap::new();
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
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    Ok(Head {
        status,
        headers,
        chunked,
        content_length,
    })
}

/// Decodes `Transfer-Encoding: chunked` incrementally.
#[derive(Default)]
pub(crate) struct Dechunker {
    /// Bytes of the current chunk still to come; `None` while a size line is expected.
    remaining: Option<usize>,
    /// The CRLF after a chunk's data is still to be skipped.
    skip_crlf: bool,
    pub(crate) done: bool,
}

impl Dechunker {
    /// Moves decoded bytes from `raw[*pos..]` to `out`; stops when more input is needed.
    pub(crate) fn feed(&mut self, raw: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Result<()> {
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

/// Reads from `stream` into `raw` until a response head is complete; returns the head
/// and where the body starts in `raw`.
pub(crate) async fn read_head(
    stream: &mut (impl AsyncRead + Unpin),
    raw: &mut Vec<u8>,
) -> Result<(Head, usize)> {
    loop {
        if let Some(end) = find(raw, b"\r\n\r\n") {
            return Ok((parse_head(&raw[..end])?, end + 4));
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
    }
}

/// A request: method, path (with its query), headers and body.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// Adds a header. A `Host` or `Connection` header replaces the default one.
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers.push((name.as_ref().to_string(), value.into()));
        self
    }

    /// The body as it is, with no `Content-Type`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A body sent as `Content-Type: application/json`, whatever it holds.
    pub fn json_body(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/json").body(body)
    }

    /// `value` encoded as JSON.
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.json_body(value.to_string())
    }

    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn encode(&self, addr: SocketAddr) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self.has("host") {
            head.push_str(&format!("Host: {addr}\r\n"));
        }
        if !self.has("connection") {
            head.push_str("Connection: close\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Sends the request on a fresh connection and reads the whole response. The body
    /// is written while the response is read, so an early answer (413 to a large body)
    /// is seen even when the server stops reading.
    pub async fn send(&self, addr: SocketAddr) -> Result<Response> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let bytes = self.encode(addr);
        let (mut reader, mut writer) = stream.split();
        let write = async { writer.write_all(&bytes).await };
        let read = async {
            let mut raw = Vec::new();
            let (head, start) = read_head(&mut reader, &mut raw).await?;
            let body = read_body(&mut reader, &head, raw, start).await?;
            Ok::<_, String>(Response { head, body })
        };
        let (written, response) = tokio::join!(write, read);
        match (response, written) {
            (Ok(response), _) => Ok(response),
            (Err(_), Err(e)) => Err(format!("write: {e}")),
            (Err(e), Ok(())) => Err(e),
        }
    }
}

/// Reads the body framed by `head` (chunked, `Content-Length`, or to the end).
async fn read_body(
    stream: &mut (impl AsyncRead + Unpin),
    head: &Head,
    mut raw: Vec<u8>,
    mut pos: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut dechunk = Dechunker::default();
    loop {
        if head.chunked {
            dechunk.feed(&raw, &mut pos, &mut out)?;
            if dechunk.done {
                return Ok(out);
            }
        } else {
            out.extend_from_slice(&raw[pos..]);
            pos = raw.len();
            if let Some(len) = head.content_length
                && out.len() >= len
            {
                out.truncate(len);
                return Ok(out);
            }
        }
        raw.drain(..pos);
        pos = 0;
        let n = stream
            .read_buf(&mut raw)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Ok(out);
        }
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("bad JSON {e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One request with an optional JSON body; returns status and body text.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> Result<(u16, String)> {
    let mut req = Request::new(method, path);
    if let Some(body) = json {
        req = req.json_body(body);
    }
    let response = req.send(addr).await?;
    Ok((response.status().as_u16(), response.text()))
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
