//! The server under test, one constructor per kind:
//!
//! - [`TestServer::start`] (and `start_with`, `start_with_env`, `start_wrapped`): the
//!   real `tether` binary as a child process, for what needs a process of its own:
//!   kill -9 and crash recovery, SIGTERM, resource limits, the environment commands
//!   inherit, refusing to start.
//! - [`TestServer::in_process`] (and `in_process_with`): `server::run` on an ephemeral
//!   port inside the test process, on a runtime of its own, for everything that only
//!   needs the HTTP API. Faster to start, and a test switches with one line.
//!
//! Both listen on 127.0.0.1 with a data directory in a temporary root, and are stopped
//! when dropped (the binary with SIGKILL, the in-process one by its shutdown).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use server::store::Store;
use tempfile::TempDir;

use super::WAIT;
use super::nats::{nats_prefix_for, open_store, suite_nats_url};

/// The one place the tests open the server's state (`AppState::open`).
async fn open_state(config: server::Config) -> server::AppState {
    server::AppState::open(config)
        .await
        .expect("open the server state")
}

/// An in-process server: its shutdown trigger and the thread that runs it.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: std::sync::mpsc::Receiver<()>,
}

pub struct TestServer {
    child: Option<Child>,
    in_process: Option<InProcess>,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    pub addr: SocketAddr,
    /// Holds the data directory (`root/data`) and the server logs (`root/server-N.log`).
    root: TempDir,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
    /// A command the binary is started through (its path and arguments are appended),
    /// e.g. `bash -c '…; exec "$0" "$@"'` to set resource limits. Empty: run it directly.
    wrapper: Vec<String>,
    starts: usize,
    /// `(url, prefix)`: a replica on this NATS instead of the suite's store.
    nats: Option<(String, String)>,
    /// Addresses the running binary announces ("Tether is serving …"), in order.
    announced: Option<std::sync::mpsc::Receiver<String>>,
}

