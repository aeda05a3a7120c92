//! The route handlers: extract the form, call a service, map the outcome to a modal, a
//! command or a redirect.

use std::collections::HashMap;

use actix_session::{Session, SessionExt};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, Route, web};
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, RequestContext};
use modal2fa_core::services::{CookieUpdate, LoginReport, PasswordLogin};
use modal2fa_core::{SecretString, ServiceError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::render::{Command, command, is_htmx, opaque_error, safe_next};
use crate::session::{CLIENT_IP, CREATED, LOGIN_STATE, USER_AGENT};
use crate::{Modal2faWeb, qr};

type Web = web::Data<Modal2faWeb>;

/// The routes of a named resource.
pub(crate) fn routes(name: &str) -> Vec<Route> {
    match name {
        "auth:login" => vec![web::get().to(login_get), web::post().to(login_post)],
        "auth:auth_2fa" => vec![
            web::get().to(two_factor_get),
            web::post().to(two_factor_post),
        ],
        "auth:auth_2fa_cancel" => vec![web::post().to(two_factor_cancel)],
        "auth:totp_setup" => vec![web::get().to(totp_get), web::post().to(totp_post)],
        "auth:confirm_remember" => vec![web::get().to(trust_get), web::post().to(trust_post)],
        "auth:user_devices" => vec![web::get().to(devices_get)],
        "auth:remove_device" => vec![web::post().to(device_remove)],
        "auth:remove_2fa" => vec![
            web::get().to(remove_2fa_get),
            web::post().to(remove_2fa_post),
        ],
        "auth:change_password" => vec![web::get().to(password_get), web::post().to(password_post)],
        "auth:logout" => vec![web::post().to(logout_post)],
        "auth:user_menu" => vec![web::get().to(menu_get)],
        "auth:static" => vec![web::get().to(static_get)],
        _ => vec![],
    }
}

// ------------------------------------------------------------------ shared plumbing

fn state(session: &Session) -> LoginState {
    session
        .get::<LoginState>(LOGIN_STATE)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub(crate) fn context(web: &Modal2faWeb, req: &HttpRequest) -> RequestContext {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let xff: Vec<&[u8]> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.as_bytes())
        .collect();
    let ip = web.auth().settings().client_ip.resolve(peer, &xff);
    let ua = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    RequestContext::new(ip, ua, req.path())
}

fn now(web: &Modal2faWeb) -> OffsetDateTime {
    web.auth().ports().clock.now()
}

/// Persists what a login step left: the new state, a renewed id at privilege changes,
/// nothing at all for an anonymous visitor.
fn apply(
    session: &Session,
    report: &LoginReport,
    ctx: &RequestContext,
    web: &Modal2faWeb,
) -> Result<(), actix_web::Error> {
    if report.end_session || report.state == LoginState::Anonymous {
        if session
            .get::<LoginState>(LOGIN_STATE)
            .ok()
            .flatten()
            .is_some()
        {
            session.purge();
        }
        return Ok(());
    }
    session.insert(LOGIN_STATE, &report.state)?;
    session.insert(CLIENT_IP, ctx.ip.to_string())?;
    session.insert(USER_AGENT, &ctx.user_agent)?;
    if report.renew_session {
        session.insert(CREATED, now(web).unix_timestamp())?;
        session.renew();
    }
    Ok(())
}

fn device_cookie(web: &Modal2faWeb, update: &CookieUpdate) -> Option<Cookie<'static>> {
    let s = web.settings();
    let base = |value: String| {
        Cookie::build(s.device_cookie_name(), value)
            .path("/")
            .http_only(true)
            .secure(s.secure_cookies)
            .same_site(SameSite::Lax)
    };
    match update {
        CookieUpdate::Keep => None,
        CookieUpdate::Set(v) => Some(
            base(v.expose().to_owned())
                .max_age(actix_web::cookie::time::Duration::seconds(
                    web.auth()
                        .settings()
                        .trusted_device_lifetime
                        .whole_seconds(),
                ))
                .finish(),
        ),
        CookieUpdate::Clear => {
            let mut c = base(String::new()).finish();
            c.make_removal();
            Some(c)
        }
    }
}

