//! The HTTP/1.1 and Server-Sent Events client shared by Tether's integration tests
//! (`server/tests/`) and its benchmark harness (`bench/`).
//!
//! It speaks HTTP/1.1 straight over a `TcpStream`, one request per connection: light
//! enough to hold 10,000 streams open at once and fast enough not to be the bottleneck
//! of a flood, and low-level enough for tests that need a tiny receive buffer, a
//! chosen local address or HTTP/1.0.
//!
//! - [`http`]: requests ([`Request`]) with any method, headers and body, read to a
//!   [`Response`]; chunked and `Content-Length` bodies.
//! - [`sse`]: an event-stream reader ([`SseReader`]) that yields [`Event`]s.

pub mod http;
pub mod sse;

pub use crate::http::{Head, Request, Response, Result};
pub use ::http::{HeaderMap, StatusCode, header};
pub use sse::{Event, SseReader, StreamOptions};
