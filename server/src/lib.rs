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
use std::time::Duration;

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
    /// Opens the store (SQLite under the data directory, or NATS when configured)
    /// and loads every conversation. Must be called inside a tokio runtime
    /// (conversations start their workers).
    pub async fn open(config: Config) -> Result<Self, StoreError> {
        let Some(options) = config.nats() else {
            let dir = config.data_dir();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
                .await
                .map_err(|e| StoreError::Backend(format!("cannot open the store: {e}")))??;
            return Self::with_store(config, Arc::new(store), None).await;
        };
        // Still needed for the agent ledger and `agents.toml`.
        let path = config.data_dir();
        std::fs::create_dir_all(&path).map_err(|source| StoreError::DataDir {
            path: path.display().to_string(),
            source,
        })?;
        let store = Arc::new(NatsStore::connect(&options).await?);
        let forward = http::Forwarder {
            client: store.client(),
            subject_prefix: store.requests_prefix(),
            takeover_within: options.lease_ttl + Duration::from_secs(5),
        };
        let state = Self::with_store(config, store.clone(), Some(Arc::new(forward))).await?;
        if let Some(owned) = state.engine.owned_ids() {
            tokio::spawn(http::serve_forwarded(
                state.clone(),
                store.client(),
                store.requests_prefix(),
                owned,
            ));
        }
        Ok(state)
    }

    fn agents(config: &Config, toolbox: Arc<Toolbox>) -> Result<Agents, StoreError> {
        let mut agents = Agents::builtin(toolbox);
        let specs =
            agent::acp::spec::configured(&config.agents, &config.data_dir().join("agents.toml"))
                .map_err(StoreError::Backend)?;
        for spec in specs {
            agents.add(Arc::new(agent::acp::AcpAgent::new(spec)));
        }
        Ok(agents)
    }

    async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        forward: Option<Arc<http::Forwarder>>,
    ) -> Result<Self, StoreError> {
        let shutdown = CancellationToken::new();
        let ledger = crate::tools::ProcessLedger::at(config.data_dir().join("agents.pids"));
        let reaped = ledger.reap();
        if reaped > 0 {
            tracing::warn!(reaped, "ended agent processes a previous run left behind");
        }
        let toolbox = Toolbox::with_ledger(config.max_running_tools, &config.env_deny(), ledger);
        let agents = Self::agents(&config, toolbox)?;
        let shares = Arc::new(http::Shares::load(store.clone()).await?);
        let settings = EngineSettings {
            max_conversations: config.max_conversations,
            snapshot_limit: config.max_snapshot_mb.saturating_mul(1 << 20),
            // Often enough that a conversation whose owner died is taken within a
            // few seconds of its claim expiring.
            sweep_every: config
                .nats()
                .map_or(Duration::from_secs(5), |o| o.lease_ttl / 4),
        };
        let engine = {
            let shares = shares.clone();
            Engine::open_replica(store, agents, settings, shutdown.clone(), move |record| {
                shares.follow(record)
            })
            .await?
        };
        Ok(AppState {
            guard: Arc::new(http::Guard::new(&config)),
            shares,
            leptos: http::leptos_options(),
            config: Arc::new(config),
            shutdown,
            engine,
            forward,
        })
    }
}
