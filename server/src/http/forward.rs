//! On NATS every conversation is run by one replica, its owner; the others follow
//! it. A request that needs the owner (a change, or a read of the working tree or
//! the agent) reaching another replica goes to the owner by NATS request-reply,
//! after this replica's own security checks, on the conversation's own subject,
//! which only its owner listens to. The owner runs it through its API routes and
//! the reply comes back as it was. When nobody answers, the conversation has no
//! owner, and this replica takes it and answers itself.
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
use crate::store::Claim;

/// How long a replica waits for a conversation's owner to answer; a chat that has
/// to wait for a turn to be stopped can take a while.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// Forwarded requests a replica handles at once; more wait their turn.
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

/// The way to the other replicas.
pub struct Forwarder {
    pub client: async_nats::Client,
    /// `<prefix>.requests.`; a conversation's owner listens on this plus its id.
    pub subject_prefix: String,
    /// The longest a request waits for a silent owner's claim to expire: the claim's
    /// lifetime and some slack.
    pub takeover_within: Duration,
}

/// How often a request waiting for a silent owner's claim tries again.
const TAKEOVER_POLL: Duration = Duration::from_millis(250);

/// The conversation whose owner must answer this request, if any: every change
/// to it (but its share links, kept in the shared store), and the reads that need
/// its working tree or its agent.
fn owners_conversation(method: &Method, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/conversations/")?;
    let (id, action) = rest.split_once('/')?;
    let needs_owner = if method == Method::GET || method == Method::HEAD {
        ["changes", "suggest-reprompt", "commit-description"].contains(&action)
    } else {
        [
            "chat",
            "cancel",
            "restart",
            "input",
            "permission",
            "mode",
            "model",
            "revert",
        ]
        .contains(&action)
    };
    needs_owner.then(|| id.to_string())
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

/// Middleware behind the security checks: sends what only a conversation's owner
/// can answer to its owner, or takes the conversation if it has none.
pub async fn forward(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(forwarder) = state.forward.clone() else {
        return next.run(request).await;
    };
    let Some(id) = owners_conversation(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    // An unknown id is answered here (404), as is a conversation this replica runs.
    let conversation = match state.engine.find(&id).await {
        Ok(conversation) if conversation.is_followed() => conversation,
        _ => return next.run(request).await,
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {MAX_BODY_BYTES} bytes"),
        );
    };
    // An owner that died still holds its claim until it expires: the request waits
    // that long for someone to answer or for the claim to be free.
    let deadline = tokio::time::Instant::now() + forwarder.takeover_within;
    loop {
        if let Ok(response) = forwarder.send(&id, &parts, body.clone()).await {
            return response;
        }
        match conversation.own().await {
            Ok(Claim::Mine) => {
                return next.run(Request::from_parts(parts, Body::from(body))).await;
            }
            Ok(Claim::Theirs(holder)) if tokio::time::Instant::now() >= deadline => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{holder} runs this conversation but does not answer; \
                         another replica takes it over once its claim expires; retry"
                    ),
                );
            }
            Ok(Claim::Theirs(_)) => tokio::time::sleep(TAKEOVER_POLL).await,
            Err(err) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot take over this conversation: {err}; retry"),
                );
            }
        }
    }
}

/// Nobody listens for the conversation's requests: it has no owner right now.
struct NoOwner;

impl Forwarder {
    async fn send(
        &self,
        conversation: &str,
        parts: &axum::http::request::Parts,
        body: bytes::Bytes,
    ) -> Result<Response, NoOwner> {
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
        let subject = format!("{}{conversation}", self.subject_prefix);
        match self.client.send_request(subject, asked).await {
            Ok(reply) => Ok(response_of(reply)),
            Err(e) => {
                let why = match e.kind() {
                    async_nats::RequestErrorKind::NoResponders => return Err(NoOwner),
                    async_nats::RequestErrorKind::TimedOut => {
                        "the replica that runs this conversation did not answer in time; retry"
                    }
                    _ => "the replica that runs this conversation cannot be reached; retry",
                };
                Ok(error(StatusCode::SERVICE_UNAVAILABLE, why.into()))
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

/// Answers the requests other replicas forward for each conversation this one
/// comes to own (`owned` names them), through the same API routes a browser
/// reaches, until the server shuts down.
pub async fn serve_forwarded(
    state: AppState,
    client: async_nats::Client,
    subject_prefix: String,
    mut owned: tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let shutdown = state.shutdown.clone();
    let routes = handlers::routes()
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    loop {
        let id = tokio::select! {
            id = owned.recv() => id,
            () = shutdown.cancelled() => return,
        };
        let Some(id) = id else { return };
        let subject = format!("{subject_prefix}{id}");
        match client.subscribe(subject).await {
            Ok(requests) => {
                tokio::spawn(answer(
                    requests,
                    routes.clone(),
                    client.clone(),
                    slots.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                tracing::error!(conversation = %id, error = %e, "cannot take requests for a conversation from other replicas");
            }
        }
    }
}

async fn answer(
    mut requests: async_nats::Subscriber,
    routes: axum::Router,
    client: async_nats::Client,
    slots: Arc<tokio::sync::Semaphore>,
    shutdown: tokio_util::sync::CancellationToken,
) {
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
                     ask the replica that runs the conversation directly"
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
