//! The one error type handlers return; it becomes a JSON response `{"error": "..."}`.
//! Only this layer maps errors to status codes.

use app::protocol::ErrorBody;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::engine::EngineError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A rejection from one of axum's extractors, with the status it chose.
    #[error("{1}")]
    Rejected(StatusCode, String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    TooMany(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Rejected(status, _) => *status,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}

impl From<StoreError> for AppError {
    /// A store that cannot take writes now (NATS unreachable, a full stream, a disk
    /// full, another replica's append) is a 503 the client may retry; corrupt data
    /// is a 500.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Backend(_) | StoreError::Conflict(_) | StoreError::Closed => {
                AppError::Unavailable(err.to_string())
            }
            StoreError::Corrupt(_) | StoreError::DataDir { .. } => {
                AppError::Internal(err.to_string())
            }
        }
    }
}

impl From<EngineError> for AppError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::NotFound(m) => AppError::NotFound(m),
            EngineError::Invalid(m) => AppError::BadRequest(m),
            EngineError::Conflict(m) => AppError::Conflict(m),
            EngineError::Gone(m) => AppError::Gone(m),
            EngineError::Unavailable(m) => AppError::Unavailable(m),
            EngineError::TooMany(m) => AppError::TooMany(m),
            EngineError::Failed(m) => AppError::Internal(m),
            EngineError::Store(e) => e.into(),
        }
    }
}

impl From<JsonRejection> for AppError {
    /// A bad body keeps the status axum chose (400, 413, 415, 422), in our words
    /// where axum's would puzzle a client author.
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "expected a JSON body with Content-Type: application/json".to_string()
            }
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => "request body is too large".to_string(),
            _ => rejection.body_text(),
        };
        AppError::Rejected(status, message)
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        AppError::Rejected(rejection.status(), rejection.body_text())
    }
}
