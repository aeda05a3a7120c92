//! The login modal: username and password (steps 1–9 of the sign-in flow).

use actix_web::{HttpResponse, web};
use modal2fa_core::SecretString;
use modal2fa_core::services::PasswordLogin;
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::{Flow, NextQuery, Posted};
use crate::respond::{Back, with_errors};

/// The login modal, with `errors` and the username typed so far.
pub(crate) fn modal(flow: &Flow, next: &str, errors: Vec<String>, username: &str) -> HttpResponse {
    render(flow, next, errors, username, "")
}

/// The login modal with a notice (what just happened: a new password was set, say).
pub(crate) fn modal_with_notice(flow: &Flow, next: &str, notice: &str) -> HttpResponse {
    render(flow, next, vec![], "", notice)
}

fn render(
    flow: &Flow,
    next: &str,
    errors: Vec<String>,
    username: &str,
    notice: &str,
) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("next", next);
    ctx.insert("username", username);
    ctx.insert("notice", notice);
    ctx.insert("passwordless", &flow.auth().passkeys.passwordless_offered());
    ctx.insert("password_reset", &flow.web.settings().public_url.is_some());
    flow.modal("login", "Sign in", ctx)
}

pub(crate) async fn get(flow: Flow, q: web::Query<NextQuery>) -> HttpResponse {
    modal(&flow, &flow.next(q.next.as_deref()), vec![], "")
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub(crate) async fn post(
    flow: Flow,
    Posted(form): Posted<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    let typed: String = form.username.trim().chars().take(150).collect();
    let device = flow.req.cookie(flow.web.settings().device_cookie_name());
    let login = PasswordLogin {
        username: form.username,
        password: form.password.into(),
        trusted_device_cookie: device.map(|c| SecretString::new(c.value())),
    };
    let report = flow
        .auth()
        .login
        .submit_password(&flow.state, login, &flow.ctx)
        .await;
    let report = report.map_err(|e| flow.fail(e, |f, m| modal(f, &next, vec![m], &typed)))?;
    flow.after_login_step(report, &next, Back::Login(&typed))
}
