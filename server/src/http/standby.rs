//! What a standby replica answers while another one is active: 503 with a reason
//! and `Retry-After`, so a load balancer's health check skips it and a browser's
//! stream retries (and lands on the active replica).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use app::protocol::ErrorBody;

async fn standing_by() -> Response {
    let body = ErrorBody {
        error: "this Tether replica is standing by while another one is active; retry".into(),
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

/// Serves 503s on `listener` until `stop` is cancelled.
pub async fn serve_standby(listener: TcpListener, stop: CancellationToken) {
    let router = axum::Router::new().fallback(standing_by);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "the standby listener failed");
    }
}
