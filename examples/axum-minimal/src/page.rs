//! The HTML: one small page per state, every form carrying the session's CSRF token.
//!
//! A page is rendered for the session id the browser holds *after* the response, so a
//! response that renews the id also carries forms with the new id's token.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use modal2fa_core::services::{LoginReport, TotpEnrolment};
use modal2fa_core::{LoginState, RequestContext, SecretString};

use crate::App;
use crate::copy::{self, Failure};
use crate::csrf::FIELD;
use crate::session::{Cookie, Session};

/// Stores what a sign-in step left, then answers its page.
pub async fn report(
    app: &App,
    session: Session,
    report: LoginReport,
    ctx: &RequestContext,
) -> Result<Response, Failure> {
    let cookie = session.persist(&app.auth, &report, ctx).await?;
    let (status, message) = copy::outcome(report.outcome, &report.state);
    Ok(respond(app, status, &message, &report.state, cookie))
}

/// The page for `state`, with `message` on top, and the cookie change.
pub fn respond(
    app: &App,
    status: StatusCode,
    message: &str,
    state: &LoginState,
    cookie: Cookie,
) -> Response {
    let forms = match cookie.id() {
        Some(id) => forms(state, &app.csrf.token(id)),
        // No session, no token: the way on is a fresh page.
        None => r#"<p><a href="/">Sign in again</a></p>"#.to_owned(),
    };
    let mut response = (status, Html(document(message, &forms))).into_response();
    if let Some(set) = cookie.header(&app.config) {
        response.headers_mut().insert(header::SET_COOKIE, set);
    }
    copy::no_store(&mut response);
    response
}

/// The key of a new authenticator app, and the form that confirms it.
pub fn enrolment(app: &App, session: &SecretString, e: &TotpEnrolment) -> Response {
    let token = app.csrf.token(session);
    let key = format!(
        r#"<p>Key: <code id="secret">{}</code></p><p><a href="{}">Open in an authenticator app</a></p>"#,
        escape(e.secret.expose()),
        escape(e.otpauth_url.expose()),
    );
    let confirm = form(
        "/totp/confirm",
        &token,
        &format!(
            r#"<input type="hidden" name="enrolment" value="{}">{CODE_INPUT}"#,
            escape(e.token.expose())
        ),
        "Confirm",
    );
    let mut response = Html(document(copy::SCAN_THE_KEY, &(key + &confirm))).into_response();
    copy::no_store(&mut response);
    response
}

const CODE_INPUT: &str = r#"<label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code" required></label>"#;

/// The forms a session in `state` may submit.
fn forms(state: &LoginState, token: &str) -> String {
    let add_app = || form("/totp/setup", token, "", "Add an authenticator app");
    let next = match state {
        LoginState::Anonymous => form(
            "/login",
            token,
            r#"<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>"#,
            "Sign in",
        ),
        LoginState::PendingSecondFactor(p) if p.setup_required => add_app(),
        LoginState::PendingSecondFactor(_) | LoginState::StepUp(_) => {
            form("/totp", token, CODE_INPUT, "Verify")
        }
        _ => add_app(),
    };
    if matches!(state, LoginState::Anonymous) {
        next
    } else {
        next + &form("/logout", token, "", "Sign out")
    }
}

/// A POST form with the CSRF token.
fn form(action: &str, token: &str, fields: &str, button: &str) -> String {
    format!(
        r#"<form method="post" action="{action}">
<input type="hidden" name="{FIELD}" value="{token}">
{fields}
<button>{button}</button>
</form>
"#
    )
}

fn document(message: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>axum-minimal</title>
<p id="message">{}</p>
{body}</html>
"#,
        escape(message)
    )
}

/// Text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