fn refusal_message(r: Refusal, now: OffsetDateTime) -> String {
    match r {
        Refusal::InvalidCredentials => "Please enter a correct username and password.".into(),
        Refusal::Locked { until } => {
            let secs = (until - now).whole_seconds().max(1);
            format!("Too many failed attempts. Try again in {secs} seconds.")
        }
        Refusal::PasswordLoginNotAllowed => "This account signs in with Microsoft.".into(),
        Refusal::InvalidCode => "The code is incorrect.".into(),
        Refusal::CodeReused => "This code has already been used. Wait for the next one.".into(),
        Refusal::TooManyAttempts => "Too many wrong codes. Please sign in again.".into(),
        Refusal::Expired => "The sign-in took too long. Please sign in again.".into(),
        Refusal::NoPendingLogin => "Please sign in first.".into(),
        Refusal::NotAllowed => "That is not possible now.".into(),
        Refusal::Microsoft(_) => "Microsoft sign-in was refused.".into(),
    }
}

fn error_message(e: &ServiceError) -> Option<String> {
    match e {
        ServiceError::Unexpected(_) => None,
        ServiceError::Locked { .. } => Some("Too many failed attempts. Try again later.".into()),
        other => Some(other.to_string()),
    }
}

#[derive(Serialize)]
struct MenuUser {
    name: String,
    method: AuthMethod,
    has_totp: bool,
    can_manage_users: bool,
    can_manage_security: bool,
}

/// Renders a modal: its inner content for htmx, a full page otherwise.
fn modal(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    name: &str,
    title: &str,
    mut ctx: tera::Context,
) -> HttpResponse {
    let s = web.settings();
    let st = state(session);
    let appearance = s.appearance.get(name).cloned().unwrap_or_default();
    ctx.insert(
        "csrf_token",
        &web.0
            .csrf
            .token(now(web), st.signed_in().map(|x| x.user_id)),
    );
    ctx.insert("modal_name", name);
    ctx.insert("title", appearance.title.as_deref().unwrap_or(title));
    let default_size = if name == "user_devices" { "lg" } else { "" };
    ctx.insert("size", appearance.size.as_deref().unwrap_or(default_size));
    ctx.insert("classes", appearance.classes.as_deref().unwrap_or(""));
    ctx.insert("urls", &urls(web));
    ctx.insert("site_name", &s.site_name);
    ctx.insert("htmx", &is_htmx(req));
    if ctx.get("errors").is_none() {
        ctx.insert("errors", &Vec::<String>::new());
    }
    let next = ctx
        .get("next")
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    ctx.insert("next_q", &encode(&next));
    ctx.insert("next", &next);
    ctx.insert(
        "static_base",
        &format!("{}/static/", s.mount.trim_end_matches('/')),
    );
    let inner = match web.0.render.render(&format!("modals/{name}.html"), &ctx) {
        Ok(html) => html,
        Err(e) => return opaque_error(&e),
    };
    let body = if is_htmx(req) {
        inner
    } else {
        ctx.insert("modal_html", &inner);
        match web.0.render.render("page.html", &ctx) {
            Ok(html) => html,
            Err(e) => return opaque_error(&e),
        }
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

fn urls(web: &Modal2faWeb) -> HashMap<&'static str, String> {
    let s = web.settings();
    crate::ROUTES
        .iter()
        .map(|(name, _)| (name.trim_start_matches("auth:"), s.path(name)))
        .collect()
}

fn with_errors(errors: Vec<String>) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("errors", &errors);
    ctx
}

/// Rejects a POST that is cross-site or lacks a valid token.
fn check_post(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    token: Option<&str>,
) -> Option<HttpResponse> {
    let header = req
        .headers()
        .get("X-CSRF-Token")
        .and_then(|v| v.to_str().ok());
    let user = state(session).signed_in().map(|s| s.user_id);
    let ok = crate::csrf::same_origin(req)
        && token
            .or(header)
            .is_some_and(|t| web.0.csrf.verify(t, now(web), user));
    (!ok).then(|| {
        HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("The form has expired or did not come from this site. Reload the page and try again.")
    })
}

