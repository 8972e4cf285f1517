//! Shared harness for the integration tests: the server (the real `tether` binary, or
//! `server::run` in process) on a free port with its own data directory, the shared
//! HTTP/SSE client (`tether-testkit`), and helpers that wait on conditions (never on
//! time) with generous timeouts.
//!
//! - `server`: starting, killing and restarting the server.
//! - `api`: requests and streams as the tests use them.
//! - `sse`: the event streams, kept whole for assertions.
//! - `assert`: assertions and helpers over messages and responses.
//! - `procs`: markers, /proc scans, cleanup and `git`.
//! - `nats`: a real `nats-server` for the replica tests.

#![allow(dead_code, unused_imports)]

mod agent;
mod api;
mod assert;
mod nats;
mod procs;
mod server;
mod sse;

use std::time::Duration;

pub use agent::*;
pub use assert::*;
pub use nats::{NatsServer, open_engine_store, open_store, sqlite_only, suite_nats_url};
pub use procs::*;
pub use server::TestServer;
pub use sse::{Ev, Sse};
pub use tether_testkit::{Request, Response, SseReader, StatusCode, header};

/// How long any single "wait until" may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);
