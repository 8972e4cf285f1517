//! What a turn changed: `GET changes` (one turn's diff, or the net diff since a
//! turn) and `POST revert`.

use app::protocol::{ChangesDiff, RevertRequest, RevertResponse};
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::error::AppError;
use super::extract::{Json, Path, Query};
use crate::engine::ChangesQuery;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesParams {
    /// One turn: the index of its `changes` message.
    turn: Option<u64>,
    /// The net change from this turn's start to the latest turn's end.
    since: Option<u64>,
}

pub async fn changes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<ChangesParams>,
) -> Result<axum::Json<ChangesDiff>, AppError> {
    let conversation = state.engine.get(&id)?;
    let query = match (params.turn, params.since) {
        (Some(turn), None) => ChangesQuery::Turn(turn),
        (None, Some(since)) => ChangesQuery::Since(since),
        _ => {
            return Err(AppError::BadRequest(
                "give exactly one of turn=N or since=N (the index of a changes message)".into(),
            ));
        }
    };
    Ok(axum::Json(conversation.changes_diff(query).await?))
}

pub async fn revert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<RevertRequest>,
) -> Result<axum::Json<RevertResponse>, AppError> {
    let conversation = state.engine.get(&id)?;
    let (idx, changes) = conversation.revert(body.turn).await?;
    Ok(axum::Json(RevertResponse { idx, changes }))
}
