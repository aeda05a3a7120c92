//! Errors of the services.
//!
//! A user mistake is always a [`Refusal`]: inside the [`LoginReport`] of a sign-in step
//! (the session's state moves with it), and as [`ServiceError::Refused`] from every other
//! operation. The other variants say that the caller may not do this now (not signed in,
//! a step-up first, forbidden, not found, a uniqueness rule) or that the infrastructure
//! failed. None of the `Display` strings here is meant for end users: they are for logs
//! and for the command line. The web layer words every case once, in its own table.
//!
//! [`LoginReport`]: crate::services::LoginReport

pub use crate::machine::Refusal;
pub use crate::parse::ParseError;
use crate::ports::{BoxError, ConflictKind, PortError};
use crate::tokens::LinkError;

/// Why the caller may not do something, whatever it types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Forbidden {
    /// A pending sign-in that is not a set-up login tried to change factors.
    FinishSigningInFirst,
    /// A set-up login tried to enrol a first factor, but the user has enrolled one since
    /// the password was checked: sign in with it instead.
    FactorEnrolledMeanwhile,
    /// "Trust this device" outside the moment right after a second factor.
    TrustOnlyAfterSecondFactor,
    /// The policy disables trusted devices for this user.
    TrustedDevicesDisabled,
    /// The policy disables authenticator apps for this user.
    TotpDisabled,
    /// The policy disables passkeys for this user.
    PasskeysDisabled,
    /// No WebAuthn relying party is configured: passkeys are off on this server.
    PasskeysNotConfigured,
    /// The policy hook `allow_passwordless` turns passwordless sign-in off.
    PasswordlessDisabled,
    /// The `can_manage_users` hook said no.
    ManageUsers,
    /// The `can_manage_security` hook said no.
    ManageSecurity,
}

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A user mistake: wrong password or code, a lock, bad input, a dead link.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// Not signed in (or the account was deactivated meanwhile).
    #[error("not signed in")]
    NotSignedIn,
    /// The session must prove a second factor first.
    #[error("a step-up with a second factor is required")]
    StepUpRequired,
    /// Not permitted.
    #[error("forbidden: {0:?}")]
    Forbidden(Forbidden),
    /// The thing does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated.
    #[error("conflict on {0}")]
    Conflict(ConflictKind),
    /// A store or another backing service cannot be reached now; retrying later may work.
    #[error("a backing service is unavailable")]
    Unavailable(#[source] BoxError),
    /// Infrastructure failure; details are logged, not shown.
    #[error("unexpected failure")]
    Unexpected(#[source] BoxError),
}

impl From<PortError> for ServiceError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Conflict(kind) => Self::Conflict(kind),
            PortError::NotFound => Self::NotFound,
            PortError::Unavailable(e) => Self::Unavailable(e),
            PortError::Unexpected(e) => Self::Unexpected(e),
            e @ PortError::Unreadable { .. } => Self::Unexpected(Box::new(e)),
        }
    }
}

impl From<Refusal> for ServiceError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<ParseError> for ServiceError {
    fn from(e: ParseError) -> Self {
        Self::Refused(Refusal::Invalid(e))
    }
}

impl From<LinkError> for ServiceError {
    fn from(e: LinkError) -> Self {
        Self::Refused(Refusal::Link(e))
    }
}

impl From<Forbidden> for ServiceError {
    fn from(f: Forbidden) -> Self {
        Self::Forbidden(f)
    }
}

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// An error and all its sources, `outer: inner: innermost`: the text a log line carries
/// (driver text included; it is logged, never shown to a user, and no error of this
/// workspace puts a secret in its text).
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
