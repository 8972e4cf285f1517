//! Who may talk to Tether: the token, Host and Origin checks, and the stream limits.
//!
//! Tether runs shell commands, so a page on another site (cross-site requests), a
//! DNS-rebinding attacker (a foreign name resolving to 127.0.0.1) or a neighbour on
//! the network must not be able to drive it. See docs/security.md.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use app::protocol::Access;

use super::error::AppError;
use super::{AppState, share};
use crate::config::Config;

/// The cookie a browser gets after opening `/?token=…` once.
pub const COOKIE: &str = "tether_token";

/// The client's address, put into every request's extensions by `protect`.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

pub struct Guard {
    /// SHA-256 of the token, compared in constant time; `None` when no token is set.
    token: Option<[u8; 32]>,
    /// Whether the server listens on a loopback address (then Host is checked).
    loopback: bool,
    /// The port actually bound (known once listening).
    port: AtomicU16,
    allow_origins: Vec<String>,
    allow_hosts: Vec<String>,
    max_streams: usize,
    max_streams_per_client: usize,
    /// Open streams in total and per client address.
    open_streams: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn lower(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|s| s.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Guard {
    pub fn new(config: &Config) -> Self {
        Guard {
            token: config.token.as_deref().map(digest),
            loopback: config.addr.ip().is_loopback(),
            port: AtomicU16::new(config.addr.port()),
            allow_origins: lower(&config.allow_origins),
            allow_hosts: lower(&config.allow_hosts),
            max_streams: config.max_streams,
            max_streams_per_client: config.max_streams_per_client,
            open_streams: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        }
    }

    /// Records the port actually bound (the configured one may be 0).
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
    }

    fn token_matches(&self, candidate: &str) -> bool {
        match &self.token {
            Some(expected) => bool::from(digest(candidate).ct_eq(expected)),
            None => true,
        }
    }

    /// A loopback server answers only to loopback names: anything else is DNS rebinding
    /// (or a misconfigured proxy, which can be allowed with --allow-host).
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.allow_hosts.contains(&host) {
            return true;
        }
        if !self.loopback {
            return true;
        }
        let port = self.port.load(Ordering::Relaxed);
        ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name))
    }

    /// The request's Origin must be this server (as named by its Host) or allowed.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        origin == format!("http://{host}")
            || origin == format!("https://{host}")
            || self.allow_origins.contains(&origin)
    }

    /// Counts a new stream for `ip`, or refuses it when a limit is reached.
    pub fn open_stream(self: &Arc<Self>, ip: IpAddr) -> Result<StreamPermit, AppError> {
        let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let mine = per_client.entry(ip).or_insert(0);
        if *mine >= self.max_streams_per_client {
            return Err(AppError::TooMany(format!(
                "too many open streams from {ip} (limit {}); close some tabs",
                self.max_streams_per_client
            )));
        }
        if self.open_streams.load(Ordering::Relaxed) >= self.max_streams {
            return Err(AppError::TooMany(format!(
                "too many open streams (limit {})",
                self.max_streams
            )));
        }
        *mine += 1;
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        Ok(StreamPermit {
            guard: self.clone(),
            ip,
        })
    }
}

/// Held by a stream for as long as it is open.
pub struct StreamPermit {
    guard: Arc<Guard>,
    ip: IpAddr,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.guard.open_streams.fetch_sub(1, Ordering::Relaxed);
        let mut per_client = self
            .guard
            .per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&self.ip);
            }
        }
    }
}

fn forbidden(message: &str) -> Response {
    AppError::Rejected(StatusCode::FORBIDDEN, message.to_string()).into_response()
}

/// Built files the page loads before it can authenticate anything; they hold no data.
/// The stream worker is one: a page opened with a share link needs it too.
fn is_public_asset(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg" || path == "/stream-worker.js"
}

fn is_stream(path: &str) -> bool {
    path == "/api/events" || (path.starts_with("/api/conversations/") && path.ends_with("/stream"))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The value of the cookie called `wanted`, if the request has one.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, wanted: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
}

/// The `token` query parameter, and the URI without it.
fn split_token(uri: &Uri) -> Option<(String, String)> {
    let query = uri.query()?;
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("token=") {
            Some(value) => {
                token = Some(value.to_string());
                false
            }
            None => true,
        })
        .collect();
    let token = token?;
    let target = if rest.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    };
    Some((token, target))
}

/// Middleware in front of every route: Host, then token, then Origin.
pub async fn protect(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let guard = &state.guard;
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    request.extensions_mut().insert(ClientIp(ip));
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !guard.host_allowed(&host) {
        return forbidden(&format!(
            "Host {host:?} is not allowed; use http://127.0.0.1:{}/ or add it with --allow-host",
            guard.port.load(Ordering::Relaxed)
        ));
    }

    let path = request.uri().path().to_string();
    if request.method() == Method::GET
        && let Some(secret) = path.strip_prefix(share::LINK_PREFIX)
    {
        return share::open_link(&state.shares, secret);
    }
    if !is_public_asset(&path) {
        // `?token=` once: trade it for a cookie and drop it from the address bar.
        if guard.token.is_some()
            && request.method() == Method::GET
            && let Some((token, target)) = split_token(request.uri())
        {
            if !guard.token_matches(&token) {
                return AppError::Unauthorized("wrong token".into()).into_response();
            }
            let mut response = Redirect::to(&target).into_response();
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            return response;
        }
        let shared = share::credential(headers).map(str::to_string);
        // The token wins over a share; without a token set, only a share restricts.
        let owner = match &guard.token {
            Some(_) => bearer(headers)
                .or_else(|| cookie(headers, COOKIE))
                .is_some_and(|t| guard.token_matches(t)),
            None => shared.is_none(),
        };
        if !owner {
            let Some(secret) = shared else {
                return AppError::Unauthorized(
                    "a token is required: open the address Tether printed at start (it ends in ?token=…), \
                     or send Authorization: Bearer <token>"
                        .into(),
                )
                .into_response();
            };
            let grant = match state.shares.check(&secret) {
                Ok(grant) => grant,
                Err(err) => return err.into_response(),
            };
            if !share::allows(request.method(), &path, &grant.conversation_id) {
                return share::not_allowed();
            }
            request.extensions_mut().insert(Access {
                read_only: true,
                conversation_id: Some(grant.conversation_id.clone()),
            });
            request.extensions_mut().insert(grant);
        }
    }
    let headers = request.headers();

    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if changes_state || is_stream(&path) {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("invalid");
            if !guard.origin_allowed(origin, &host) {
                return forbidden(&format!(
                    "requests from origin {origin:?} are not allowed; add it with --allow-origin"
                ));
            }
        } else if headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() == b"cross-site")
        {
            return forbidden("cross-site requests are not allowed");
        }
    }
    next.run(request).await
}
