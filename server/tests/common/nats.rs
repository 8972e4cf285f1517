//! NATS in the tests:
//!
//! - the suite's store: with `TETHER_TEST_NATS_URL` set (the test command starts a
//!   `nats-server` for a second pass), every test server and engine keeps its data
//!   there, each under a prefix of its own;
//! - [`NatsServer`]: a real `nats-server` with JetStream for the replica tests, on a
//!   free loopback port with its own store directory, that can be restarted on the
//!   same port and store and is killed when dropped. The binary comes from PATH (the
//!   test command installs it; see `scripts/setup.sh`).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use server::store::{NatsOptions, NatsStore, SqliteStore, Store};
use tempfile::TempDir;

use super::WAIT;

/// The NATS server the whole suite runs against when the test command started one
/// (`TETHER_TEST_NATS_URL`); otherwise every server keeps its data in SQLite.
pub fn suite_nats_url() -> Option<String> {
    std::env::var("TETHER_TEST_NATS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// True (after saying so) when the suite runs on NATS and the test is about SQLite's
/// own files.
pub fn sqlite_only(test: &str) -> bool {
    let nats = suite_nats_url().is_some();
    if nats {
        println!("[skip] {test}: about SQLite's files; this pass runs on NATS");
    }
    nats
}

/// A NATS name prefix of its own for the data under `dir`, so tests sharing one
/// NATS server never see each other's conversations.
pub fn nats_prefix_for(dir: &Path) -> String {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("t");
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("t{clean}")
}

fn suite_nats_options(url: String, dir: &Path) -> NatsOptions {
    NatsOptions {
        url,
        creds: None,
        prefix: nats_prefix_for(dir),
        replicas: 1,
        lease_ttl: Duration::from_secs(10),
    }
}

/// The store the suite runs against, for reading and writing records directly:
/// NATS (under a prefix of its own) when the suite has one, else SQLite in `dir`.
/// On NATS it cannot append to a conversation it does not own.
pub async fn open_store(dir: &Path) -> Arc<dyn Store> {
    match suite_nats_url() {
        Some(url) => Arc::new(
            NatsStore::connect(&suite_nats_options(url, dir))
                .await
                .expect("connect to the suite's NATS server"),
        ),
        None => Arc::new(SqliteStore::open(dir).expect("open the store")),
    }
}

/// Like `open_store`, for tests that run an engine on it: on NATS the engine then
/// owns (and may write to) the conversations it creates, as a replica does.
pub async fn open_engine_store(dir: &Path) -> Arc<dyn Store> {
    open_store(dir).await
}

pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    /// The JetStream store and the server's log.
    dir: TempDir,
}

impl NatsServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::Builder::new()
            .prefix("tether-nats-")
            .tempdir()
            .expect("a directory for JetStream");
        let mut server = NatsServer {
            child: None,
            port,
            dir,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("the NATS log");
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path().join("store"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start nats-server (scripts/test.sh installs it; it must be on PATH)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
