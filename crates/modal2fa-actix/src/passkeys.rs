//! Passkey ceremonies over HTTP: a POST begins one (answered with the options for
//! `navigator.credentials`, as JSON) and keeps its state in the server-side session; the
//! POST of the browser's answer takes the state out again to finish it, so a challenge
//! is used once, and only by the session that asked for it. Both are CSRF- and
//! origin-checked like every POST. Three ceremonies: registration (a first factor in a
//! set-up login, or one more passkey), the second factor (a pending login or a step-up),
//! and passwordless sign-in from the login modal. Renaming and removing a passkey are
//! plain form POSTs from "Passkeys & trusted devices".

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpResponse, web};
use modal2fa_core::machine::LoginState;
use modal2fa_core::services::Ceremony;
use modal2fa_core::services::PasskeyRemoval;
use serde::Deserialize;

use crate::devices::{ConfirmRemoval, list_modal_with, listed_after};
use crate::error::WebError;
use crate::extract::{Flow, Posted, TokenForm};
use crate::render::Command;
use crate::respond::Back;

/// The session entry holding an open ceremony's state.
pub const CEREMONY: &str = "modal2fa.webauthn";

/// The browser's answer to a ceremony.
#[derive(Deserialize)]
pub(crate) struct AnswerForm {
    /// The `PublicKeyCredential` as JSON (what `@simplewebauthn/browser` returns).
    response: String,
    /// The passkey's name (registration).
    name: Option<String>,
    next: Option<String>,
}

/// Keeps `ceremony`'s state in the session and answers its options.
fn begun(flow: &Flow, ceremony: Ceremony) -> Result<HttpResponse, WebError> {
    flow.session
        .insert(CEREMONY, ceremony.state)
        .map_err(WebError::unexpected)?;
    let mut resp = HttpResponse::Ok().body(ceremony.options);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The open ceremony's state, taken out of the session (empty when there is none).
fn taken(flow: &Flow) -> String {
    flow.session
        .remove_as::<String>(CEREMONY)
        .and_then(Result::ok)
        .unwrap_or_default()
}

fn error_modal(flow: &Flow, next: &str, msg: String) -> HttpResponse {
    crate::second_factor::modal(flow, &flow.state, next, vec![msg], false)
}

pub(crate) async fn register_options(
    flow: Flow,
    Posted(form): Posted<TokenForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    match flow.auth().passkeys.begin_registration(&flow.state).await {
        Ok(ceremony) => begun(&flow, ceremony),
        Err(e) => Err(flow
            .recover(e, &next, |f, m| error_modal(f, &next, m))
            .await),
    }
}

pub(crate) async fn register(
    flow: Flow,
    Posted(form): Posted<AnswerForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    let kept = taken(&flow);
    let name = form.name.as_deref().unwrap_or_default();
    if let LoginState::PendingSecondFactor(_) = flow.state {
        // A set-up login's first factor: signs in.
        let report = flow
            .auth()
            .passkeys
            .complete_setup(&flow.state, &kept, &form.response, name, &flow.ctx)
            .await
            .map_err(|e| flow.fail(e, |f, m| error_modal(f, &next, m)))?;
        return flow.after_login_step(report, &next, Back::SecondFactor);
    }
    let added = flow
        .auth()
        .passkeys
        .finish_registration(&flow.state, &kept, &form.response, name, &flow.ctx)
        .await;
    match added {
        Ok(_) => Ok(flow.command(Command::Reload, &next)),
        Err(e) => Err(flow
            .recover(e, &next, |f, m| error_modal(f, &next, m))
            .await),
    }
}

pub(crate) async fn sign_in_options(
    flow: Flow,
    Posted(form): Posted<TokenForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    match flow.auth().passkeys.begin_authentication(&flow.state).await {
        Ok(ceremony) => begun(&flow, ceremony),
        Err(e) => Err(flow.fail(e, |f, m| error_modal(f, &next, m))),
    }
}

pub(crate) async fn sign_in(
    flow: Flow,
    Posted(form): Posted<AnswerForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    let kept = taken(&flow);
    let report = flow
        .auth()
        .passkeys
        .submit_passkey(&flow.state, &kept, &form.response, &flow.ctx)
        .await
        .map_err(|e| flow.fail(e, |f, m| error_modal(f, &next, m)))?;
    flow.after_login_step(report, &next, Back::SecondFactor)
}

pub(crate) async fn passwordless_options(
    flow: Flow,
    Posted(form): Posted<TokenForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    match flow.auth().passkeys.begin_passwordless() {
        Ok(ceremony) => begun(&flow, ceremony),
        Err(e) => Err(flow.fail(e, |f, m| crate::login::modal(f, &next, vec![m], ""))),
    }
}

pub(crate) async fn passwordless(
    flow: Flow,
    Posted(form): Posted<AnswerForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    let kept = taken(&flow);
    let report = flow
        .auth()
        .passkeys
        .submit_passwordless(&flow.state, &kept, &form.response, &flow.ctx)
        .await
        .map_err(|e| flow.fail(e, |f, m| crate::login::modal(f, &next, vec![m], "")))?;
    flow.after_login_step(report, &next, Back::Login(""))
}

/// A new name for a passkey.
#[derive(Deserialize)]
pub(crate) struct RenameForm {
    name: String,
}

pub(crate) async fn rename(
    flow: Flow,
    id: web::Path<i64>,
    Posted(form): Posted<RenameForm>,
) -> Result<HttpResponse, WebError> {
    let renamed = flow
        .auth()
        .passkeys
        .rename(&flow.state, *id, &form.name, &flow.ctx)
        .await;
    listed_after(&flow, renamed).await
}

/// Removing a passkey; `confirm` for the last second factor.
#[derive(Deserialize)]
pub(crate) struct RemoveForm {
    confirm: Option<String>,
}

pub(crate) async fn remove(
    flow: Flow,
    id: web::Path<i64>,
    Posted(form): Posted<RemoveForm>,
) -> Result<HttpResponse, WebError> {
    let confirmed = form.confirm.as_deref() == Some("yes");
    let removed = flow
        .auth()
        .passkeys
        .remove(&flow.state, *id, confirmed, &flow.ctx)
        .await;
    match removed {
        Ok(PasskeyRemoval::Removed {
            ended_this_session: true,
            ..
        }) => {
            // This session was established with it and has ended: sign in again.
            flow.session.purge();
            let to = flow.web.settings().logout_redirect.clone();
            Ok(flow.command(Command::Redirect(to.clone()), &to))
        }
        Ok(PasskeyRemoval::Removed { .. }) => list_modal_with(&flow, vec![], None).await,
        Ok(PasskeyRemoval::ConfirmLastFactor) => {
            let list = flow.auth().passkeys.list(&flow.state).await;
            let name = list
                .ok()
                .and_then(|l| l.into_iter().find(|k| k.id == *id))
                .map(|k| k.name)
                .unwrap_or_default();
            list_modal_with(&flow, vec![], Some(ConfirmRemoval { id: *id, name })).await
        }
        Err(e) => listed_after(&flow, Err(e)).await,
    }
}
