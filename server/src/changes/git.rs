//! Running `git`, for every part of Tether that needs it: never prompting, never
//! taking the user's optional locks, and with a private index when one is given, so
//! the user's index, branch and stash stay exactly as they were.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::ChangesError;

/// Longest one git command may take; a snapshot of a huge tree gives up rather than
/// hold a turn.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables that would point git somewhere other than the directory it is run in.
const REPOSITORY_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
];

/// One git command in `dir`.
pub struct GitCommand<'a> {
    dir: &'a Path,
    args: Vec<String>,
    index: Option<&'a Path>,
    stdin: Option<Vec<u8>>,
    /// `None` for a command that must not be cut short (a checkout).
    timeout: Option<Duration>,
}

impl<'a> GitCommand<'a> {
    pub fn new(dir: &'a Path, args: &[&str]) -> Self {
        GitCommand {
            dir,
            args: args.iter().map(|a| a.to_string()).collect(),
            index: None,
            stdin: None,
            timeout: Some(GIT_TIMEOUT),
        }
    }

    /// Lets it run as long as it takes: stopping it halfway would be worse.
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Uses `index` instead of the repository's index.
    pub fn index(mut self, index: &'a Path) -> Self {
        self.index = Some(index);
        self
    }

    pub fn stdin(mut self, input: Vec<u8>) -> Self {
        self.stdin = Some(input);
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        // Paths are literal: a file named `:(glob)*` is that file.
        cmd.arg("--literal-pathspecs")
            .arg("-c")
            .arg("core.quotepath=false")
            .arg("-C")
            .arg(self.dir)
            .args(&self.args)
            // Its messages are matched and shown: the same words everywhere.
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GIT_AUTHOR_NAME", "Tether")
            .env("GIT_AUTHOR_EMAIL", "tether@localhost")
            .env("GIT_COMMITTER_NAME", "Tether")
            .env("GIT_COMMITTER_EMAIL", "tether@localhost")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for var in REPOSITORY_VARIABLES {
            cmd.env_remove(var);
        }
        if let Some(index) = self.index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        cmd
    }

    /// The subcommand, for error messages.
    fn describe(&self) -> String {
        self.args.first().cloned().unwrap_or_default()
    }

    /// Runs it to the end; a non-zero exit is an error naming git's complaint.
    pub async fn run(self) -> Result<Output, ChangesError> {
        let out = self.output().await?;
        if !out.status.success() {
            return Err(ChangesError::Git {
                command: self.describe(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out)
    }

    /// Runs it to the end, whatever its exit status.
    pub async fn output(&self) -> Result<Output, ChangesError> {
        let mut child = self.command().spawn().map_err(ChangesError::Spawn)?;
        if let (Some(input), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            // Fed from a task of its own: git may fill its stdout before it has read
            // all of its input.
            tokio::spawn(async move {
                let _ = pipe.write_all(&input).await;
            });
        }
        let Some(limit) = self.timeout else {
            return child.wait_with_output().await.map_err(ChangesError::Spawn);
        };
        match tokio::time::timeout(limit, child.wait_with_output()).await {
            Ok(out) => out.map_err(ChangesError::Spawn),
            Err(_) => Err(ChangesError::Timeout {
                command: self.describe(),
            }),
        }
    }

    /// Runs it and returns its standard output, trimmed.
    pub async fn text(self) -> Result<String, ChangesError> {
        let out = self.run().await?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// Splits `-z` output into its fields.
pub fn nul_fields(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}
