//! The HTTP layer: the router, handlers, Server-Sent Events, extractors, the
//! security middleware, the server-rendered site and the one `AppError`. It speaks
//! to the engine (and reads logs); nothing below it knows about HTTP.

mod changes_api;
mod error;
mod extract;
mod forward;
mod handlers;
mod reads;
mod security;
mod share;
mod share_api;
mod site;
mod sse;
mod transcript;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::AppError;
pub use forward::{Forwarder, serve_forwarded};
pub use reads::parse_index;
pub use security::Guard;
pub use share::Shares;
pub use site::leptos_options;

use crate::config::Config;
use crate::engine::Engine;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long shutdown waits for running tool calls to be closed in the log.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for open connections (streams included) to close.
const CONNECTION_GRACE: Duration = Duration::from_secs(2);

/// Shared state handed to every request handler.
#[derive(Clone)]
pub struct AppState {
    /// Where the site's files live and what they are called.
    pub leptos: LeptosOptions,
    /// The flags the server was started with.
    pub config: Arc<Config>,
    /// Cancelled when the server begins to shut down; open streams end on it.
    pub shutdown: CancellationToken,
    /// Every conversation, and what they share.
    pub engine: Arc<Engine>,
    /// Token, Host and Origin checks, and the stream limits.
    pub guard: Arc<Guard>,
    /// Read-only share links, cached from the store.
    pub shares: Arc<Shares>,
    /// On NATS: the way to the other replicas, for requests only a conversation's
    /// owner can answer.
    pub forward: Option<Arc<Forwarder>>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// The whole application: API routes, server-rendered pages and static files.
pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let leptos = state.leptos.clone();
    let data = app::data::ServerData(Arc::new(site::SiteData {
        engine: state.engine.clone(),
        config: state.config.clone(),
    }));
    Router::new()
        .merge(handlers::routes())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                leptos::prelude::provide_context(data.clone());
                // What the security middleware decided about this request (a share
                // makes the page read-only); rendered into the page for the browser.
                let access = leptos::prelude::use_context::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<app::protocol::Access>().cloned())
                    .unwrap_or_default();
                leptos::prelude::provide_context(access);
            },
            move || app::shell(leptos.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .method_not_allowed_fallback(|| async {
            AppError::Rejected(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here".into(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Inside the security checks: a replica forwards only what it let through.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::forward,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::protect,
        ))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then ends open streams
/// and waits for in-flight requests to finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(local) = listener.local_addr() {
        state.guard.set_port(local.port());
    }
    let token = state.shutdown.clone();
    let stopping = token.clone();
    let engine = state.engine.clone();
    let closing = engine.clone();
    // A replica that lost a conversation it owned must stop everything it runs at
    // once, however it was started.
    let lost = engine.ownership_lost();
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            () = lost.cancelled() => {
                tracing::error!("this replica lost a conversation it ran; stopping every command and agent");
            }
        }
    };
    let router = app(state);
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down");
        // Close running turns while streams are still open, so connected clients
        // receive the final `interrupted` results before their streams end.
        closing.shutdown(SHUTDOWN_GRACE).await;
        token.cancel();
    })
    .into_future();
    // Open streams end on the token, but one whose client stopped reading is stuck
    // in a write and never sees it; its connection would hold up the graceful
    // shutdown forever. So connections get a bounded time to close.
    let drain_deadline = async {
        stopping.cancelled().await;
        tokio::time::sleep(CONNECTION_GRACE).await;
    };
    let served = tokio::select! {
        served = serve => served,
        () = drain_deadline => {
            tracing::warn!("some connections did not close in time; dropping them");
            Ok(())
        }
    };
    // Anything that started during the drain is closed too.
    engine.shutdown(SHUTDOWN_GRACE).await;
    served
}
