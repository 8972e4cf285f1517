//! The server under test: the real `tether` binary as a child process on
//! 127.0.0.1, with a data directory in a temporary root. Killed (SIGKILL) when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::WAIT;

pub struct TestServer {
    child: Option<Child>,
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

    fn new(extra_args: &[&str]) -> Self {
        let root = tempfile::Builder::new()
            .prefix("tether-test-")
            .tempdir()
            .expect("create a temporary directory");
        TestServer {
            child: None,
            url: String::new(),
            addr: "127.0.0.1:1".parse().expect("an address"),
            root,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            envs: Vec::new(),
            wrapper: Vec::new(),
            starts: 0,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
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
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---- restart ----\n")
    }

    fn set_addr(&mut self, addr: SocketAddr) {
        self.addr = addr;
        self.url = format!("http://{addr}");
    }

    fn spawn(&mut self) {
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
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn the tether binary");
        let stdout = child.stdout.take().expect("the child's stdout");
        // Read the address on a thread, so a server that never prints cannot hang us.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("Tether is serving ") {
                    // `http://HOST:PORT/` or, with a token, `http://HOST:PORT/?token=…`.
                    let origin = rest.trim().split('/').take(3).collect::<Vec<_>>().join("/");
                    let _ = tx.send(origin);
                    break;
                }
            }
            // Keep draining so a later print never hits a closed pipe.
            for _ in lines {}
        });
        self.child = Some(child);
        let url = match rx.recv_timeout(WAIT) {
            Ok(url) => url,
            Err(_) => panic!(
                "the server did not print its address; its log:\n{}",
                self.logs()
            ),
        };
        let addr = url
            .strip_prefix("http://")
            .expect("an http URL")
            .parse()
            .expect("a socket address in the URL");
        self.set_addr(addr);
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("the server is running")
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child().id()).expect("a pid"))
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid();
        kill(pid, Signal::SIGTERM).expect("send SIGTERM");
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
                    "the server did not exit within {timeout:?} of SIGTERM; its log:\n{}",
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
        self.kill9();
    }
}
