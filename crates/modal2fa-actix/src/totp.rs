//! Setting up an authenticator app: the QR code and secret, then the confirming code —
//! finishing a set-up login, adding a first factor, or changing the app.

use actix_web::{HttpResponse, web};
use modal2fa_core::machine::LoginState;
use modal2fa_core::services::TotpEnrolment;

use crate::copy;
use crate::error::WebError;
use crate::extract::{Flow, NextQuery, Posted};
use crate::qr;
use crate::render::Command;
use crate::respond::{Back, with_errors};
use crate::second_factor::CodeForm;

/// The session entry holding the device being enrolled.
const ENROLMENT: &str = "modal2fa.totp_device";
const TITLE: &str = "Set up an authenticator app";

fn modal(
    flow: &Flow,
    next: &str,
    enrolment: Option<&TotpEnrolment>,
    errors: Vec<String>,
) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("next", next);
    match enrolment {
        Some(e) => {
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
        None => {
            // A retry: the app already holds the secret; show the code field again.
            ctx.insert("secret", "");
            ctx.insert("qr_svg", "");
            ctx.insert("retry", &true);
        }
    }
    flow.modal("totp_setup", TITLE, ctx)
}

pub(crate) async fn get(flow: Flow, q: web::Query<NextQuery>) -> Result<HttpResponse, WebError> {
    let next = flow.next(q.next.as_deref());
    let enrolment = match flow.auth().factors.begin_totp(&flow.state).await {
        Ok(e) => e,
        Err(e) => {
            let to = format!(
                "{}?next={}",
                flow.path("auth:totp_setup"),
                crate::respond::encode(&next)
            );
            return Err(flow
                .recover(e, &to, |f, m| crate::login::modal(f, &next, vec![m], ""))
                .await);
        }
    };
    flow.session
        .insert(ENROLMENT, enrolment.device_id)
        .map_err(WebError::unexpected)?;
    Ok(modal(&flow, &next, Some(&enrolment), vec![]))
}

pub(crate) async fn post(
    flow: Flow,
    Posted(form): Posted<CodeForm>,
) -> Result<HttpResponse, WebError> {
    let next = flow.next(form.next.as_deref());
    let Some(device) = flow.session.get::<i64>(ENROLMENT).ok().flatten() else {
        return Ok(crate::login::modal(
            &flow,
            &next,
            vec![copy::START_SETUP_AGAIN.into()],
            "",
        ));
    };
    let retry = |f: &Flow, m: String| modal(f, &next, None, vec![m]);
    if let LoginState::PendingSecondFactor(_) = flow.state {
        let report = flow
            .auth()
            .login
            .complete_setup_with_totp(&flow.state, device, &form.code, &flow.ctx)
            .await
            .map_err(|e| flow.fail(e, retry))?;
        if matches!(report.outcome, modal2fa_core::Outcome::Refused(_)) {
            let msg = crate::respond::refusal_text(&flow, &report);
            return Ok(modal(&flow, &next, None, vec![msg]));
        }
        flow.session.remove(ENROLMENT);
        return flow.after_login_step(report, &next, Back::SecondFactor);
    }
    let confirmed = flow
        .auth()
        .factors
        .confirm_totp(&flow.state, device, &form.code, &flow.ctx)
        .await;
    if let Err(e) = confirmed {
        return Err(flow.recover(e, &flow.path("auth:totp_setup"), retry).await);
    }
    flow.session.remove(ENROLMENT);
    Ok(flow.command(Command::Reload, &next))
}
