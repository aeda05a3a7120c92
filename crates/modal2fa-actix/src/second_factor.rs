//! The 2FA modal: a code or a recovery code for a pending login or a step-up, the
//! first-factor choice for a user who has none, and cancelling.

use actix_web::{HttpResponse, web};
use modal2fa_core::machine::LoginState;
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::{Flow, NextQuery, Posted, TokenForm};
use crate::render::is_htmx;
use crate::respond::{Back, redirect, with_errors};

/// The 2FA modal for `state`; with `setup`, the choice of a first factor instead of a
/// code field.
pub(crate) fn modal(
    flow: &Flow,
    state: &LoginState,
    next: &str,
    errors: Vec<String>,
    setup: bool,
) -> HttpResponse {
    let setup = setup || matches!(state, LoginState::PendingSecondFactor(p) if p.setup_required);
    let mut ctx = with_errors(errors);
    ctx.insert("next", next);
    ctx.insert("setup", &setup);
    ctx.insert("step_up", &matches!(state, LoginState::StepUp(_)));
    let passkey = match state {
        LoginState::PendingSecondFactor(p) => p.passkey,
        LoginState::StepUp(s) => s.passkey,
        _ => false,
    };
    let passkeys = flow.auth().passkeys.enabled();
    ctx.insert("passkey", &(passkey && passkeys));
    ctx.insert("passkey_setup", &passkeys);
    ctx.insert(
        "suggested_name",
        &crate::devices::device_name(&flow.ctx.user_agent),
    );
    let title = if setup {
        "Set up two-factor authentication"
    } else {
        "Two-factor authentication"
    };
    flow.modal("auth_2fa", title, ctx)
}

pub(crate) async fn get(flow: Flow, q: web::Query<NextQuery>) -> Result<HttpResponse, WebError> {
    let next = flow.next(q.next.as_deref());
    match &flow.state {
        LoginState::PendingSecondFactor(_) | LoginState::StepUp(_) => {
            Ok(modal(&flow, &flow.state, &next, vec![], false))
        }
        LoginState::SignedIn(_) => signed_in_get(&flow, &next).await,
        _ => Ok(crate::login::modal(&flow, &next, vec![], "")),
    }
}

/// A signed-in session opening the 2FA modal: the set-up choice for a user without a
/// factor, else a step-up (or straight on, when the session already qualifies).
async fn signed_in_get(flow: &Flow, next: &str) -> Result<HttpResponse, WebError> {
    let rerender = |f: &Flow, m: String| crate::login::modal(f, next, vec![m], "");
    let auth = flow.auth();
    let has_factor = match auth.login.signed_in_user(&flow.state).await {
        Ok((user, _)) => auth.factors.has_factor(&user).await,
        Err(e) => Err(e),
    };
    match has_factor {
        Ok(false) => Ok(modal(flow, &flow.state, next, vec![], true)),
        Ok(true) => flow.step_up(next, false).await,
        Err(e) => Err(flow.recover(e, next, rerender).await),
    }
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    pub(crate) code: String,
    pub(crate) next: Option<String>,
}

pub(crate) async fn post(
    flow: Flow,
    Posted(form): Posted<CodeForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    let login = &flow.auth().login;
    let report = if form.code.chars().any(|c| c.is_ascii_alphabetic()) {
        login
            .submit_recovery_code(&flow.state, &form.code, &flow.ctx)
            .await
    } else {
        login.submit_totp(&flow.state, &form.code, &flow.ctx).await
    };
    let report =
        report.map_err(|e| flow.fail(e, |f, m| modal(f, &f.state, &next, vec![m], false)))?;
    flow.after_login_step(report, &next, Back::SecondFactor)
}

pub(crate) async fn cancel(
    flow: Flow,
    Posted(form): Posted<TokenForm>,
) -> Result<HttpResponse, WebError> {
    let report = flow.auth().login.cancel(&flow.state, &flow.ctx).await;
    let report =
        report.map_err(|e| flow.fail(e, |f, m| crate::login::modal(f, "/", vec![m], "")))?;
    flow.apply(&report)?;
    // The modal is already closing on the client: no command, or it would close the
    // modal underneath.
    if is_htmx(&flow.req) {
        return Ok(HttpResponse::NoContent().finish());
    }
    Ok(redirect(&crate::render::safe_next(
        form.next.as_deref(),
        "/",
    )))
}
