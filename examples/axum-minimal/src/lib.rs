//! modal2fa's core driven from axum, with the in-memory adapters: password + TOTP sign-in
//! over plain HTTP forms, server-side sessions in a cookie, no actix anywhere.
//!
//! Routes: `GET /` (who am I), `POST /login` (username, password), `POST /totp` (code),
//! `POST /totp/setup` then `POST /totp/confirm` (device_id, code), `POST /logout`.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use modal2fa_core::services::{LoadedSession, LoginReport, PasswordLogin};
use modal2fa_core::{LoginState, Modal2fa, Outcome, RequestContext, SecretString, ServiceError};
use serde::Deserialize;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sid";

/// Shared application state: the services.
#[derive(Clone)]
pub struct App {
    /// modal2fa services.
    pub auth: Modal2fa,
}

/// The router.
pub fn router(auth: Modal2fa) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/totp", post(totp))
        .route("/totp/setup", post(totp_setup))
        .route("/totp/confirm", post(totp_confirm))
        .route("/logout", post(logout))
        .with_state(App { auth })
}

/// What every handler needs from the request: the client and the session cookie.
pub struct Client {
    peer: IpAddr,
    forwarded_for: Vec<Vec<u8>>,
    user_agent: String,
    path: String,
    session: Option<SecretString>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        Ok(Self {
            peer,
            forwarded_for: parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect(),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            path: parts.uri.path().to_owned(),
            session: cookie(&parts.headers, SESSION_COOKIE).map(SecretString::new),
        })
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

impl Client {
    fn context(&self, auth: &Modal2fa) -> RequestContext {
        let xff: Vec<&[u8]> = self.forwarded_for.iter().map(Vec::as_slice).collect();
        let ip = auth.settings().client_ip.resolve(self.peer, &xff);
        RequestContext::new(ip, &self.user_agent, &self.path)
    }

    async fn session(&self, auth: &Modal2fa) -> Result<Option<LoadedSession>, ServiceError> {
        match &self.session {
            Some(id) => auth.sessions.load(id).await,
            None => Ok(None),
        }
    }
}

fn session_cookie(id: &SecretString) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Lax; Path=/",
        id.expose()
    ))
    .expect("token is ASCII")
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("sid=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0")
}

fn error(e: ServiceError) -> Response {
    let status = match e {
        ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ServiceError::NotSignedIn | ServiceError::StepUpRequired => StatusCode::UNAUTHORIZED,
        ServiceError::NotAllowed(_) => StatusCode::FORBIDDEN,
        ServiceError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, e.to_string()).into_response()
}

/// Persists the state a report leaves, renewing or ending the session as asked.
async fn persist(
    auth: &Modal2fa,
    client: &Client,
    loaded: Option<&LoadedSession>,
    report: &LoginReport,
    ctx: &RequestContext,
) -> Result<Option<HeaderValue>, ServiceError> {
    let old = client.session.as_ref().zip(loaded.map(|l| &l.record));
    if report.end_session {
        if let Some(id) = &client.session {
            auth.sessions.end(id).await?;
        }
        return Ok(Some(clear_cookie()));
    }
    if report.renew_session || old.is_none() {
        let id = auth.sessions.renew(old, &report.state, ctx).await?;
        return Ok(Some(session_cookie(&id)));
    }
    if let Some((id, record)) = old {
        auth.sessions.update(id, record, &report.state, ctx).await?;
    }
    Ok(None)
}

fn describe(outcome: Outcome) -> (StatusCode, String) {
    match outcome {
        Outcome::SignedIn { method } => (StatusCode::OK, format!("signed in with {method}")),
        Outcome::SecondFactorRequired { setup: false } => {
            (StatusCode::OK, "second factor required".into())
        }
        Outcome::SecondFactorRequired { setup: true } => {
            (StatusCode::OK, "set up a second factor".into())
        }
        Outcome::LoggedOut => (StatusCode::OK, "signed out".into()),
        Outcome::Refused(r) => (StatusCode::BAD_REQUEST, format!("refused: {r:?}")),
        other => (StatusCode::OK, format!("{other:?}")),
    }
}

