//! Links by email: "Forgot your password?" (the request modal), the reset link's "Set a
//! new password", and an invitation's "Welcome" (choose a first password, then continue
//! to 2FA as the policy requires).
//!
//! Opening a link runs no statement: the page checks only the token's format and the
//! expiry it claims, and the token is verified for real (signature, account, password
//! and last sign-in it was issued against) when the form is posted. The links point at
//! `WebSettings::public_url`, never at the `Host` a request named (a forged `Host` would
//! otherwise send a victim's reset link to the attacker's site).

use actix_web::{HttpResponse, web};
use modal2fa_core::machine::Refusal;
use modal2fa_core::{SecretString, ServiceError};
use serde::Deserialize;

use crate::copy;
use crate::error::WebError;
use crate::extract::{Flow, Posted};
use crate::respond::{Back, with_errors};

fn request_modal(flow: &Flow, email: &str, sent: bool, errors: Vec<String>) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("email", email);
    ctx.insert("sent", &sent);
    ctx.insert(
        "link_days",
        &flow.auth().settings().link_lifetime.whole_days().max(1),
    );
    flow.modal("password_reset", copy::FORGOT_PASSWORD, ctx)
}

/// The set-password modal of a link (`name`: `password_reset_confirm` or `invitation`),
/// or what is wrong with the link.
fn new_password_modal(
    flow: &Flow,
    name: &str,
    problem: Option<String>,
    errors: Vec<String>,
) -> HttpResponse {
    let mut ctx = with_errors(errors);
    let (title, intro) = match name {
        "invitation" => (copy::WELCOME, copy::WELCOME_INTRO),
        _ => (copy::SET_NEW_PASSWORD, copy::SET_NEW_PASSWORD_INTRO),
    };
    ctx.insert("action", flow.req.path());
    ctx.insert("intro", intro);
    ctx.insert("link_problem", &problem.unwrap_or_default());
    flow.modal(name, title, ctx)
}

pub(crate) async fn request_get(flow: Flow) -> HttpResponse {
    match flow.web.settings().public_url {
        Some(_) => request_modal(&flow, "", false, vec![]),
        None => request_modal(&flow, "", false, vec![copy::NO_EMAIL_LINKS.into()]),
    }
}

#[derive(Deserialize)]
pub(crate) struct RequestForm {
    email: String,
}

pub(crate) async fn request_post(
    flow: Flow,
    Posted(form): Posted<RequestForm>,
) -> Result<HttpResponse, WebError> {
    let Some(base) = flow.web.settings().link_base("auth:password_reset_confirm") else {
        return Ok(request_modal(
            &flow,
            "",
            false,
            vec![copy::NO_EMAIL_LINKS.into()],
        ));
    };
    let asked = flow
        .auth()
        .account
        .request_password_reset(&form.email, &base, &flow.ctx)
        .await;
    let typed: String = form.email.trim().chars().take(254).collect();
    asked.map_err(|e| flow.fail(e, |f, m| request_modal(f, &typed, false, vec![m])))?;
    Ok(request_modal(&flow, "", true, vec![]))
}

/// The link's page: the form, or why the link cannot work.
fn link_page(flow: &Flow, name: &str, token: &str) -> HttpResponse {
    match flow.auth().account.check_link_shape(token) {
        Ok(()) => new_password_modal(flow, name, None, vec![]),
        Err(e) => new_password_modal(
            flow,
            name,
            copy::service_error(&e, flow.auth().now()),
            vec![],
        ),
    }
}

pub(crate) async fn reset_get(flow: Flow, token: web::Path<String>) -> HttpResponse {
    link_page(&flow, "password_reset_confirm", &token)
}

pub(crate) async fn invitation_get(flow: Flow, token: web::Path<String>) -> HttpResponse {
    link_page(&flow, "invitation", &token)
}

#[derive(Deserialize)]
pub(crate) struct NewPasswordForm {
    new_password: String,
    new_password2: String,
}

/// The new password typed twice alike, or the form again saying they differ.
fn chosen(
    flow: &Flow,
    name: &str,
    form: NewPasswordForm,
) -> Result<SecretString, Box<HttpResponse>> {
    if form.new_password != form.new_password2 {
        let differ = vec![copy::PASSWORDS_DIFFER.into()];
        return Err(Box::new(new_password_modal(flow, name, None, differ)));
    }
    Ok(form.new_password.into())
}

/// A refusal of the link itself shows the "ask for a new link" page; any other mistake
/// (a weak password) re-renders the form with the message.
fn link_refused(flow: &Flow, name: &str, e: ServiceError) -> WebError {
    if let ServiceError::Refused(Refusal::Link(_)) = e {
        let msg = copy::service_error(&e, flow.auth().now());
        return WebError::shown(new_password_modal(flow, name, msg, vec![]));
    }
    flow.fail(e, |f, m| new_password_modal(f, name, None, vec![m]))
}

pub(crate) async fn reset_post(
    flow: Flow,
    token: web::Path<String>,
    Posted(form): Posted<NewPasswordForm>,
) -> Result<HttpResponse, WebError> {
    let name = "password_reset_confirm";
    let new = match chosen(&flow, name, form) {
        Ok(new) => new,
        Err(again) => return Ok(*again),
    };
    let done = flow
        .auth()
        .account
        .reset_password(&token, &new, &flow.ctx)
        .await;
    done.map_err(|e| link_refused(&flow, name, e))?;
    // Every session of the account ended; this browser starts afresh.
    flow.session.purge();
    let next = flow.web.settings().login_redirect.clone();
    Ok(crate::login::modal_with_notice(
        &flow,
        &next,
        copy::PASSWORD_SET,
    ))
}

pub(crate) async fn invitation_post(
    flow: Flow,
    token: web::Path<String>,
    Posted(form): Posted<NewPasswordForm>,
) -> Result<HttpResponse, WebError> {
    let name = "invitation";
    let new = match chosen(&flow, name, form) {
        Ok(new) => new,
        Err(again) => return Ok(*again),
    };
    let accepted = flow
        .auth()
        .account
        .accept_invitation(&flow.state, &token, &new, &flow.ctx)
        .await;
    let report = accepted.map_err(|e| link_refused(&flow, name, e))?;
    let next = flow.web.settings().login_redirect.clone();
    flow.after_login_step(report, &next, Back::Login(""))
}
