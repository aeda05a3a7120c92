//! Passkey ceremonies over HTTP: a POST begins one (answered with the options for
//! `navigator.credentials`, as JSON) and keeps its state in the server-side session; the
//! POST of the browser's answer takes the state out again to finish it, so a challenge
//! is used once, and only by the session that asked for it. Both are CSRF- and
//! origin-checked like every POST.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use modal2fa_core::services::Ceremony;
use serde::Deserialize;

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
