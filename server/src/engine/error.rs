//! What can go wrong in the engine, in its own words; the HTTP layer picks statuses.

use crate::agent::ControlError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No such conversation or tool call.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (an unknown agent, a bad revision...).
    #[error("{0}")]
    Invalid(String),
    /// The request is fine but the conversation is not in a state to take it.
    #[error("{0}")]
    Conflict(String),
    /// It existed once and is gone for good (a turn's snapshots after a restart).
    #[error("{0}")]
    Gone(String),
    /// The server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// A limit is reached.
    #[error("{0}")]
    TooMany(String),
    /// Something on this machine failed (git could not run, a turn did not stop).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ControlError> for EngineError {
    fn from(err: ControlError) -> Self {
        match err {
            ControlError::NotFound(why) => EngineError::NotFound(why),
            ControlError::Conflict(why) => EngineError::Conflict(why),
            ControlError::Failed(why) => EngineError::Failed(why),
        }
    }
}