/// Maps a login-step report to the next screen.
#[allow(clippy::too_many_arguments)]
fn after_login_step(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    report: LoginReport,
    ctx: &RequestContext,
    next: &str,
    back_to: &str,
    username: &str,
) -> HttpResponse {
    if let Err(e) = apply(session, &report, ctx, web) {
        return opaque_error(&e);
    }
    let cookie = device_cookie(web, &report.trusted_device_cookie);
    let mut resp = match report.outcome {
        Outcome::SignedIn { .. } if report.offer_trust => {
            let to = format!(
                "{}?next={}",
                web.settings().path("auth:confirm_remember"),
                encode(next)
            );
            if is_htmx(req) {
                trust_modal(web, req, session, next, None)
            } else {
                redirect(&to)
            }
        }
        Outcome::SignedIn { .. } => command(req, Command::Redirect(next.to_owned()), next),
        Outcome::SecondFactorRequired { .. } => {
            let to = format!(
                "{}?next={}",
                web.settings().path("auth:auth_2fa"),
                encode(next)
            );
            if is_htmx(req) {
                two_factor_modal(web, req, session, next, vec![])
            } else {
                redirect(&to)
            }
        }
        Outcome::Refused(r) => {
            let msg = refusal_message(r, now(web));
            match (back_to, &report.state) {
                ("login", _) | (_, LoginState::Anonymous) => {
                    login_modal_for(web, req, session, next, vec![msg], username)
                }
                _ => two_factor_modal(web, req, session, next, vec![msg]),
            }
        }
        Outcome::Cancelled
        | Outcome::LoggedOut
        | Outcome::Unchanged
        | Outcome::AlreadySatisfied => command(req, Command::Close, next),
    };
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    resp
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to.to_owned()))
        .finish()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

// ------------------------------------------------------------------ login

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    csrf_token: Option<String>,
    next: Option<String>,
}

fn login_modal(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    next: &str,
    errors: Vec<String>,
) -> HttpResponse {
    login_modal_for(web, req, session, next, errors, "")
}

fn login_modal_for(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    next: &str,
    errors: Vec<String>,
    username: &str,
) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("next", next);
    ctx.insert("username", username);
    modal(web, req, session, "login", "Sign in", ctx)
}

async fn login_get(web: Web, req: HttpRequest, q: web::Query<NextQuery>) -> HttpResponse {
    let session = req.get_session();
    let next = safe_next(q.next.as_deref(), &web.settings().login_redirect);
    login_modal(&web, &req, &session, &next, vec![])
}

async fn login_post(web: Web, req: HttpRequest, form: web::Form<LoginForm>) -> HttpResponse {
    let session = req.get_session();
    let form = form.into_inner();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    let next = safe_next(form.next.as_deref(), &web.settings().login_redirect);
    let ctx = context(&web, &req);
    let cookie = req
        .cookie(web.settings().device_cookie_name())
        .map(|c| SecretString::new(c.value()));
    let typed = form.username.trim().chars().take(150).collect::<String>();
    let login = PasswordLogin {
        username: form.username,
        password: form.password.into(),
        trusted_device_cookie: cookie,
    };
    match web
        .auth()
        .login
        .submit_password(&state(&session), login, &ctx)
        .await
    {
        Ok(report) => after_login_step(&web, &req, &session, report, &ctx, &next, "login", &typed),
        Err(e) => match error_message(&e) {
            Some(msg) => login_modal_for(&web, &req, &session, &next, vec![msg], &typed),
            None => opaque_error(&e),
        },
    }
}

// ------------------------------------------------------------------ second factor

fn two_factor_modal(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    next: &str,
    errors: Vec<String>,
) -> HttpResponse {
    let setup =
        matches!(state(session), LoginState::PendingSecondFactor(ref p) if p.setup_required);
    two_factor_modal_with(web, req, session, next, errors, setup)
}

/// The 2FA modal; with `setup`, the choice of a first factor instead of a code field.
fn two_factor_modal_with(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    next: &str,
    errors: Vec<String>,
    setup: bool,
) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("next", next);
    ctx.insert("setup", &setup);
    ctx.insert("step_up", &matches!(state(session), LoginState::StepUp(_)));
    modal(
        web,
        req,
        session,
        "auth_2fa",
        if setup {
            "Set up two-factor authentication"
        } else {
            "Two-factor authentication"
        },
        ctx,
    )
}

