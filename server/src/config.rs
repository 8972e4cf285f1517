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

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }
}
