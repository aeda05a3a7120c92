//! [`WebError`]: the one error type of the handlers. Every failure ends up as one of
//! three answers: a modal shown instead of the one asked for (the same modal with a
//! message, the sign-in modal, the step-up modal, or the "unavailable" page with 503),
//! a 403 for a form that failed its CSRF or origin check, or an opaque 500 whose whole
//! cause chain is logged (never shown, never a secret: causes are port and driver
//! errors, which carry no passwords, codes or tokens).

use std::fmt;

use actix_web::body::MessageBody;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, ResponseError};
use modal2fa_core::ports::BoxError;

/// Why a handler did not give the response it was asked for.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebError {
    /// A modal shown instead: the same one with a message, sign-in, step-up, or the
    /// "temporarily unavailable" page.
    Shown(Shown),
    /// The form is cross-site or its CSRF token is missing, expired or another session's.
    Forbidden,
    /// Anything else: an opaque 500; the cause chain is logged.
    Unexpected(BoxError),
}

/// A ready response kept inside a [`WebError`] (status, headers, body).
#[derive(Debug)]
pub struct Shown {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl From<HttpResponse> for Shown {
    fn from(resp: HttpResponse) -> Self {
        let (head, body) = resp.into_parts();
        Self {
            status: head.status(),
            headers: head.headers().clone(),
            body: body.try_into_bytes().unwrap_or_default(),
        }
    }
}

impl WebError {
    /// A response shown in place of the one asked for.
    pub fn shown(resp: HttpResponse) -> Self {
        Self::Shown(resp.into())
    }

    /// An unexpected failure with its cause.
    pub fn unexpected(cause: impl Into<BoxError>) -> Self {
        Self::Unexpected(cause.into())
    }
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shown(s) => write!(f, "shown a different modal ({})", s.status),
            Self::Forbidden => f.write_str("the form failed its CSRF or origin check"),
            Self::Unexpected(e) => write!(f, "unexpected failure: {}", chain(e.as_ref())),
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Shown(s) => s.status,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Shown(s) => {
                let mut resp = HttpResponse::build(s.status).body(s.body.clone());
                for (name, value) in &s.headers {
                    resp.headers_mut().append(name.clone(), value.clone());
                }
                resp
            }
            Self::Forbidden => HttpResponse::Forbidden()
                .content_type("text/plain; charset=utf-8")
                .body(crate::copy::FORM_REJECTED),
            Self::Unexpected(e) => {
                tracing::error!(error = %chain(e.as_ref()), "request failed");
                opaque_500()
            }
        }
    }
}

/// The plain 500 that says nothing about its cause.
pub(crate) fn opaque_500() -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(crate::copy::SOMETHING_WENT_WRONG)
}

/// An error and all its sources, `outer: inner: innermost`.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    modal2fa_core::error::source_chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn the_logged_cause_names_every_source_in_the_chain() {
        assert_eq!(chain(&Outer(Inner)), "outer: inner");
    }

    #[test]
    fn a_shown_modal_keeps_its_status_headers_and_body() {
        let e = WebError::shown(
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "5"))
                .body("later"),
        );
        let r = e.error_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers().get("Retry-After").unwrap(), "5");
    }
}