async fn two_factor_get(web: Web, req: HttpRequest, q: web::Query<NextQuery>) -> HttpResponse {
    let session = req.get_session();
    let next = safe_next(q.next.as_deref(), &web.settings().login_redirect);
    match state(&session) {
        LoginState::PendingSecondFactor(_) | LoginState::StepUp(_) => {
            two_factor_modal(&web, &req, &session, &next, vec![])
        }
        LoginState::SignedIn(s) => {
            // A user with no factor yet cannot step up: offer the set-up instead.
            let user = web
                .auth()
                .ports()
                .users
                .find_by_id(s.user_id)
                .await
                .ok()
                .flatten();
            if let Some(user) = user
                && !web.auth().login.has_factor(&user).await.unwrap_or(true)
            {
                return two_factor_modal_with(&web, &req, &session, &next, vec![], true);
            }
            // Step-up: a session that may not manage factors proves one first.
            let ctx = context(&web, &req);
            match web.auth().login.begin_step_up(&state(&session), &ctx).await {
                Ok(report) if report.outcome == Outcome::AlreadySatisfied => {
                    command(&req, Command::Redirect(next.clone()), &next)
                }
                Ok(report) => {
                    if let Err(e) = apply(&session, &report, &ctx, &web) {
                        return opaque_error(&e);
                    }
                    two_factor_modal(&web, &req, &session, &next, vec![])
                }
                Err(e) => opaque_error(&e),
            }
        }
        LoginState::Anonymous => login_modal(&web, &req, &session, &next, vec![]),
    }
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    code: String,
    csrf_token: Option<String>,
    next: Option<String>,
}

async fn two_factor_post(web: Web, req: HttpRequest, form: web::Form<CodeForm>) -> HttpResponse {
    let session = req.get_session();
    let form = form.into_inner();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    let next = safe_next(form.next.as_deref(), &web.settings().login_redirect);
    let ctx = context(&web, &req);
    let st = state(&session);
    let result = if form.code.chars().any(|c| c.is_ascii_alphabetic()) {
        web.auth()
            .login
            .submit_recovery_code(&st, &form.code, &ctx)
            .await
    } else {
        web.auth().login.submit_totp(&st, &form.code, &ctx).await
    };
    match result {
        Ok(report) => after_login_step(&web, &req, &session, report, &ctx, &next, "auth_2fa", ""),
        Err(e) => match error_message(&e) {
            Some(msg) => two_factor_modal(&web, &req, &session, &next, vec![msg]),
            None => opaque_error(&e),
        },
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf_token: Option<String>,
    next: Option<String>,
}

async fn two_factor_cancel(web: Web, req: HttpRequest, form: web::Form<TokenForm>) -> HttpResponse {
    let session = req.get_session();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    let ctx = context(&web, &req);
    match web.auth().login.cancel(&state(&session), &ctx).await {
        Ok(report) => {
            if let Err(e) = apply(&session, &report, &ctx, &web) {
                return opaque_error(&e);
            }
            // The modal is already closing on the client: no command, or it would close
            // the modal underneath.
            if is_htmx(&req) {
                HttpResponse::NoContent().finish()
            } else {
                let next = safe_next(form.next.as_deref(), "/");
                redirect(&next)
            }
        }
        Err(e) => opaque_error(&e),
    }
}

// ------------------------------------------------------------------ TOTP setup

const ENROLMENT: &str = "modal2fa.totp_device";

async fn totp_get(web: Web, req: HttpRequest, q: web::Query<NextQuery>) -> HttpResponse {
    let session = req.get_session();
    let next = safe_next(q.next.as_deref(), &web.settings().login_redirect);
    match web.auth().factors.begin_totp(&state(&session)).await {
        Ok(e) => {
            if let Err(err) = session.insert(ENROLMENT, e.device_id) {
                return opaque_error(&err);
            }
            totp_modal(
                &web,
                &req,
                &session,
                &next,
                e.secret.expose(),
                e.otpauth_url.expose(),
                vec![],
            )
        }
        Err(ServiceError::StepUpRequired) => two_factor_get(web, req, q).await,
        Err(ServiceError::NotSignedIn) => login_modal(&web, &req, &session, &next, vec![]),
        Err(e) => match error_message(&e) {
            Some(msg) => login_modal(&web, &req, &session, &next, vec![msg]),
            None => opaque_error(&e),
        },
    }
}

fn totp_modal(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    next: &str,
    secret: &str,
    url: &str,
    errors: Vec<String>,
) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("next", next);
    ctx.insert(
        "secret",
        &secret
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    );
    ctx.insert("qr_svg", &qr::svg(url).unwrap_or_default());
    modal(
        web,
        req,
        session,
        "totp_setup",
        "Set up an authenticator app",
        ctx,
    )
}

