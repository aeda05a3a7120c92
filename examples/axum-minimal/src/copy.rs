//! What users read: fixed copy, written here, for every state, outcome and error.
//!
//! No `Display` of an error reaches a response: the core's strings are for logs, and an
//! infrastructure error's text may be a driver's (a host name, a query, a constraint).
//! Such a failure answers only [`SOMETHING_WENT_WRONG`]; its cause is logged with
//! `tracing`, and nothing else is (no form, so no password, code or token).

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modal2fa_core::{LoginState, Outcome, Refusal, ServiceError};

/// The whole answer to an infrastructure failure.
pub const SOMETHING_WENT_WRONG: &str = "Something went wrong";
/// A POST without a valid CSRF token, or from another site.
pub const CSRF_REFUSED: &str =
    "This form has expired or was sent from another site. Reload the page and try again.";
/// A form body that does not parse.
pub const BAD_FORM: &str = "Please check what you typed and try again.";
/// A form body over the size limit.
pub const TOO_LARGE: &str = "This form is too large.";
/// After logout.
pub const SIGNED_OUT: &str = "You are signed out.";
/// After adding an authenticator app while signed in.
pub const TOTP_ADDED: &str = "Authenticator app added.";
/// Above the key of a new authenticator app.
pub const SCAN_THE_KEY: &str =
    "Add this key to your authenticator app, then enter the code it shows.";

/// Where the session stands, for the top of the page.
pub fn state(state: &LoginState) -> String {
    match state {
        LoginState::SignedIn(s) => format!("Signed in as user {} with {}.", s.user_id, s.method),
        LoginState::PendingSecondFactor(p) if p.setup_required => {
            "Add an authenticator app to finish signing in.".into()
        }
        LoginState::PendingSecondFactor(_) | LoginState::StepUp(_) => {
            "Enter the code from your authenticator app.".into()
        }
        _ => "You are not signed in.".into(),
    }
}

/// The status and message for the outcome of a sign-in step that left `state`.
pub fn outcome(outcome: Outcome, state: &LoginState) -> (StatusCode, String) {
    match outcome {
        Outcome::Refused(r) => {
            let (status, message) = refusal(r);
            (status, message.into())
        }
        Outcome::LoggedOut => (StatusCode::OK, SIGNED_OUT.into()),
        _ => (StatusCode::OK, self::state(state)),
    }
}

/// A user mistake.
pub fn refusal(refusal: Refusal) -> (StatusCode, &'static str) {
    let bad = StatusCode::BAD_REQUEST;
    match refusal {
        Refusal::InvalidCredentials => (bad, "The username or password is incorrect."),
        Refusal::Locked { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts. Try again later.",
        ),
        Refusal::InvalidCode => (bad, "The code is incorrect."),
        Refusal::CodeReused => (
            bad,
            "This code has already been used. Wait for the next one.",
        ),
        Refusal::TooManyAttempts => (bad, "Too many wrong codes. Please sign in again."),
        Refusal::Expired => (bad, "The sign-in took too long. Please start again."),
        Refusal::NoPendingLogin => (bad, "No sign-in is waiting for a code. Sign in first."),
        Refusal::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, BAD_FORM),
        _ => (bad, "That is not possible right now."),
    }
}

/// A service error as a response: fixed copy; the cause of a failure logged.
pub fn error(e: ServiceError) -> Response {
    let (status, message) = match &e {
        ServiceError::Refused(r) => refusal(*r),
        ServiceError::NotSignedIn => (StatusCode::UNAUTHORIZED, "Please sign in first."),
        ServiceError::StepUpRequired => {
            (StatusCode::FORBIDDEN, "Confirm your second factor first.")
        }
        ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "You are not allowed to do that."),
        ServiceError::NotFound => (StatusCode::NOT_FOUND, "Not found."),
        ServiceError::Conflict(_) => (StatusCode::CONFLICT, "That already exists."),
        ServiceError::Unavailable(_) => {
            tracing::error!(cause = %Chain(&e), "a backing service is unavailable; answered 503");
            (StatusCode::SERVICE_UNAVAILABLE, SOMETHING_WENT_WRONG)
        }
        // Unexpected, and any kind of error added later: a failure until worded above.
        _ => {
            tracing::error!(cause = %Chain(&e), "unexpected failure; answered 500");
            (StatusCode::INTERNAL_SERVER_ERROR, SOMETHING_WENT_WRONG)
        }
    };
    text(status, message)
}

/// A plain-text response that no cache keeps.
pub fn text(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    no_store(&mut response);
    response
}

/// Pages carry per-session tokens and state: no cache may keep them.
pub fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A service error on its way out: `?` in a handler makes one, and it answers [`error`].
pub struct Failure(pub ServiceError);

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        error(self.0)
    }
}

/// An error and its sources, `a: b: c`, for the log.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
