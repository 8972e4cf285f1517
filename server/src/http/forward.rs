//! Requests a following replica cannot answer itself (anything that changes a
//! conversation, or needs the machine its turns run on) go to the active replica
//! by NATS request-reply, after this replica's own security checks; the active one
//! runs them through its API routes and the reply comes back as it was.
//!
//! The request travels as its method and path in headers and its body as the
//! payload; the response as its status and a few headers, and its body.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app::protocol::ErrorBody;
use async_nats::HeaderMap;
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tower::ServiceExt;

use super::security::ClientIp;
use super::{AppState, MAX_BODY_BYTES, handlers};

/// How long a follower waits for the active replica to answer; a chat that has to
/// wait for a turn to be stopped can take a while.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// Forwarded requests the active replica handles at once; more wait their turn.
const IN_FLIGHT: usize = 256;

const METHOD: &str = "Tether-Method";
const PATH: &str = "Tether-Path";
const CLIENT_IP: &str = "Tether-Client-Ip";
const STATUS: &str = "Tether-Status";
/// Request and response headers that travel with the body.
const CARRIED: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::RETRY_AFTER,
    header::LOCATION,
    header::CONTENT_DISPOSITION,
];

/// A following replica's way to the active one.
pub struct Forwarder {
    pub client: async_nats::Client,
    /// Where the active replica listens for requests.
    pub subject: String,
}

/// What a follower must ask the active replica for: every change, and the reads
/// that need the working tree or the agent, which live on the active replica.
fn must_forward(method: &Method, path: &str) -> bool {
    if !path.starts_with("/api/") {
        return false;
    }
    if method != Method::GET && method != Method::HEAD {
        return true;
    }
    ["/changes", "/suggest-reprompt", "/commit-description"]
        .iter()
        .any(|end| path.ends_with(end))
}

fn error(status: StatusCode, message: String) -> Response {
    let mut response = (status, Json(ErrorBody { error: message })).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    response
}

/// Middleware behind the security checks: on a follower, sends what it cannot
/// answer to the active replica.
pub async fn forward(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(forwarder) = state.forward.clone() else {
        return next.run(request).await;
    };
    if !must_forward(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    forwarder.send(request).await
}

impl Forwarder {
    async fn send(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over {MAX_BODY_BYTES} bytes"),
            );
        };
        let mut headers = HeaderMap::new();
        headers.insert(METHOD, parts.method.as_str());
        let path = parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str());
        headers.insert(PATH, path);
        if let Some(ClientIp(ip)) = parts.extensions.get::<ClientIp>() {
            headers.insert(CLIENT_IP, ip.to_string().as_str());
        }
        for name in &CARRIED {
            if let Some(value) = parts.headers.get(name).and_then(|v| v.to_str().ok()) {
                headers.insert(name.as_str(), value);
            }
        }
        let asked = async_nats::Request::new()
            .headers(headers)
            .payload(body)
            .timeout(Some(ANSWER_WITHIN));
        match self.client.send_request(self.subject.clone(), asked).await {
            Ok(reply) => response_of(reply),
            Err(e) => {
                let why = match e.kind() {
                    async_nats::RequestErrorKind::NoResponders => {
                        "no replica is active right now (a takeover is under way); retry"
                    }
                    async_nats::RequestErrorKind::TimedOut => {
                        "the active replica did not answer in time; retry"
                    }
                    _ => "the active replica cannot be reached; retry",
                };
                error(StatusCode::SERVICE_UNAVAILABLE, why.into())
            }
        }
    }
}

fn response_of(reply: async_nats::Message) -> Response {
    let headers = reply.headers.unwrap_or_default();
    let status = headers
        .get(STATUS)
        .and_then(|s| s.as_str().parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::new(Body::from(reply.payload));
    *response.status_mut() = status;
    for name in &CARRIED {
        if let Some(value) = headers
            .get(name.as_str())
            .and_then(|v| HeaderValue::from_str(v.as_str()).ok())
        {
            response.headers_mut().insert(name.clone(), value);
        }
    }
    response
}

/// On the active replica: answers the requests followers forward, through the same
/// API routes a browser reaches, until the server shuts down.
pub async fn serve_forwarded(state: AppState, client: async_nats::Client, subject: String) {
    let mut requests = match client.subscribe(subject.clone()).await {
        Ok(requests) => requests,
        Err(e) => {
            tracing::error!(error = %e, "cannot take requests from other replicas");
            return;
        }
    };
    let shutdown = state.shutdown.clone();
    let routes = handlers::routes()
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let max_reply = client.server_info().max_payload;
    loop {
        let message = tokio::select! {
            message = requests.next() => message,
            () = shutdown.cancelled() => break,
        };
        let Some(message) = message else { break };
        let Some(reply_to) = message.reply.clone() else {
            continue;
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let routes = routes.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let response = match request_of(message) {
                Some(request) => match routes.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => error(
                    StatusCode::BAD_REQUEST,
                    "a forwarded request is malformed".into(),
                ),
            };
            let (headers, body) = reply_of(response, max_reply).await;
            if let Err(e) = client.publish_with_headers(reply_to, headers, body).await {
                tracing::warn!(error = %e, "cannot answer a forwarded request");
            }
        });
    }
    let _ = requests.unsubscribe().await;
}

fn request_of(message: async_nats::Message) -> Option<Request> {
    let headers = message.headers?;
    let method = Method::from_bytes(headers.get(METHOD)?.as_str().as_bytes()).ok()?;
    let path = headers.get(PATH)?.as_str().to_string();
    let mut request = Request::builder().method(method).uri(path);
    for name in &CARRIED {
        if let Some(value) = headers.get(name.as_str()) {
            request = request.header(name.clone(), value.as_str());
        }
    }
    let mut request = request.body(Body::from(message.payload)).ok()?;
    let ip = headers
        .get(CLIENT_IP)
        .and_then(|ip| ip.as_str().parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    request.extensions_mut().insert(ClientIp(ip));
    Some(request)
}

/// The response as a NATS reply; a body too large to travel becomes a 502.
async fn reply_of(response: Response, max: usize) -> (HeaderMap, bytes::Bytes) {
    let (parts, body) = response.into_parts();
    // Room for the headers below.
    let room = max.saturating_sub(4096);
    let (status, body, carried) = match to_bytes(body, room).await {
        Ok(body) => (parts.status, body, parts.headers),
        Err(_) => {
            let too_big = ErrorBody {
                error: format!(
                    "the answer is over {room} bytes, too large to pass between replicas; \
                     ask the active replica directly"
                ),
            };
            let body = serde_json::to_vec(&too_big).unwrap_or_default().into();
            let mut carried = axum::http::HeaderMap::new();
            carried.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (StatusCode::BAD_GATEWAY, body, carried)
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(STATUS, status.as_u16().to_string().as_str());
    for name in &CARRIED {
        if let Some(value) = carried.get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(name.as_str(), value);
        }
    }
    (headers, body)
}