async fn totp_post(web: Web, req: HttpRequest, form: web::Form<CodeForm>) -> HttpResponse {
    let session = req.get_session();
    let form = form.into_inner();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    let next = safe_next(form.next.as_deref(), &web.settings().login_redirect);
    let ctx = context(&web, &req);
    let Some(device) = session.get::<i64>(ENROLMENT).ok().flatten() else {
        return login_modal(
            &web,
            &req,
            &session,
            &next,
            vec!["Start the set-up again.".into()],
        );
    };
    let st = state(&session);
    match web
        .auth()
        .factors
        .confirm_totp(&st, device, &form.code, &ctx)
        .await
    {
        Ok(report) => {
            session.remove(ENROLMENT);
            match report {
                Some(report) => {
                    after_login_step(&web, &req, &session, report, &ctx, &next, "auth_2fa", "")
                }
                None => command(&req, Command::Reload, &next),
            }
        }
        Err(e) => match error_message(&e) {
            // Show the same secret again: re-open the enrolment from the stored device.
            Some(msg) => {
                let mut c = with_errors(vec![msg]);
                c.insert("next", &next);
                c.insert("secret", "");
                c.insert("qr_svg", "");
                c.insert("retry", &true);
                modal(
                    &web,
                    &req,
                    &session,
                    "totp_setup",
                    "Set up an authenticator app",
                    c,
                )
            }
            None => opaque_error(&e),
        },
    }
}

// ------------------------------------------------------------------ trusted devices

fn trust_modal(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    next: &str,
    errors: Option<Vec<String>>,
) -> HttpResponse {
    let mut ctx = with_errors(errors.unwrap_or_default());
    ctx.insert("next", next);
    let ua = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ctx.insert("suggested_name", &device_name(ua));
    modal(
        web,
        req,
        session,
        "confirm_remember",
        "Trust this device?",
        ctx,
    )
}

/// "Firefox on Linux" from a user agent, for the default device name.
fn device_name(ua: &str) -> String {
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/"]
        .iter()
        .find(|b| ua.contains(*b))
        .map(|b| match *b {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            _ => "Safari",
        })
        .unwrap_or("Browser");
    let os = ["Windows", "Mac OS", "Android", "iPhone", "Linux"]
        .iter()
        .find(|o| ua.contains(*o))
        .map(|o| if *o == "Mac OS" { "macOS" } else { o })
        .unwrap_or("this device");
    format!("{browser} on {os}")
}

async fn trust_get(web: Web, req: HttpRequest, q: web::Query<NextQuery>) -> HttpResponse {
    let session = req.get_session();
    let next = safe_next(q.next.as_deref(), &web.settings().login_redirect);
    trust_modal(&web, &req, &session, &next, None)
}

#[derive(Deserialize)]
pub(crate) struct TrustForm {
    name: Option<String>,
    trust: Option<String>,
    csrf_token: Option<String>,
    next: Option<String>,
}

async fn trust_post(web: Web, req: HttpRequest, form: web::Form<TrustForm>) -> HttpResponse {
    let session = req.get_session();
    let form = form.into_inner();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    let next = safe_next(form.next.as_deref(), &web.settings().login_redirect);
    if form.trust.as_deref() != Some("yes") {
        return command(&req, Command::Redirect(next.clone()), &next);
    }
    let ctx = context(&web, &req);
    let name = form.name.unwrap_or_default();
    match web
        .auth()
        .trusted_devices
        .trust_this_device(&state(&session), &name, &ctx)
        .await
    {
        Ok(cookie) => {
            let mut resp = command(&req, Command::Redirect(next.clone()), &next);
            if let Some(c) = device_cookie(&web, &CookieUpdate::Set(cookie)) {
                let _ = resp.add_cookie(&c);
            }
            resp
        }
        Err(e) => match error_message(&e) {
            Some(msg) => trust_modal(&web, &req, &session, &next, Some(vec![msg])),
            None => opaque_error(&e),
        },
    }
}