async fn respond(
    auth: &Modal2fa,
    client: &Client,
    loaded: Option<&LoadedSession>,
    report: LoginReport,
    ctx: &RequestContext,
) -> Response {
    match persist(auth, client, loaded, &report, ctx).await {
        Ok(cookie) => {
            let (status, body) = describe(report.outcome);
            let mut resp = (status, body).into_response();
            if let Some(c) = cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => error(e),
    }
}

async fn home(State(app): State<App>, client: Client) -> Response {
    match client.session(&app.auth).await {
        Ok(Some(s)) => match s.state {
            LoginState::SignedIn(si) => {
                format!("signed in as user {} with {}", si.user_id, si.method).into_response()
            }
            LoginState::PendingSecondFactor(_) => "second factor required".into_response(),
            _ => "anonymous".into_response(),
        },
        Ok(None) => "anonymous".into_response(),
        Err(e) => error(e),
    }
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

async fn login(State(app): State<App>, client: Client, Form(form): Form<LoginForm>) -> Response {
    let ctx = client.context(&app.auth);
    let loaded = match client.session(&app.auth).await {
        Ok(l) => l,
        Err(e) => return error(e),
    };
    let state = loaded.as_ref().map(|l| l.state.clone()).unwrap_or_default();
    let req = PasswordLogin {
        username: form.username,
        password: form.password.into(),
        trusted_device_cookie: None,
    };
    match app.auth.login.submit_password(&state, req, &ctx).await {
        Ok(report) => respond(&app.auth, &client, loaded.as_ref(), report, &ctx).await,
        Err(e) => error(e),
    }
}

/// A code.
#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

async fn totp(State(app): State<App>, client: Client, Form(form): Form<CodeForm>) -> Response {
    let ctx = client.context(&app.auth);
    let loaded = match client.session(&app.auth).await {
        Ok(l) => l,
        Err(e) => return error(e),
    };
    let state = loaded.as_ref().map(|l| l.state.clone()).unwrap_or_default();
    match app.auth.login.submit_totp(&state, &form.code, &ctx).await {
        Ok(report) => respond(&app.auth, &client, loaded.as_ref(), report, &ctx).await,
        Err(e) => error(e),
    }
}

async fn totp_setup(State(app): State<App>, client: Client) -> Response {
    let state = match client.session(&app.auth).await {
        Ok(Some(l)) => l.state,
        Ok(None) => LoginState::Anonymous,
        Err(e) => return error(e),
    };
    match app.auth.factors.begin_totp(&state).await {
        Ok(e) => format!(
            "device_id={}\nsecret={}\nurl={}\n",
            e.device_id,
            e.secret.expose(),
            e.otpauth_url.expose()
        )
        .into_response(),
        Err(e) => error(e),
    }
}

/// Enrolment confirmation.
#[derive(Deserialize)]
pub struct ConfirmForm {
    device_id: i64,
    code: String,
}

async fn totp_confirm(
    State(app): State<App>,
    client: Client,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let ctx = client.context(&app.auth);
    let loaded = match client.session(&app.auth).await {
        Ok(l) => l,
        Err(e) => return error(e),
    };
    let state = loaded.as_ref().map(|l| l.state.clone()).unwrap_or_default();
    match app
        .auth
        .factors
        .confirm_totp(&state, form.device_id, &form.code, &ctx)
        .await
    {
        Ok(Some(report)) => respond(&app.auth, &client, loaded.as_ref(), report, &ctx).await,
        Ok(None) => "authenticator app added".into_response(),
        Err(e) => error(e),
    }
}

async fn logout(State(app): State<App>, client: Client) -> Response {
    let ctx = client.context(&app.auth);
    let loaded = match client.session(&app.auth).await {
        Ok(l) => l,
        Err(e) => return error(e),
    };
    let state = loaded.as_ref().map(|l| l.state.clone()).unwrap_or_default();
    match app.auth.login.logout(&state, &ctx).await {
        Ok(report) => respond(&app.auth, &client, loaded.as_ref(), report, &ctx).await,
        Err(e) => error(e),
    }
}
