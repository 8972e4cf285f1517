//! The owner's endpoints for share links: create, list, revoke. A request that only
//! carries a share never reaches them (the security middleware refuses it).

use app::protocol::{CreateShare, ShareCreated, ShareInfo};
use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::AppError;
use super::extract::{OptionalJson, Path};

pub(super) async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CreateShare>,
) -> Result<(StatusCode, axum::Json<ShareCreated>), AppError> {
    let conversation = state.engine.get(&id)?;
    let created = state
        .shares
        .create(&conversation.id, body.expires_in_secs)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

pub(super) async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<ShareInfo>>, AppError> {
    let conversation = state.engine.get(&id)?;
    Ok(axum::Json(state.shares.list(&conversation.id)))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    Path((id, share_id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let conversation = state.engine.get(&id)?;
    state.shares.revoke(&conversation.id, &share_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
