//! Route guards for host applications, as extractors: `SignedInUser` (require sign-in),
//! `SecondFactorUser` (require a session method the policy accepts for the host's pages,
//! [`AuthPolicy::page_guard_methods`] — `2fa` or `microsoft` by default, the equivalent of
//! the original's 2FA-protected admin site), `RequireMethods<M>` (a method set of your
//! own) and `Permitted<P>` (require a permission hook).
//!
//! A refused guard sends the browser to the right modal's page, carrying `next` back: a
//! plain request gets a `303 See Other`, an htmx request (`HX-Request: true`) a `200`
//! with `HX-Redirect` (htmx would follow a 303 inside its own request and swap the login
//! page into the target element).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use modal2fa_core::machine::LoginState;
use modal2fa_core::model::{AuthMethod, User};
use modal2fa_core::policy::AuthPolicy;

use crate::Modal2faWeb;
use crate::session::LOGIN_STATE;

/// Why a guard refused: answered with a redirect to the right modal (`HX-Redirect` for
/// htmx).
#[derive(Debug)]
pub enum GuardRejection {
    /// Not signed in: go to the login modal.
    SignIn(GuardRedirect),
    /// Signed in, but the method does not satisfy the guard: go to the 2FA modal.
    SecondFactor(GuardRedirect),
    /// Signed in, but not permitted.
    Forbidden,
    /// The web layer is not configured in this app.
    NotConfigured,
}

/// Where a refused guard sends the browser, and how it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRedirect {
    /// The modal's path with `?next=` back to the refused request's path and query.
    pub to: String,
    /// Whether htmx made the refused request: it is answered with `HX-Redirect`.
    pub htmx: bool,
}

impl GuardRedirect {
    /// The answer: a `303 See Other` to [`Self::to`], or for htmx a `200` with
    /// `HX-Redirect: <to>`.
    pub fn response(&self) -> HttpResponse {
        if self.htmx {
            HttpResponse::Ok()
                .insert_header(("HX-Redirect", self.to.clone()))
                .finish()
        } else {
            HttpResponse::SeeOther()
                .insert_header(("Location", self.to.clone()))
                .finish()
        }
    }
}

impl std::fmt::Display for GuardRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SignIn(_) => "sign-in required",
            Self::SecondFactor(_) => "second factor required",
            Self::Forbidden => "forbidden",
            Self::NotConfigured => "modal2fa is not configured",
        })
    }
}

impl ResponseError for GuardRejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.error_response().status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn(to) | Self::SecondFactor(to) => to.response(),
            Self::Forbidden => HttpResponse::Forbidden()
                .content_type("text/plain; charset=utf-8")
                .body("You do not have permission to see this page."),
            Self::NotConfigured => HttpResponse::InternalServerError().finish(),
        }
    }
}

fn target(web: &Modal2faWeb, req: &HttpRequest, route: &str) -> GuardRedirect {
    let next = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    GuardRedirect {
        to: format!(
            "{}?next={}",
            web.settings().path(route),
            crate::respond::encode(next)
        ),
        htmx: crate::render::is_htmx(req),
    }
}

/// The signed-in user (any method). Pending (password-only) logins are not signed in.
#[derive(Debug, Clone)]
pub struct SignedInUser {
    /// The account.
    pub user: User,
    /// How the session signed in.
    pub method: AuthMethod,
}

async fn signed_in(req: HttpRequest) -> Result<(Modal2faWeb, SignedInUser), GuardRejection> {
    let web = req
        .app_data::<web::Data<Modal2faWeb>>()
        .ok_or(GuardRejection::NotConfigured)?
        .get_ref()
        .clone();
    let state = req
        .get_session()
        .get::<LoginState>(LOGIN_STATE)
        .ok()
        .flatten()
        .unwrap_or_default();
    if state.signed_in().is_none() {
        return Err(GuardRejection::SignIn(target(&web, &req, "auth:login")));
    }
    match web.auth().login.signed_in_user(&state).await {
        Ok((user, s)) => Ok((
            web,
            SignedInUser {
                user,
                method: s.method,
            },
        )),
        Err(_) => Err(GuardRejection::SignIn(target(&web, &req, "auth:login"))),
    }
}

impl FromRequest for SignedInUser {
    type Error = GuardRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { signed_in(req).await.map(|(_, u)| u) })
    }
}

/// A signed-in user whose session method is one the policy accepts for the host's pages,
/// [`AuthPolicy::page_guard_methods`] (`2fa` or `microsoft` by default): trusted-device
/// (`cookie`) and password-only sessions are sent through the 2FA modal first. Relaxing
/// [`AuthPolicy::factor_management_methods`] does not relax this guard.
#[derive(Debug, Clone)]
pub struct SecondFactorUser(pub SignedInUser);

impl FromRequest for SecondFactorUser {
    type Error = GuardRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (web, u) = signed_in(req.clone()).await?;
            if web.auth().policy().page_guard_methods().contains(&u.method) {
                Ok(SecondFactorUser(u))
            } else {
                Err(GuardRejection::SecondFactor(target(
                    &web,
                    &req,
                    "auth:auth_2fa",
                )))
            }
        })
    }
}

/// A permission hook of the policy.
pub trait Permission: 'static {
    /// Whether `user` has it.
    fn allowed(policy: &dyn AuthPolicy, user: &User) -> bool;
}

/// `can_manage_users`.
#[derive(Debug)]
pub struct ManageUsers;

impl Permission for ManageUsers {
    fn allowed(policy: &dyn AuthPolicy, user: &User) -> bool {
        policy.can_manage_users(user)
    }
}

/// `can_manage_security`.
#[derive(Debug)]
pub struct ManageSecurity;

impl Permission for ManageSecurity {
    fn allowed(policy: &dyn AuthPolicy, user: &User) -> bool {
        policy.can_manage_security(user)
    }
}

/// A signed-in user with permission `P`; others get 403.
#[derive(Debug, Clone)]
pub struct Permitted<P: Permission>(pub SignedInUser, PhantomData<P>);

impl<P: Permission> FromRequest for Permitted<P> {
    type Error = GuardRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (web, u) = signed_in(req).await?;
            if P::allowed(web.auth().policy().as_ref(), &u.user) {
                Ok(Permitted(u, PhantomData))
            } else {
                Err(GuardRejection::Forbidden)
            }
        })
    }
}

/// A set of acceptable session methods for [`RequireMethods`].
pub trait MethodSet: 'static {
    /// The methods that pass.
    fn methods() -> &'static [AuthMethod];
}

/// `2fa` only (stricter than the policy's default, which also accepts `microsoft`).
#[derive(Debug)]
pub struct TwoFactorOnly;

impl MethodSet for TwoFactorOnly {
    fn methods() -> &'static [AuthMethod] {
        &[AuthMethod::TwoFactor]
    }
}

/// `RequireSecondFactor(methods)`: a signed-in user whose session method is in `M`;
/// others are sent to the 2FA modal (step-up) and come back afterwards.
#[derive(Debug, Clone)]
pub struct RequireMethods<M: MethodSet>(pub SignedInUser, PhantomData<M>);

impl<M: MethodSet> FromRequest for RequireMethods<M> {
    type Error = GuardRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (web, u) = signed_in(req.clone()).await?;
            if M::methods().contains(&u.method) {
                Ok(RequireMethods(u, PhantomData))
            } else {
                Err(GuardRejection::SecondFactor(target(
                    &web,
                    &req,
                    "auth:auth_2fa",
                )))
            }
        })
    }
}
