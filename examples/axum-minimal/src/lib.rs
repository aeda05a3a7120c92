//! modal2fa's core driven from axum, with the in-memory adapters: password + TOTP sign-in
//! over plain HTML forms, server-side sessions in a cookie, no actix anywhere.
//!
//! This is the crate a host on another framework copies. The core decides *who* is signed
//! in; everything HTTP is the host's job, and each of the four points below is a hole if
//! it is left out:
//!
//! 1. **CSRF on every POST** ([`csrf`]). A browser attaches the session cookie to any
//!    request to this site, including a form that another site submits, so a POST must
//!    prove that it comes from one of our own pages. Each form carries a token, an
//!    HMAC-SHA256 of the session id's hash under the CSRF key the core derives from the
//!    server secret (nothing to store, unreadable from another site, worthless in any
//!    other session), and the browser's `Sec-Fetch-Site` or `Origin` must name this site.
//!    One middleware checks both before any handler runs, so a new route cannot forget
//!    them: a refused POST answers 403 and changes nothing.
//! 2. **The session cookie's flags** ([`session`]). `HttpOnly` (scripts cannot read the
//!    id), `SameSite=Lax` (the browser leaves it off cross-site POSTs), `Secure` with the
//!    `__Host-` prefix (https only; no `Domain` and `Path=/`, so neither plain http nor a
//!    sibling subdomain can read, set or shadow it). Plain http needs the development
//!    switch, [`Config::development_plain_http_on_localhost`].
//! 3. **A new session id at every privilege change, none after logout**
//!    ([`session::Session::persist`]). The core's report says when privilege changed
//!    (the password accepted, the second factor proved); the session then moves to a new
//!    id with [`SessionService::renew`](modal2fa_core::services::SessionService::renew)
//!    and the old id stops working, so an id planted in the browser or seen before sign-in
//!    (session fixation) is worth nothing. Logout deletes the session from the store, not
//!    just the cookie from the browser.
//! 4. **No internal text in responses** ([`copy`]). Every message a user reads is fixed
//!    copy written here. An infrastructure failure answers only "Something went wrong";
//!    its cause goes to the log through `tracing`. Nothing logs a form, so no password,
//!    code or token reaches the log either.
//!
//! Routes: `GET /` (the page for the session's state), `POST /login` (username,
//! password), `POST /totp` (code), `POST /totp/setup` then `POST /totp/confirm`
//! (enrolment, code), `POST /logout`. Every form also carries `csrf`. A visitor without a
//! live session gets an anonymous one from `GET /`, so that the sign-in form has a token
//! to carry (and the sign-in itself a session to renew); it costs one row per visitor
//! until the idle timeout, which a host with much anonymous traffic may prefer to avoid
//! by binding pre-sign-in tokens to a signed cookie instead.
//!
//! The router takes a [`Config`]: `Config::new("https://app.example.com")` in
//! production; `src/main.rs` serves it on plain http on 127.0.0.1 under
//! the development switch.

mod config;
pub mod copy;
pub mod csrf;
pub mod hashing;
pub mod page;
pub mod session;

use axum::Router;
use axum::extract::{Form, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use modal2fa_core::services::PasswordLogin;
use modal2fa_core::{LoginState, Modal2fa, ServerSecret, ServiceError};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use crate::config::{Config, InvalidOrigin};
use crate::copy::Failure;
use crate::csrf::CsrfKey;
use crate::session::{Client, Cookie};

/// Shared application state.
#[derive(Clone)]
pub struct App {
    /// modal2fa services.
    pub auth: Modal2fa,
    csrf: CsrfKey,
    config: Config,
}

/// The router. `secret` must be the one `auth` was built with: the CSRF key is derived
/// from it.
pub fn router(auth: Modal2fa, secret: &ServerSecret, config: Config) -> Router {
    let app = App {
        auth,
        csrf: CsrfKey::derive(secret),
        config,
    };
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/totp", post(totp))
        .route("/totp/setup", post(totp_setup))
        .route("/totp/confirm", post(totp_confirm))
        .route("/logout", post(logout))
        // Around every route: no POST reaches a handler without a valid token and origin.
        .layer(middleware::from_fn_with_state(app.clone(), csrf::guard))
        .with_state(app)
}

/// axum's `Form`, except that a malformed body answers fixed copy instead of the parser's
/// message (which names fields and types).
pub struct Fields<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Fields<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(fields)) => Ok(Self(fields)),
            Err(_) => Err(copy::text(StatusCode::UNPROCESSABLE_ENTITY, copy::BAD_FORM)),
        }
    }
}

