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
        Self::open_as_replica(config, |_, _| {}).await
    }

    /// Like `open`; on NATS it first waits to be the active replica. While another
    /// one is, `standing_by` gets its name and the state of a replica that follows
    /// it (streams and reads served here, changes forwarded to it), to serve until
    /// this returns; that state's `shutdown` is cancelled just before.
    pub async fn open_as_replica(
        config: Config,
        standing_by: impl FnOnce(&str, AppState),
    ) -> Result<Self, StoreError> {
        let Some(options) = config.nats() else {
            let dir = config.data_dir();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
                .await
                .map_err(|e| StoreError::Backend(format!("cannot open the store: {e}")))??;
            return Self::active(config, Arc::new(store), None).await;
        };
        // Still needed for the agent ledger and `agents.toml`.
        let path = config.data_dir();
        std::fs::create_dir_all(&path).map_err(|source| StoreError::DataDir {
            path: path.display().to_string(),
            source,
        })?;
        let store = Arc::new(NatsStore::connect(&options).await?);
        let mut follower = None;
        let (slot, to_follow, settings) = (&mut follower, store.clone(), &config);
        let lease = store
            .acquire_lease(options.lease_ttl, |active| async move {
                match Self::follower(settings, to_follow).await {
                    Ok(state) => {
                        *slot = Some(state.shutdown.clone());
                        standing_by(&active, state);
                    }
                    Err(err) => {
                        tracing::error!(%err, "cannot follow the active replica; standing by");
                    }
                }
            })
            .await?;
        let state = Self::active(config, store.clone(), Some(Arc::new(lease))).await;
        if let Some(follower) = follower {
            follower.cancel();
        }
        let state = state?;
        tokio::spawn(http::serve_forwarded(
            state.clone(),
            store.client(),
            store.requests_subject(),
        ));
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

    fn settings(config: &Config) -> EngineSettings {
        EngineSettings {
            max_conversations: config.max_conversations,
            snapshot_limit: config.max_snapshot_mb.saturating_mul(1 << 20),
        }
    }

    /// The state of the replica that runs every turn.
    async fn active(
        config: Config,
        store: Arc<dyn Store>,
        lease: Option<Arc<crate::store::Lease>>,
    ) -> Result<Self, StoreError> {
        let shutdown = CancellationToken::new();
        let ledger = crate::tools::ProcessLedger::at(config.data_dir().join("agents.pids"));
        let reaped = ledger.reap();
        if reaped > 0 {
            tracing::warn!(reaped, "ended agent processes a previous run left behind");
        }
        let toolbox = Toolbox::with_ledger(config.max_running_tools, &config.env_deny(), ledger);
        let agents = Self::agents(&config, toolbox)?;
        let shares = http::Shares::load(store.clone()).await?;
        let engine = Engine::open(store, agents, Self::settings(&config), shutdown.clone()).await?;
        Ok(AppState {
            guard: Arc::new(http::Guard::new(&config)),
            shares: Arc::new(shares),
            leptos: http::leptos_options(),
            config: Arc::new(config),
            shutdown,
            engine: Arc::new(engine),
            lease,
            forward: None,
        })
    }

    /// The state of a replica that follows the active one on `store`.
    async fn follower(config: &Config, store: Arc<NatsStore>) -> Result<Self, StoreError> {
        let shutdown = CancellationToken::new();
        // Never runs anything: no ledger, no reaping (the processes are the active
        // replica's), but the same agents to list.
        let toolbox = Toolbox::new(config.max_running_tools, &config.env_deny());
        let agents = Self::agents(config, toolbox)?;
        let shares = Arc::new(http::Shares::load(store.clone()).await?);
        let forward = http::Forwarder {
            client: store.client(),
            subject: store.requests_subject(),
        };
        let engine = {
            let shares = shares.clone();
            Engine::open_follower(
                store,
                agents,
                Self::settings(config),
                shutdown.clone(),
                move |record| shares.follow(record),
            )
            .await?
        };
        Ok(AppState {
            guard: Arc::new(http::Guard::new(config)),
            shares,
            leptos: http::leptos_options(),
            config: Arc::new(config.clone()),
            shutdown,
            engine,
            lease: None,
            forward: Some(Arc::new(forward)),
        })
    }
}
