//! Errors of the services. User mistakes are distinct variants; infrastructure failure is
//! one opaque [`ServiceError::Unexpected`].

use time::OffsetDateTime;

use crate::model::ParseError;
use crate::ports::{BoxError, PortError};
use crate::tokens::LinkError;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input did not parse; the message names the field.
    #[error(transparent)]
    Invalid(#[from] ParseError),
    /// Wrong username or password.
    #[error("the username or password is incorrect")]
    InvalidCredentials,
    /// Locked until the given time.
    #[error("too many failed attempts; try again later")]
    Locked {
        /// When the lock ends.
        until: OffsetDateTime,
    },
    /// Wrong code.
    #[error("the code is incorrect")]
    InvalidCode,
    /// A code that was already used.
    #[error("this code has already been used")]
    CodeReused,
    /// The pending sign-in took too long; start again.
    #[error("the sign-in took too long; please start again")]
    Expired,
    /// A reset or invitation link was refused.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Not signed in.
    #[error("you need to sign in")]
    NotSignedIn,
    /// The session must prove a second factor first.
    #[error("confirm your second factor first")]
    StepUpRequired,
    /// Not permitted.
    #[error("not permitted: {0}")]
    NotAllowed(&'static str),
    /// The thing does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated.
    #[error("{0}")]
    Conflict(String),
    /// Infrastructure failure; details are logged, not shown.
    #[error("unexpected failure")]
    Unexpected(#[source] BoxError),
}

impl From<PortError> for ServiceError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Conflict(what) => Self::Conflict(what),
            PortError::NotFound => Self::NotFound,
            PortError::Unavailable(e) | PortError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;
