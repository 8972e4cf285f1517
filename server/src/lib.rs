//! The Tether server: an axum application that serves the Leptos site and the API.
//!
//! Layers, each importing only those below it:
//! `http` (routes, SSE, security, the one `AppError`) → `engine` (conversations,
//! their queues and workers, recovery, shutdown) → `agent` (the `Agent` trait, the
//! registry of agents, the `Turn` an agent is handed) → `tools` (the PTY runner,
//! running calls, environment policy, limits) → `log` → `store` → `app::protocol`.
//! This file only wires them together: `AppState::open` builds the state, `app`
//! builds the router (tests serve it on their own listener), `run` serves it.

#![forbid(unsafe_code)]
// The server renders the whole page tree, whose view types nest deeply.
#![recursion_limit = "256"]

pub mod agent;
pub mod changes;
pub mod config;
pub mod engine;
pub mod http;
pub mod log;
pub mod store;
pub mod tools;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use http::{AppError, AppState, MAX_BODY_BYTES, app, parse_index, run};
/// UTF-8-safe terminal chunks (public for the fuzz targets).
pub use tools::chunk;

use crate::agent::Agents;
use crate::engine::{Engine, EngineSettings};
use crate::store::{NatsStore, SqliteStore, Store, StoreError};
use crate::tools::Toolbox;

impl AppState {
    /// Opens the store under the data directory and loads every conversation.
    /// Must be called inside a tokio runtime (conversations start their workers).
    pub async fn open(config: Config) -> Result<Self, StoreError> {
        Self::open_as_replica(config, |_| {}).await
    }

    /// Like `open`; on NATS it first waits to be the active replica, calling
    /// `standing_by` with the active one's name if it has to wait.
    pub async fn open_as_replica(
        config: Config,
        standing_by: impl FnOnce(&str),
    ) -> Result<Self, StoreError> {
        let mut lease = None;
        let store: Arc<dyn Store> = match config.nats() {
            Some(options) => {
                // Still needed for the agent ledger and `agents.toml`.
                let path = config.data_dir();
                std::fs::create_dir_all(&path).map_err(|source| StoreError::DataDir {
                    path: path.display().to_string(),
                    source,
                })?;
                let store = NatsStore::connect(&options).await?;
                lease = Some(Arc::new(
                    store.acquire_lease(options.lease_ttl, standing_by).await?,
                ));
                Arc::new(store)
            }
            None => {
                let dir = config.data_dir();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
                    .await
                    .map_err(|e| StoreError::Backend(format!("cannot open the store: {e}")))??;
                Arc::new(store)
            }
        };
        let shutdown = CancellationToken::new();
        let ledger = crate::tools::ProcessLedger::at(config.data_dir().join("agents.pids"));
        let reaped = ledger.reap();
        if reaped > 0 {
            tracing::warn!(reaped, "ended agent processes a previous run left behind");
        }
        let toolbox = Toolbox::with_ledger(config.max_running_tools, &config.env_deny(), ledger);
        let settings = EngineSettings {
            max_conversations: config.max_conversations,
            snapshot_limit: config.max_snapshot_mb.saturating_mul(1 << 20),
        };
        let mut agents = Agents::builtin(toolbox);
        let specs =
            agent::acp::spec::configured(&config.agents, &config.data_dir().join("agents.toml"))
                .map_err(StoreError::Backend)?;
        for spec in specs {
            agents.add(Arc::new(agent::acp::AcpAgent::new(spec)));
        }
        let shares = http::Shares::load(store.clone()).await?;
        let engine = Engine::open(store, agents, settings, shutdown.clone()).await?;
        Ok(AppState {
            guard: Arc::new(http::Guard::new(&config)),
            shares: Arc::new(shares),
            leptos: http::leptos_options(),
            config: Arc::new(config),
            shutdown,
            engine: Arc::new(engine),
            lease,
        })
    }
}
