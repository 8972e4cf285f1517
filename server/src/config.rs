//! Command-line flags; each one can also be set through a `TETHER_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "tether",
    version,
    about = "Run, watch and steer terminal tasks from a browser"
)]
pub struct Config {
    /// Address to listen on. Loopback by default: Tether runs shell commands.
    #[arg(long, env = "TETHER_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Directory for the database and other state (default: the per-user data directory).
    #[arg(long, env = "TETHER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Seconds between heartbeat events on every open stream.
    #[arg(long, env = "TETHER_HEARTBEAT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub heartbeat_secs: u64,

    /// Seconds without any event after which the browser treats a stream as dead and
    /// reconnects. Keep it well above --heartbeat-secs; tests shorten it.
    #[arg(long, env = "TETHER_CLIENT_TIMEOUT_SECS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub client_timeout_secs: u64,

    /// Secret required on every request (Bearer header, or a cookie set by opening
    /// `/?token=…` once). Required when --addr is not a loopback address.
    #[arg(long, env = "TETHER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Extra origins allowed to make state-changing requests and open streams, e.g.
    /// `https://tether.example.com` behind a reverse proxy. Comma-separated.
    #[arg(
        long = "allow-origin",
        env = "TETHER_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,

    /// Extra `Host` names (with port if not 80/443) accepted besides localhost,
    /// 127.0.0.1 and [::1], e.g. `tether.example.com`. Comma-separated.
    #[arg(long = "allow-host", env = "TETHER_ALLOW_HOSTS", value_delimiter = ',')]
    pub allow_hosts: Vec<String>,

    /// Environment variables commands must not inherit, as names or `PREFIX*`
    /// patterns (TETHER_* is always removed). Comma-separated.
    #[arg(long = "env-deny", env = "TETHER_ENV_DENY", value_delimiter = ',')]
    pub env_deny: Vec<String>,

    /// Longest chat message accepted, in bytes.
    #[arg(long, env = "TETHER_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Open event streams allowed in total.
    #[arg(long, env = "TETHER_MAX_STREAMS", default_value_t = 20_000)]
    pub max_streams: usize,

    /// Open event streams allowed from one client address.
    #[arg(long, env = "TETHER_MAX_STREAMS_PER_CLIENT", default_value_t = 2_000)]
    pub max_streams_per_client: usize,

    /// Commands allowed to run at once across all conversations.
    #[arg(long, env = "TETHER_MAX_RUNNING_TOOLS", default_value_t = 256)]
    pub max_running_tools: usize,

    /// An ACP agent to offer, as `NAME=COMMAND LINE` (repeatable; `;`-separated in
    /// the variable). Agents known to speak ACP are offered when found on PATH, and
    /// more can be listed in `agents.toml` in the data directory.
    #[arg(long = "agent", env = "TETHER_AGENTS", value_delimiter = ';')]
    pub agents: Vec<String>,

    /// Most MiB of changed and untracked files a snapshot of a conversation's git work
    /// tree stores at a turn's start or end; a larger tree gets a note instead of a
    /// diff.
    #[arg(long, env = "TETHER_MAX_SNAPSHOT_MB", default_value_t = 256)]
    pub max_snapshot_mb: u64,

    /// Keep conversations in NATS JetStream at this URL (`nats://host:4222`, several
    /// comma-separated for a cluster; user and password may be in it) instead of the
    /// SQLite database in the data directory.
    #[arg(long = "nats", env = "TETHER_NATS_URL")]
    pub nats_url: Option<String>,

    /// A NATS credentials file (JWT and NKey seed) to connect with.
    #[arg(long, env = "TETHER_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// Prefix of the stream, buckets and subjects Tether uses in NATS; deployments
    /// sharing one NATS need different prefixes.
    #[arg(long, env = "TETHER_NATS_PREFIX", default_value = "tether")]
    pub nats_prefix: String,

    /// Copies JetStream keeps of Tether's data (3 on a production cluster).
    #[arg(long, env = "TETHER_NATS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,

    /// Seconds a replica's claim on a conversation lasts without a renewal; another
    /// replica takes a conversation over this long after its owner dies.
    #[arg(long, env = "TETHER_NATS_LEASE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub nats_lease_secs: u64,

    /// Conversations that can exist.
    #[arg(long, env = "TETHER_MAX_CONVERSATIONS", default_value_t = 10_000)]
    pub max_conversations: usize,
}

impl Config {
    /// The data directory to use, falling back to the platform's per-user location.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            dirs::data_local_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("tether")
        })
    }

    /// Where to keep conversations in NATS, if not in SQLite.
    pub fn nats(&self) -> Option<crate::store::NatsOptions> {
        let url = self.nats_url.as_ref()?.trim();
        (!url.is_empty()).then(|| crate::store::NatsOptions {
            url: url.to_string(),
            creds: self.nats_creds.clone(),
            prefix: self.nats_prefix.clone(),
            replicas: usize::from(self.nats_replicas),
            lease_ttl: Duration::from_secs(self.nats_lease_secs),
        })
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }

    /// Refuses setups that would expose shell access: a non-loopback address without
    /// a token, or an empty token.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(token) = &self.token
            && token.trim().len() < 16
        {
            return Err(
                "the token must be at least 16 characters long (use e.g. `openssl rand -hex 24`)"
                    .into(),
            );
        }
        if !self.addr.ip().is_loopback() && self.token.is_none() {
            return Err(format!(
                "refusing to listen on {} without a token: anyone who can reach it could run commands. \
                 Set --token or TETHER_TOKEN (e.g. TETHER_TOKEN=$(openssl rand -hex 24)), or listen on 127.0.0.1.",
                self.addr
            ));
        }
        Ok(())
    }

    /// Environment variable patterns removed from every command's environment.
    pub fn env_deny(&self) -> Vec<String> {
        let mut deny = vec!["TETHER_*".to_string()];
        deny.extend(
            self.env_deny
                .iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty()),
        );
        deny
    }
}
