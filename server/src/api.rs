//! The HTTP API: thin handlers over conversations, their logs and streams.
//! `docs/protocol.md` describes it for client authors.

use std::path::PathBuf;

use app::protocol::{
    CancelRequest, ChatRequest, ChatResponse, CreateConversation, InputRequest, Message,
    MessageType, RestartRequest, ToolStatus,
};
use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;

use crate::AppState;
use crate::conversation::StopInfo;
use crate::error::AppError;
use crate::extract::{Json, OptionalJson, Path, Query};
use crate::security::ClientIp;
use crate::stream::{conversation_stream, global_stream, sse_response};
use crate::transcript;

/// Most messages one `GET messages` returns; clients page with `start`.
pub const MESSAGES_PAGE_LIMIT: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/conversations", get(list).post(create))
        .route("/api/conversations/{id}/stream", get(stream))
        .route("/api/conversations/{id}/messages", get(messages))
        .route("/api/conversations/{id}/state", get(state))
        .route("/api/conversations/{id}/chat", post(chat))
        .route("/api/conversations/{id}/cancel", post(cancel))
        .route("/api/conversations/{id}/restart", post(restart))
        .route("/api/conversations/{id}/input", post(input))
        .route("/api/conversations/{id}/download", get(download))
        .route(
            "/api/conversations/{id}/suggest-reprompt",
            get(suggest_reprompt),
        )
        .route(
            "/api/conversations/{id}/commit-description",
            get(commit_description),
        )
        .route("/api/events", get(events))
        .route("/api/{*rest}", any(not_found))
}

async fn not_found() -> AppError {
    AppError::NotFound("no such API endpoint".into())
}

async fn list(State(state): State<AppState>) -> Response {
    axum::Json(state.conversations.summaries()).into_response()
}

async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateConversation>,
) -> Result<Response, AppError> {
    let cwd = match body.cwd.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(cwd) => PathBuf::from(cwd),
        None => std::env::current_dir()
            .map_err(|e| AppError::Internal(format!("no current directory: {e}")))?,
    };
    let cwd = cwd
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "cwd {:?} is not an existing directory",
                cwd.display().to_string()
            ))
        })?;
    let conversation = state.conversations.create(&cwd, body.title)?;
    Ok((StatusCode::CREATED, axum::Json(conversation.summary())).into_response())
}

#[derive(Deserialize)]
struct StreamQuery {
    from: Option<String>,
}

/// Parses an index parameter (`from`, `start`, `end`, `Last-Event-ID`): a non-negative
/// integer, surrounding whitespace allowed. Public for the fuzz targets.
pub fn parse_index(name: &str, value: &str) -> Result<u64, AppError> {
    value.trim().parse::<u64>().map_err(|_| {
        AppError::BadRequest(format!(
            "{name} must be a non-negative integer, got {value:?}"
        ))
    })
}

async fn stream(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
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
    let len = conversation.log.len();
    if cursor > len {
        return Err(AppError::BadRequest(format!(
            "cannot stream from index {cursor}: the conversation has {len} messages"
        )));
    }
    let permit = state.guard.open_stream(ip)?;
    Ok(sse_response(conversation_stream(
        conversation,
        cursor,
        state.config.heartbeat(),
        permit,
    )))
}

#[derive(Deserialize)]
struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
}

async fn messages(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
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
    let entries = conversation.log.read(start, end, MESSAGES_PAGE_LIMIT)?;
    // The stored JSON is already the wire form: join it rather than re-encode.
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

async fn state(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(axum::Json(state.conversations.get(&id)?.state()).into_response())
}

async fn chat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ChatRequest>,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
    if body.message.trim().is_empty() {
        return Err(AppError::BadRequest("message must not be empty".into()));
    }
    let limit = state.config.max_message_bytes;
    if body.message.len() > limit {
        return Err(AppError::PayloadTooLarge(format!(
            "message is {} bytes; the limit is {limit}",
            body.message.len()
        )));
    }
    let (idx, queued) = conversation.chat(body.message).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ChatResponse { idx, queued }),
    )
        .into_response())
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CancelRequest>,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
    let reason = body
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "cancelled by the user".into());
    match body.tool_call_id {
        Some(tool_call_id) => conversation.cancel_tool(&tool_call_id)?,
        None => conversation.stop_turn(StopInfo {
            reason,
            dropped: 0,
            status: ToolStatus::Cancelled,
        })?,
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "cancelling": true })),
    )
        .into_response())
}

async fn restart(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RestartRequest>,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
    let limit = state.config.max_message_bytes;
    if body
        .initial_prompt
        .as_ref()
        .is_some_and(|p| p.len() > limit)
    {
        return Err(AppError::PayloadTooLarge(format!(
            "initial_prompt is longer than the limit of {limit} bytes"
        )));
    }
    let idx = conversation
        .restart(body.revision, body.initial_prompt)
        .await?;
    Ok(
        axum::Json(serde_json::json!({ "restart_idx": idx, "state": conversation.state() }))
            .into_response(),
    )
}

async fn input(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<InputRequest>,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
    let written = body.data.len();
    conversation
        .input(&body.tool_call_id, body.data.into_bytes())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "written": written })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct DownloadQuery {
    format: Option<String>,
}

async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
    let (body, kind, ext) = match query.format.as_deref().unwrap_or("json") {
        "json" => (transcript::json(&conversation)?, "application/json", "json"),
        "text" => (
            transcript::text(&conversation)?,
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

async fn suggest_reprompt(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
    // The message that started the current context is the natural thing to rerun;
    // before any chat, the last one of an earlier context.
    let store = &state.conversations.hub.store;
    let first = conversation.first_message_index();
    let users =
        store.read_kinds_after(&conversation.id, first.checked_sub(1), &[MessageType::User])?;
    let pick = match users.first() {
        Some(row) => Some(row.json.clone()),
        None => store
            .read_kinds_after(&conversation.id, None, &[MessageType::User])?
            .pop()
            .map(|r| r.json),
    };
    let prompt = match pick {
        Some(json) => serde_json::from_str::<Message>(&json)
            .map(|m| m.content)
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(axum::Json(serde_json::json!({ "prompt": prompt })).into_response())
}

#[derive(Deserialize)]
struct RevisionQuery {
    revision: Option<String>,
}

async fn commit_description(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RevisionQuery>,
) -> Result<Response, AppError> {
    let conversation = state.conversations.get(&id)?;
    let revision = query
        .revision
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| AppError::BadRequest("revision is required".into()))?;
    let (commit, description) = crate::git::describe(&conversation.cwd(), revision.trim()).await?;
    Ok(
        axum::Json(serde_json::json!({ "revision": commit.sha, "description": description }))
            .into_response(),
    )
}

async fn events(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
) -> Result<Response, AppError> {
    let permit = state.guard.open_stream(ip)?;
    Ok(sse_response(global_stream(
        state.conversations.clone(),
        state.config.heartbeat(),
        permit,
    )))
}
