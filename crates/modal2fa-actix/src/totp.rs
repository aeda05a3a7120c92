//! Setting up an authenticator app: the QR code and secret, then the confirming code —
//! finishing a set-up login, adding a first factor, or changing the app. Showing the page
//! writes nothing: the form carries the sealed enrolment back with the code.

use actix_web::{HttpResponse, web};
use modal2fa_core::machine::{LoginState, Refusal};
use modal2fa_core::services::TotpEnrolment;
use modal2fa_core::{Outcome, ServiceError};

use crate::copy;
use crate::error::WebError;
use crate::extract::{Flow, NextQuery, Posted};
use crate::qr;
use crate::render::Command;
use crate::respond::{Back, with_errors};

const TITLE: &str = "Set up an authenticator app";

/// The confirming form: the sealed enrolment and the code.
#[derive(serde::Deserialize)]
pub(crate) struct ConfirmForm {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) enrolment: String,
    pub(crate) next: Option<String>,
}

/// What the modal shows: a new enrolment (QR code and key), or the code field again for
/// the enrolment the app already holds.
enum Shown<'a> {
    New(&'a TotpEnrolment),
    Retry(&'a str),
}

fn modal(flow: &Flow, next: &str, shown: Shown<'_>, errors: Vec<String>) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("next", next);
    match shown {
        Shown::New(e) => {
            ctx.insert("enrolment", e.token.expose());
            let grouped: Vec<String> = e
                .secret
                .expose()
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            ctx.insert("secret", &grouped.join(" "));
            ctx.insert(
                "qr_svg",
                &qr::svg(e.otpauth_url.expose()).unwrap_or_default(),
            );
        }
        Shown::Retry(token) => {
            // A retry: the app already holds the secret; show the code field again.
            ctx.insert("enrolment", token);
            ctx.insert("secret", "");
            ctx.insert("qr_svg", "");
            ctx.insert("retry", &true);
        }
    }
    flow.modal("totp_setup", TITLE, ctx)
}

pub(crate) async fn get(flow: Flow, q: web::Query<NextQuery>) -> Result<HttpResponse, WebError> {
    let next = flow.next(q.next.as_deref());
    fresh(&flow, &next, vec![]).await
}

/// The modal with a new enrolment (or the sign-in modal when there is none to make).
async fn fresh(flow: &Flow, next: &str, errors: Vec<String>) -> Result<HttpResponse, WebError> {
    match flow.auth().factors.begin_totp(&flow.state).await {
        Ok(enrolment) => Ok(modal(flow, next, Shown::New(&enrolment), errors)),
        Err(e) => {
            let to = format!(
                "{}?next={}",
                flow.path("auth:totp_setup"),
                crate::respond::encode(next)
            );
            Err(flow
                .recover(e, &to, |f, m| crate::login::modal(f, next, vec![m], ""))
                .await)
        }
    }
}

pub(crate) async fn post(
    flow: Flow,
    Posted(form): Posted<ConfirmForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    let token = form.enrolment.as_str();
    if let LoginState::PendingSecondFactor(_) = flow.state {
        let report = flow
            .auth()
            .login
            .complete_setup_with_totp(&flow.state, token, &form.code, &flow.ctx)
            .await
            .map_err(|e| flow.fail(e, |f, m| modal(f, &next, Shown::Retry(token), vec![m])))?;
        return match report.outcome {
            Outcome::Refused(Refusal::EnrolmentExpired) => {
                let msg = crate::respond::refusal_text(&flow, &report);
                fresh(&flow, &next, vec![msg]).await
            }
            Outcome::Refused(_) if !report.end_session => {
                let msg = crate::respond::refusal_text(&flow, &report);
                Ok(modal(&flow, &next, Shown::Retry(token), vec![msg]))
            }
            _ => flow.after_login_step(report, &next, Back::SecondFactor),
        };
    }
    let confirmed = flow
        .auth()
        .factors
        .confirm_totp(&flow.state, token, &form.code, &flow.ctx)
        .await;
    match confirmed {
        Ok(()) => Ok(flow.command(Command::Reload, &next)),
        Err(ServiceError::Refused(Refusal::EnrolmentExpired)) => {
            let msg = copy::refusal(Refusal::EnrolmentExpired, flow.auth().now());
            fresh(&flow, &next, vec![msg]).await
        }
        Err(e) => {
            let retry = |f: &Flow, m: String| modal(f, &next, Shown::Retry(token), vec![m]);
            Err(flow.recover(e, &flow.path("auth:totp_setup"), retry).await)
        }
    }
}
