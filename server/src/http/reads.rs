//! Endpoints that only read: the event streams, message pages and downloads.

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::AppState;
use super::error::AppError;
use super::extract::{Path, Query};
use super::security::ClientIp;
use super::share::ShareGrant;
use super::sse::{conversation_stream, global_stream, sse_response};
use super::transcript;

/// Most messages one `GET messages` returns; clients page with `start`.
pub const MESSAGES_PAGE_LIMIT: usize = 10_000;

/// Parses an index parameter (`from`, `start`, `end`, `Last-Event-ID`): a non-negative
/// integer, surrounding whitespace allowed. Public for the fuzz targets.
pub fn parse_index(name: &str, value: &str) -> Result<u64, AppError> {
    value.trim().parse::<u64>().map_err(|_| {
        AppError::BadRequest(format!(
            "{name} must be a non-negative integer, got {value:?}"
        ))
    })
}

#[derive(Deserialize)]
pub(super) struct StreamQuery {
    from: Option<String>,
}

pub(super) async fn stream(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    grant: Option<Extension<ShareGrant>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let conversation = state.engine.find(&id).await?;
    // Last-Event-ID (sent by a reconnecting EventSource) wins: resume after it.
    let cursor = match headers.get("last-event-id") {
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| AppError::BadRequest("Last-Event-ID must be an integer".into()))?;
            parse_index("Last-Event-ID", text)?.saturating_add(1)
        }
        None => match query.from.as_deref() {
            Some(from) => parse_index("from", from)?,
            None => 0,
        },
    };
    // A follower's log may trail the owner's by a moment: a client coming
    // from there may be ahead of it, and then waits for it here.
    let len = conversation.log.len();
    let len = if cursor > len {
        conversation.known_len().await?
    } else {
        len
    };
    if cursor > len {
        return Err(AppError::BadRequest(format!(
            "cannot stream from index {cursor}: the conversation has {len} messages"
        )));
    }
    let permit = state.guard.open_stream(ip)?;
    let frames = conversation_stream(conversation, cursor, state.config.heartbeat(), permit);
    Ok(match grant {
        // A share's stream ends as soon as the share is revoked or expires.
        Some(Extension(grant)) => {
            sse_response(frames.take_until(state.shares.clone().ended(grant)))
        }
        None => sse_response(frames),
    })
}

#[derive(Deserialize)]
pub(super) struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
}

pub(super) async fn messages(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Response, AppError> {
    let conversation = state.engine.find(&id).await?;
    let start = query
        .start
        .as_deref()
        .map(|s| parse_index("start", s))
        .transpose()?
        .unwrap_or(0);
    let end = query
        .end
        .as_deref()
        .map(|s| parse_index("end", s))
        .transpose()?
        .unwrap_or(u64::MAX);
    if end < start {
        return Err(AppError::BadRequest(format!(
            "end ({end}) is before start ({start})"
        )));
    }
    let entries = conversation
        .log
        .read(start, end, MESSAGES_PAGE_LIMIT)
        .await?;
    // The stored JSON is already the wire form of each message: join it rather than
    // decode and re-encode.
    let mut body =
        String::with_capacity(entries.iter().map(|e| e.json().len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(entry.json());
    }
    body.push(']');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Deserialize)]
pub(super) struct DownloadQuery {
    format: Option<String>,
}

pub(super) async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> Result<Response, AppError> {
    let conversation = state.engine.find(&id).await?;
    let (body, kind, ext) = match query.format.as_deref().unwrap_or("json") {
        "json" => (
            transcript::json(&conversation).await?,
            "application/json",
            "json",
        ),
        "text" => (
            transcript::text(&conversation).await?,
            "text/plain; charset=utf-8",
            "txt",
        ),
        other => {
            return Err(AppError::BadRequest(format!(
                "format must be json or text, got {other:?}"
            )));
        }
    };
    let disposition = format!("attachment; filename=\"tether-{}.{ext}\"", conversation.id);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

pub(super) async fn events(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
) -> Result<Response, AppError> {
    let permit = state.guard.open_stream(ip)?;
    Ok(sse_response(global_stream(
        state.engine.clone(),
        state.config.heartbeat(),
        permit,
    )))
}
