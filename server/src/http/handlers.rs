//! The HTTP API: thin handlers over the engine. `docs/protocol.md` describes it for
//! client authors. To add an endpoint: a handler here (or in `reads.rs` for one
//! that only reads) and its route in `routes`.

use std::path::PathBuf;

use app::protocol::{
    AgentInfo, CancelRequest, CancelResponse, ChatRequest, ChatResponse, ChoiceRequest,
    ChoiceResponse, CommitDescription, ConversationState, ConversationSummary, CreateConversation,
    InputRequest, InputResponse, PermissionResponseAck, PermissionResponseRequest,
    RepromptSuggestion, RestartRequest, RestartResponse, ToolStatus,
};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{any, delete, get, post};
use serde::Deserialize;

use super::AppState;
use super::error::AppError;
use super::extract::{Json, OptionalJson, Path, Query};
use super::{changes_api, reads, share_api};
use crate::agent::ChoiceKind;
use crate::engine::StopInfo;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/agents", get(agents))
        .route("/api/conversations", get(list).post(create))
        .route("/api/conversations/{id}/stream", get(reads::stream))
        .route("/api/conversations/{id}/messages", get(reads::messages))
        .route("/api/conversations/{id}/state", get(state))
        .route("/api/conversations/{id}/chat", post(chat))
        .route("/api/conversations/{id}/cancel", post(cancel))
        .route("/api/conversations/{id}/restart", post(restart))
        .route("/api/conversations/{id}/input", post(input))
        .route("/api/conversations/{id}/permission", post(permission))
        .route("/api/conversations/{id}/mode", post(mode))
        .route("/api/conversations/{id}/model", post(model))
        .route("/api/conversations/{id}/download", get(reads::download))
        .route("/api/conversations/{id}/changes", get(changes_api::changes))
        .route("/api/conversations/{id}/revert", post(changes_api::revert))
        .route(
            "/api/conversations/{id}/suggest-reprompt",
            get(suggest_reprompt),
        )
        .route(
            "/api/conversations/{id}/commit-description",
            get(commit_description),
        )
        .route(
            "/api/conversations/{id}/shares",
            get(share_api::list).post(share_api::create),
        )
        .route(
            "/api/conversations/{id}/shares/{share_id}",
            delete(share_api::revoke),
        )
        .route("/api/events", get(reads::events))
        .route("/api/{*rest}", any(not_found))
}

async fn not_found() -> AppError {
    AppError::NotFound("no such API endpoint".into())
}

async fn agents(State(state): State<AppState>) -> axum::Json<Vec<AgentInfo>> {
    axum::Json(state.engine.agents())
}

async fn list(State(state): State<AppState>) -> axum::Json<Vec<ConversationSummary>> {
    axum::Json(state.engine.summaries())
}

async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateConversation>,
) -> Result<(StatusCode, axum::Json<ConversationSummary>), AppError> {
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
    let conversation = state.engine.create(&cwd, body.title, body.agent).await?;
    Ok((StatusCode::CREATED, axum::Json(conversation.summary())))
}

async fn state(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ConversationState>, AppError> {
    Ok(axum::Json(state.engine.find(&id).await?.state()))
}

async fn chat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ChatRequest>,
) -> Result<(StatusCode, axum::Json<ChatResponse>), AppError> {
    let conversation = state.engine.get(&id)?;
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
    ))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CancelRequest>,
) -> Result<(StatusCode, axum::Json<CancelResponse>), AppError> {
    let conversation = state.engine.get(&id)?;
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
        axum::Json(CancelResponse { cancelling: true }),
    ))
}

async fn restart(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RestartRequest>,
) -> Result<axum::Json<RestartResponse>, AppError> {
    let conversation = state.engine.get(&id)?;
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
    let restart_idx = conversation
        .restart(body.revision, body.initial_prompt)
        .await?;
    Ok(axum::Json(RestartResponse {
        restart_idx,
        state: conversation.state(),
    }))
}

async fn input(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<InputRequest>,
) -> Result<(StatusCode, axum::Json<InputResponse>), AppError> {
    let conversation = state.engine.get(&id)?;
    let written = body.data.len();
    conversation
        .input(&body.tool_call_id, body.data.into_bytes())
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(InputResponse { written })))
}

async fn permission(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<PermissionResponseRequest>,
) -> Result<axum::Json<PermissionResponseAck>, AppError> {
    let answer = state
        .engine
        .get(&id)?
        .answer_permission(&body.request_id, &body.option_id)
        .await?;
    Ok(axum::Json(PermissionResponseAck { answer }))
}

async fn mode(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ChoiceRequest>,
) -> Result<axum::Json<ChoiceResponse>, AppError> {
    let choices = state
        .engine
        .get(&id)?
        .choose(ChoiceKind::Mode, &body.id)
        .await?;
    Ok(axum::Json(ChoiceResponse { choices }))
}

async fn model(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ChoiceRequest>,
) -> Result<axum::Json<ChoiceResponse>, AppError> {
    let choices = state
        .engine
        .get(&id)?
        .choose(ChoiceKind::Model, &body.id)
        .await?;
    Ok(axum::Json(ChoiceResponse { choices }))
}

async fn suggest_reprompt(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<RepromptSuggestion>, AppError> {
    let prompt = state.engine.get(&id)?.suggest_reprompt().await?;
    Ok(axum::Json(RepromptSuggestion { prompt }))
}

#[derive(Deserialize)]
struct RevisionQuery {
    revision: Option<String>,
}

async fn commit_description(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RevisionQuery>,
) -> Result<axum::Json<CommitDescription>, AppError> {
    let conversation = state.engine.get(&id)?;
    let revision = query
        .revision
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| AppError::BadRequest("revision is required".into()))?;
    let (revision, description) = conversation.describe_revision(revision.trim()).await?;
    Ok(axum::Json(CommitDescription {
        description,
        revision,
    }))
}