#[derive(Serialize)]
struct DeviceRow {
    id: String,
    name: String,
    last_used: String,
    ip: String,
    browser: String,
}

async fn devices_get(web: Web, req: HttpRequest) -> HttpResponse {
    let session = req.get_session();
    devices_modal(&web, &req, &session, vec![]).await
}

async fn devices_modal(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    errors: Vec<String>,
) -> HttpResponse {
    match web.auth().trusted_devices.list(&state(session)).await {
        Ok(list) => {
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
            let mut ctx = with_errors(errors);
            ctx.insert("devices", &rows);
            modal(
                web,
                req,
                session,
                "user_devices",
                "Passkeys & trusted devices",
                ctx,
            )
        }
        Err(ServiceError::NotSignedIn) => login_modal(web, req, session, "/", vec![]),
        Err(e) => opaque_error(&e),
    }
}

async fn device_remove(
    web: Web,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let session = req.get_session();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    let ctx = context(&web, &req);
    match web
        .auth()
        .trusted_devices
        .remove(&state(&session), &path, &ctx)
        .await
    {
        Ok(()) => devices_modal(&web, &req, &session, vec![]).await,
        Err(ServiceError::StepUpRequired) => {
            let next = web.settings().path("auth:user_devices");
            step_up(&web, &req, &session, &next).await
        }
        Err(e) => match error_message(&e) {
            Some(msg) => devices_modal(&web, &req, &session, vec![msg]).await,
            None => opaque_error(&e),
        },
    }
}

async fn step_up(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    next: &str,
) -> HttpResponse {
    let ctx = context(web, req);
    match web.auth().login.begin_step_up(&state(session), &ctx).await {
        Ok(report) => {
            if let Err(e) = apply(session, &report, &ctx, web) {
                return opaque_error(&e);
            }
            two_factor_modal(
                web,
                req,
                session,
                next,
                vec!["Confirm with your authenticator app first.".into()],
            )
        }
        Err(e) => opaque_error(&e),
    }
}

// ------------------------------------------------------------------ remove 2FA, password, logout

async fn remove_2fa_get(web: Web, req: HttpRequest) -> HttpResponse {
    let session = req.get_session();
    if state(&session).signed_in().is_none() {
        return login_modal(&web, &req, &session, "/", vec![]);
    }
    modal(
        &web,
        &req,
        &session,
        "remove_2fa",
        "Remove two-factor authentication",
        with_errors(vec![]),
    )
}

async fn remove_2fa_post(web: Web, req: HttpRequest, form: web::Form<TokenForm>) -> HttpResponse {
    let session = req.get_session();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    let ctx = context(&web, &req);
    match web.auth().factors.remove_all(&state(&session), &ctx).await {
        Ok(()) => command(&req, Command::Reload, "/"),
        Err(ServiceError::StepUpRequired) => {
            let next = web.settings().path("auth:remove_2fa");
            step_up(&web, &req, &session, &next).await
        }
        Err(e) => match error_message(&e) {
            Some(msg) => modal(
                &web,
                &req,
                &session,
                "remove_2fa",
                "Remove two-factor authentication",
                with_errors(vec![msg]),
            ),
            None => opaque_error(&e),
        },
    }
}

async fn password_get(web: Web, req: HttpRequest) -> HttpResponse {
    let session = req.get_session();
    if state(&session).signed_in().is_none() {
        return login_modal(&web, &req, &session, "/", vec![]);
    }
    modal(
        &web,
        &req,
        &session,
        "change_password",
        "Change password",
        with_errors(vec![]),
    )
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    old_password: String,
    new_password: String,
    new_password2: String,
    sign_out_others: Option<String>,
    csrf_token: Option<String>,
}

