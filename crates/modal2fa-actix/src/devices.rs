//! Trusted devices: "trust this device?" right after a second factor, and the list of
//! the user's devices with removal.

use actix_web::{HttpResponse, web};
use modal2fa_core::machine::LoginState;
use modal2fa_core::services::CookieUpdate;
use serde::{Deserialize, Serialize};

use crate::error::WebError;
use crate::extract::{Flow, NextQuery, Posted, TokenForm};
use crate::render::Command;
use crate::respond::with_errors;
use crate::session::LOGIN_STATE;

/// "Trust this device?" with a name suggested from the browser.
pub(crate) fn trust_modal(flow: &Flow, next: &str, errors: Vec<String>) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("next", next);
    ctx.insert("suggested_name", &device_name(&flow.ctx.user_agent));
    flow.modal("confirm_remember", "Trust this device?", ctx)
}

/// "Firefox on Linux" from a user agent, for the default device name.
pub(crate) fn device_name(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map_or("Browser", |(_, name)| name);
    let os = [
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map_or("this device", |(_, name)| name);
    format!("{browser} on {os}")
}

pub(crate) async fn trust_get(flow: Flow, q: web::Query<NextQuery>) -> HttpResponse {
    trust_modal(&flow, &flow.next(q.next.as_deref()), vec![])
}

#[derive(Deserialize)]
pub(crate) struct TrustForm {
    name: Option<String>,
    trust: Option<String>,
    next: Option<String>,
}

pub(crate) async fn trust_post(
    flow: Flow,
    Posted(form): Posted<TrustForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    let go_on = flow.command(Command::Redirect(next.clone()), &next);
    if form.trust.as_deref() != Some("yes") {
        // Declined: the offer is taken all the same.
        keep_state(&flow, &flow.state.without_trust_offer())?;
        return Ok(go_on);
    }
    let name = form.name.unwrap_or_default();
    let presented = flow.req.cookie(flow.web.settings().device_cookie_name());
    let trusted = flow
        .auth()
        .trusted_devices
        .trust_this_device(
            &flow.state,
            &name,
            presented.as_ref().map(|c| c.value()),
            &flow.ctx,
        )
        .await;
    let trusted = trusted.map_err(|e| flow.fail(e, |f, m| trust_modal(f, &next, vec![m])))?;
    keep_state(&flow, &trusted.state)?;
    Ok(flow.with_device_cookie(go_on, &CookieUpdate::Set(trusted.cookie)))
}

/// Keeps `state` as the session's login state under the same id; no write when it is the
/// state the session holds already.
fn keep_state(flow: &Flow, state: &LoginState) -> Result<(), WebError> {
    if *state != flow.state {
        flow.session
            .insert(LOGIN_STATE, state)
            .map_err(WebError::unexpected)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct DeviceRow {
    id: String,
    name: String,
    last_used: String,
    ip: String,
    browser: String,
}

/// The list of the user's trusted devices.
/// A passkey as the list shows it.
#[derive(Serialize)]
struct PasskeyRow {
    rename_url: String,
    remove_url: String,
    name: String,
    added: String,
    last_used: String,
    /// Whether it is backed up (synced), may be, or is bound to one device.
    synced: &'static str,
}

/// The path of route `name` for the passkey `id`.
fn passkey_url(flow: &Flow, name: &str, id: i64) -> String {
    flow.path(name).replace("{id}", &id.to_string())
}

/// The passkey whose removal awaits the user's confirmation (it is their last factor).
pub(crate) struct ConfirmRemoval {
    pub(crate) id: i64,
    pub(crate) name: String,
}

/// [`ConfirmRemoval`] as the template shows it.
#[derive(Serialize)]
struct ConfirmRow {
    name: String,
    remove_url: String,
}

async fn list_modal(flow: &Flow, errors: Vec<String>) -> Result<HttpResponse, WebError> {
    list_modal_with(flow, errors, None).await
}

/// The list, with `errors`, and asking to confirm the removal of `confirm` when given.
pub(crate) async fn list_modal_with(
    flow: &Flow,
    errors: Vec<String>,
    confirm: Option<ConfirmRemoval>,
) -> Result<HttpResponse, WebError> {
    let list = flow.auth().trusted_devices.list(&flow.state).await;
    let here = flow.path("auth:user_devices");
    let list = match list {
        Ok(list) => list,
        Err(e) => {
            return Err(flow
                .recover(e, &here, |f, m| crate::login::modal(f, "/", vec![m], ""))
                .await);
        }
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let rows: Vec<DeviceRow> = list
        .into_iter()
        .map(|d| DeviceRow {
            last_used: d.last_used_at.format(&fmt).unwrap_or_default(),
            ip: d.last_ip.map(|i| i.to_string()).unwrap_or_default(),
            browser: device_name(&d.user_agent),
            id: d.id,
            name: d.name,
        })
        .collect();
    let passkeys = flow.auth().passkeys.enabled();
    let keys = match passkeys {
        true => flow.auth().passkeys.list(&flow.state).await,
        false => Ok(vec![]),
    };
    let keys: Vec<PasskeyRow> = match keys {
        Ok(keys) => keys,
        Err(e) => return Err(flow.fail(e, |f, m| crate::login::modal(f, "/", vec![m], ""))),
    }
    .into_iter()
    .map(|k| PasskeyRow {
        added: k.created_at.format(&fmt).unwrap_or_default(),
        last_used: k
            .last_used_at
            .and_then(|t| t.format(&fmt).ok())
            .unwrap_or_else(|| "never".to_owned()),
        synced: match (k.backup_state, k.backup_eligible) {
            (true, _) => "yes",
            (false, true) => "can be",
            (false, false) => "no, this device only",
        },
        rename_url: passkey_url(flow, "auth:passkey_rename", k.id),
        remove_url: passkey_url(flow, "auth:passkey_remove", k.id),
        name: k.name,
    })
    .collect();
    let mut ctx = with_errors(errors);
    ctx.insert("devices", &rows);
    ctx.insert("passkeys_enabled", &passkeys);
    ctx.insert("passkeys", &keys);
    let confirm = confirm.map(|c| ConfirmRow {
        remove_url: passkey_url(flow, "auth:passkey_remove", c.id),
        name: c.name,
    });
    ctx.insert("confirm_removal", &confirm);
    ctx.insert("suggested_name", &device_name(&flow.ctx.user_agent));
    Ok(flow.modal("user_devices", "Passkeys & trusted devices", ctx))
}

pub(crate) async fn list_get(flow: Flow) -> Result<HttpResponse, WebError> {
    list_modal(&flow, vec![]).await
}

pub(crate) async fn remove_post(
    flow: Flow,
    path: web::Path<String>,
    _: Posted<TokenForm>,
) -> Result<HttpResponse, WebError> {
    let removed = flow
        .auth()
        .trusted_devices
        .remove(&flow.state, &path, &flow.ctx)
        .await;
    listed_after(&flow, removed).await
}

/// The list after a change from it: with what went wrong when it failed, a step-up when
/// the session may not manage factors yet, or the opaque error for an infrastructure
/// failure.
pub(crate) async fn listed_after(
    flow: &Flow,
    changed: Result<(), modal2fa_core::ServiceError>,
) -> Result<HttpResponse, WebError> {
    let errors = match changed {
        Ok(()) => vec![],
        Err(modal2fa_core::ServiceError::StepUpRequired) => {
            return flow.step_up(&flow.path("auth:user_devices"), true).await;
        }
        Err(e) => match crate::copy::service_error(&e, flow.auth().now()) {
            Some(msg) => vec![msg],
            None => return Err(flow.fail(e, |_, _| HttpResponse::InternalServerError().finish())),
        },
    };
    list_modal(flow, errors).await
}
