//! The account modals: remove 2FA, change password, and signing out.

use actix_web::HttpResponse;
use modal2fa_core::ServiceError;
use modal2fa_core::machine::Refusal;
use modal2fa_core::services::CookieUpdate;
use serde::Deserialize;

use crate::copy;
use crate::error::WebError;
use crate::extract::{Flow, Posted, TokenForm};
use crate::render::Command;
use crate::respond::with_errors;

const REMOVE_2FA: &str = "Remove two-factor authentication";
const CHANGE_PASSWORD: &str = "Change password";

fn remove_2fa_modal(flow: &Flow, errors: Vec<String>) -> HttpResponse {
    flow.modal("remove_2fa", REMOVE_2FA, with_errors(errors))
}

fn password_modal(flow: &Flow, errors: Vec<String>) -> HttpResponse {
    flow.modal("change_password", CHANGE_PASSWORD, with_errors(errors))
}

/// `modal` for a signed-in session, the login modal otherwise.
fn signed_in_only(flow: &Flow, modal: fn(&Flow, Vec<String>) -> HttpResponse) -> HttpResponse {
    match flow.state.signed_in() {
        Some(_) => modal(flow, vec![]),
        None => crate::login::modal(flow, "/", vec![], ""),
    }
}

pub(crate) async fn remove_2fa_get(flow: Flow) -> HttpResponse {
    signed_in_only(&flow, remove_2fa_modal)
}

pub(crate) async fn remove_2fa_post(
    flow: Flow,
    _: Posted<TokenForm>,
) -> Result<HttpResponse, WebError> {
    let removed = flow.auth().factors.remove_all(&flow.state, &flow.ctx).await;
    if let Err(e) = removed {
        return Err(flow
            .recover(e, &flow.path("auth:remove_2fa"), remove_2fa_modal_msg)
            .await);
    }
    Ok(flow.command(Command::Reload, "/"))
}

fn remove_2fa_modal_msg(flow: &Flow, msg: String) -> HttpResponse {
    remove_2fa_modal(flow, vec![msg])
}

pub(crate) async fn password_get(flow: Flow) -> HttpResponse {
    signed_in_only(&flow, password_modal)
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    old_password: String,
    new_password: String,
    new_password2: String,
    sign_out_others: Option<String>,
}

pub(crate) async fn password_post(
    flow: Flow,
    Posted(form): Posted<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    if form.new_password != form.new_password2 {
        return Ok(password_modal(&flow, vec![copy::PASSWORDS_DIFFER.into()]));
    }
    let (old, new) = (form.old_password.into(), form.new_password.into());
    let others = form.sign_out_others.is_some();
    let changed = flow
        .auth()
        .account
        .change_password(&flow.state, &old, &new, others, &flow.ctx)
        .await;
    if let Err(ServiceError::Refused(Refusal::InvalidCredentials)) = changed {
        return Ok(password_modal(
            &flow,
            vec![copy::WRONG_CURRENT_PASSWORD.into()],
        ));
    }
    changed.map_err(|e| flow.fail(e, |f, m| password_modal(f, vec![m])))?;
    // The session survives under a new id (its row was ended with the others).
    flow.session.renew();
    Ok(flow.with_device_cookie(flow.command(Command::Close, "/"), &CookieUpdate::Clear))
}

pub(crate) async fn logout_post(
    flow: Flow,
    _: Posted<TokenForm>,
) -> Result<HttpResponse, WebError> {
    let to = flow.web.settings().logout_redirect.clone();
    let done = flow.auth().login.logout(&flow.state, &flow.ctx).await;
    done.map_err(|e| flow.fail(e, |f, m| crate::login::modal(f, "/", vec![m], "")))?;
    flow.session.purge();
    Ok(flow.command(Command::Redirect(to.clone()), &to))
}