async fn password_post(web: Web, req: HttpRequest, form: web::Form<PasswordForm>) -> HttpResponse {
    let session = req.get_session();
    let form = form.into_inner();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    if form.new_password != form.new_password2 {
        return modal(
            &web,
            &req,
            &session,
            "change_password",
            "Change password",
            with_errors(vec!["The two new passwords differ.".into()]),
        );
    }
    let ctx = context(&web, &req);
    let st = state(&session);
    let others = form.sign_out_others.is_some();
    match web
        .auth()
        .account
        .change_password(
            &st,
            &form.old_password.into(),
            &form.new_password.into(),
            others,
            &ctx,
        )
        .await
    {
        Ok(_) => {
            // The session survives under a new id (its row was ended with the others).
            session.renew();
            let mut resp = command(&req, Command::Close, "/");
            if let Some(c) = device_cookie(&web, &CookieUpdate::Clear) {
                let _ = resp.add_cookie(&c);
            }
            resp
        }
        Err(e) => match error_message(&e) {
            Some(msg) => modal(
                &web,
                &req,
                &session,
                "change_password",
                "Change password",
                with_errors(vec![msg]),
            ),
            None => opaque_error(&e),
        },
    }
}

async fn logout_post(web: Web, req: HttpRequest, form: web::Form<TokenForm>) -> HttpResponse {
    let session = req.get_session();
    if let Some(r) = check_post(&web, &req, &session, form.csrf_token.as_deref()) {
        return r;
    }
    let ctx = context(&web, &req);
    let to = web.settings().logout_redirect.clone();
    match web.auth().login.logout(&state(&session), &ctx).await {
        Ok(_) => {
            session.purge();
            command(&req, Command::Redirect(to.clone()), &to)
        }
        Err(e) => opaque_error(&e),
    }
}

// ------------------------------------------------------------------ menu and static files

pub(crate) async fn menu_html(web: &Modal2faWeb, session: &Session) -> String {
    let st = state(session);
    let mut ctx = tera::Context::new();
    ctx.insert("urls", &urls(web));
    ctx.insert(
        "csrf_token",
        &web.0
            .csrf
            .token(now(web), st.signed_in().map(|s| s.user_id)),
    );
    let user: Option<MenuUser> = match st.signed_in() {
        Some(s) => {
            let auth = web.auth();
            match auth
                .ports()
                .users
                .find_by_id(s.user_id)
                .await
                .ok()
                .flatten()
            {
                Some(user) => Some(MenuUser {
                    name: user.display_name(),
                    method: s.method,
                    has_totp: auth
                        .ports()
                        .factors
                        .totp_devices(user.id)
                        .await
                        .ok()
                        .is_some_and(|d| d.iter().any(|d| d.confirmed)),
                    can_manage_users: auth.policy().can_manage_users(&user),
                    can_manage_security: auth.policy().can_manage_security(&user),
                }),
                None => None,
            }
        }
        None => None,
    };
    ctx.insert("user", &user);
    web.0
        .render
        .render("partials/user_menu.html", &ctx)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "rendering the user menu failed");
            String::new()
        })
}

pub(crate) async fn page(
    web: &Modal2faWeb,
    session: &Session,
    template: &str,
    title: &str,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> HttpResponse {
    let st = state(session);
    let mut ctx = tera::Context::new();
    for (k, v) in extra {
        ctx.insert(k.clone(), v);
    }
    ctx.insert(
        "csrf_token",
        &web.0
            .csrf
            .token(now(web), st.signed_in().map(|s| s.user_id)),
    );
    ctx.insert("urls", &urls(web));
    ctx.insert("title", title);
    ctx.insert("site_name", &web.settings().site_name);
    ctx.insert(
        "static_base",
        &format!("{}/static/", web.settings().mount.trim_end_matches('/')),
    );
    ctx.insert("user_menu", &menu_html(web, session).await);
    match web.0.render.render(template, &ctx) {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(html),
        Err(e) => opaque_error(&e),
    }
}

async fn menu_get(web: Web, req: HttpRequest) -> HttpResponse {
    let session = req.get_session();
    let html = menu_html(&web, &session).await;
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html)
}

async fn static_get(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    match modal2fa_web_assets::static_file(&path) {
        Some(f) => {
            if req
                .headers()
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                == Some(f.etag.as_str())
            {
                return HttpResponse::NotModified().finish();
            }
            HttpResponse::Ok()
                .content_type(f.content_type)
                .insert_header(("ETag", f.etag.clone()))
                .insert_header(("Cache-Control", "public, max-age=3600"))
                .body(f.bytes.into_owned())
        }
        None => HttpResponse::NotFound().finish(),
    }
}