/// `GET /`: who is signed in, and the forms for the next step.
async fn home(State(app): State<App>, client: Client) -> Result<Response, Failure> {
    let session = client.session(&app.auth).await?;
    let state = session.state();
    // Forms need a session to bind their token to: a visitor without one gets an
    // anonymous session (renewed at sign-in like any other).
    let cookie = match session.id() {
        Some(id) => Cookie::Keep(id.clone()),
        None => Cookie::Set(
            app.auth
                .sessions
                .create(&LoginState::Anonymous, &client.context(&app.auth))
                .await?,
        ),
    };
    Ok(page::respond(
        &app,
        StatusCode::OK,
        &copy::state(&state),
        &state,
        cookie,
    ))
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// `POST /login`: the password step.
async fn login(
    State(app): State<App>,
    client: Client,
    Fields(form): Fields<LoginForm>,
) -> Result<Response, Failure> {
    let ctx = client.context(&app.auth);
    let session = client.session(&app.auth).await?;
    let request = PasswordLogin {
        username: form.username,
        password: form.password.into(),
        trusted_device_cookie: None,
    };
    let report = app
        .auth
        .login
        .submit_password(&session.state(), request, &ctx)
        .await?;
    page::report(&app, session, report, &ctx).await
}

/// A code.
#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// `POST /totp`: the second factor.
async fn totp(
    State(app): State<App>,
    client: Client,
    Fields(form): Fields<CodeForm>,
) -> Result<Response, Failure> {
    let ctx = client.context(&app.auth);
    let session = client.session(&app.auth).await?;
    let report = app
        .auth
        .login
        .submit_totp(&session.state(), &form.code, &ctx)
        .await?;
    page::report(&app, session, report, &ctx).await
}

/// `POST /totp/setup`: a new authenticator app key, and the form to confirm it.
async fn totp_setup(State(app): State<App>, client: Client) -> Result<Response, Failure> {
    let session = client.session(&app.auth).await?;
    let enrolment = app.auth.factors.begin_totp(&session.state()).await?;
    let id = session.id().ok_or(ServiceError::NotSignedIn)?;
    Ok(page::enrolment(&app, id, &enrolment))
}

/// Enrolment confirmation.
#[derive(Deserialize)]
pub struct ConfirmForm {
    enrolment: String,
    code: String,
}

/// `POST /totp/confirm`: the first code from the new app.
async fn totp_confirm(
    State(app): State<App>,
    client: Client,
    Fields(form): Fields<ConfirmForm>,
) -> Result<Response, Failure> {
    let ctx = client.context(&app.auth);
    let session = client.session(&app.auth).await?;
    let state = session.state();
    if let LoginState::PendingSecondFactor(_) = state {
        // A set-up login: the first code from the new app finishes signing in (a new id).
        let report = app
            .auth
            .login
            .complete_setup_with_totp(&state, &form.enrolment, &form.code, &ctx)
            .await?;
        return page::report(&app, session, report, &ctx).await;
    }
    app.auth
        .factors
        .confirm_totp(&state, &form.enrolment, &form.code, &ctx)
        .await?;
    let id = session.id().ok_or(ServiceError::NotSignedIn)?.clone();
    Ok(page::respond(
        &app,
        StatusCode::OK,
        copy::TOTP_ADDED,
        &state,
        Cookie::Keep(id),
    ))
}

/// `POST /logout`: ends the session in the store and in the browser.
async fn logout(State(app): State<App>, client: Client) -> Result<Response, Failure> {
    let ctx = client.context(&app.auth);
    let session = client.session(&app.auth).await?;
    let report = app.auth.login.logout(&session.state(), &ctx).await?;
    page::report(&app, session, report, &ctx).await
}