impl TestServer {
    /// The binary, with no extra flags.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Self {
        Self::start_with_env(extra_args, &[])
    }

    /// Extra arguments and extra environment variables for the server process.
    pub fn start_with_env(extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_wrapped(&[], extra_args, envs)
    }

    /// Like `start_with_env`, but runs the binary through `wrapper` (see the field).
    pub fn start_wrapped(wrapper: &[&str], extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut server = Self::new(extra_args);
        server.envs = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        server.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        server.spawn();
        server
    }

    /// In this process, with no extra flags.
    pub fn in_process() -> Self {
        Self::in_process_with(&[])
    }

    /// In this process, with extra flags (parsed as the binary parses them).
    pub fn in_process_with(extra_args: &[&str]) -> Self {
        let mut server = Self::new(extra_args);
        server.serve_in_process();
        server
    }

    fn new(extra_args: &[&str]) -> Self {
        let root = tempfile::Builder::new()
            .prefix("tether-test-")
            .tempdir()
            .expect("create a temporary directory");
        TestServer {
            child: None,
            in_process: None,
            url: String::new(),
            addr: "127.0.0.1:1".parse().expect("an address"),
            root,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            envs: Vec::new(),
            wrapper: Vec::new(),
            starts: 0,
            nats: None,
            announced: None,
        }
    }

    /// A replica on `nats_url` under `prefix`, with its own data directory: returns
    /// once it is serving.
    pub fn replica(nats_url: &str, prefix: &str, extra_args: &[&str]) -> Self {
        let mut server = Self::new(extra_args);
        server.nats = Some((nats_url.to_string(), prefix.to_string()));
        server.spawn();
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Where this server keeps conversations: the flags that pick the store.
    fn store_args(&self) -> Vec<String> {
        if let Some((url, prefix)) = &self.nats {
            return vec![
                "--nats".into(),
                url.clone(),
                "--nats-prefix".into(),
                prefix.clone(),
            ];
        }
        match suite_nats_url() {
            Some(url) => vec![
                "--nats".into(),
                url,
                "--nats-prefix".into(),
                nats_prefix_for(self.root.path()),
            ],
            None => Vec::new(),
        }
    }

    /// The store this server keeps its data in, opened from the test (use it while
    /// the server is stopped, or for reads).
    pub async fn store(&self) -> Arc<dyn Store> {
        match suite_nats_url() {
            Some(_) => open_store(self.root.path()).await,
            None => open_store(&self.data_dir()).await,
        }
    }

    /// A fresh directory (inside the test's temporary root) for conversations to use as cwd.
    pub fn work_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).expect("create a work directory");
        dir.canonicalize().expect("canonicalize the work directory")
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.root.path().join(format!("server-{n}.log"))
    }

    /// Everything the server wrote to stderr, for failure messages.
    pub fn logs(&self) -> String {
        if self.in_process.is_some() {
            return "(an in-process server has no log of its own)".into();
        }
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---- restart ----\n")
    }

    fn set_addr(&mut self, addr: SocketAddr) {
        self.addr = addr;
        self.url = format!("http://{addr}");
    }

    fn serve_in_process(&mut self) {
        let data_dir = self.data_dir();
        let mut args = vec![
            "tether".to_string(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.to_str().expect("a UTF-8 data directory").into(),
        ];
        args.extend(self.store_args());
        args.extend(self.extra_args.iter().cloned());
        let config = server::Config::try_parse_from(&args).expect("valid server flags");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (stopped_tx, stopped) = std::sync::mpsc::channel();
        // A runtime of its own: the test's (single-threaded) runtime may block, and a
        // server must not stall with it.
        std::thread::Builder::new()
            .name("tether-in-process".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the server");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind an ephemeral port");
                    let addr = listener.local_addr().expect("the bound address");
                    let state = open_state(config).await;
                    let _ = addr_tx.send(addr);
                    let shutdown = async move {
                        let _ = stop_rx.await;
                    };
                    server::run(listener, state, shutdown)
                        .await
                        .expect("serve in process");
                });
                let _ = stopped_tx.send(());
            })
            .expect("spawn the server thread");
        let addr = addr_rx
            .recv_timeout(WAIT)
            .expect("the in-process server is listening");
        self.starts += 1;
        self.in_process = Some(InProcess {
            stop: Some(stop),
            stopped,
        });
        self.set_addr(addr);
    }

    fn spawn(&mut self) {
        self.spawn_announced();
    }

    fn start_child(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).expect("create the log file");
        let binary = env!("CARGO_BIN_EXE_tether");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(self.store_args())
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn the tether binary");
        let stdout = child.stdout.take().expect("the child's stdout");
        // Read the announcements on a thread, so a server that never prints cannot
        // hang us.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // `http://HOST:PORT/…` → `http://HOST:PORT`.
            let origin = |rest: &str| rest.trim().split('/').take(3).collect::<Vec<_>>().join("/");
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(rest) = line.strip_prefix("Tether is serving ") else {
                    continue;
                };
                let announce = origin(rest);
                // Keep draining even if nobody listens, so a print never hits a
                // closed pipe.
                let _ = tx.send(announce);
            }
        });
        self.child = Some(child);
        self.announced = Some(rx);
    }

    /// Starts the binary and waits until it says it serves.
    fn spawn_announced(&mut self) {
        self.start_child();
        let rx = self.announced.as_ref().expect("a running binary");
        match rx.recv_timeout(WAIT) {
            Ok(url) => self.set_url(&url),
            Err(_) => panic!(
                "the server did not print its address; its log:\n{}",
                self.logs()
            ),
        }
    }

    fn set_url(&mut self, url: &str) {
        let addr = url
            .strip_prefix("http://")
            .expect("an http URL")
            .parse()
            .expect("a socket address in the URL");
        self.set_addr(addr);
    }

    fn child(&self) -> &Child {
        assert!(
            self.in_process.is_none(),
            "an in-process server has no process of its own: use TestServer::start()"
        );
        self.child.as_ref().expect("the server is running")
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child().id()).expect("a pid"))
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        assert!(
            self.in_process.is_none(),
            "an in-process server cannot be killed: use TestServer::start()"
        );
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        kill(self.pid(), Signal::SIGTERM).expect("send SIGTERM");
        self.wait_exit(timeout)
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not exit within {timeout:?}; its log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Changes the wrapper used from the next (re)start on; `&[]` runs the binary directly.
    pub fn set_wrapper(&mut self, wrapper: &[&str]) {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
    }

    /// Starts the server again on the same data directory (on a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut server) = self.in_process.take() {
            // Shut down as on SIGTERM (running commands are ended), and give it the
            // time the binary would have.
            if let Some(stop) = server.stop.take() {
                let _ = stop.send(());
            }
            let _ = server.stopped.recv_timeout(Duration::from_secs(15));
        } else if let Some(mut child) = self.child.take() {
            // SIGTERM, as a service manager would: Tether then ends its commands and
            // agents. A SIGKILL would leave agents that outlive their stdin (Zed's
            // adapters) running after the test. SIGCONT wakes a server a test stopped.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
