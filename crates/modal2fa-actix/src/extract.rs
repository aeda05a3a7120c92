//! The building blocks every handler starts from: [`Flow`] (the web layer, the request,
//! its session and login state, and the request context) and [`Posted`] (a form that
//! has passed the CSRF and same-origin checks before the handler sees it). Both are
//! public, so a host that replaces a route with `Builder::replace_route` gets them too.

use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use modal2fa_core::Modal2fa;
use modal2fa_core::machine::LoginState;
use modal2fa_core::model::RequestContext;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Modal2faWeb;
use crate::error::WebError;
use crate::session::LOGIN_STATE;

/// A request as a sign-in flow sees it.
pub struct Flow {
    /// The web layer.
    pub web: Modal2faWeb,
    /// The request.
    pub req: HttpRequest,
    /// Its session (server-side, through the core session port).
    pub session: Session,
    /// The login state kept in the session (anonymous when there is none).
    pub state: LoginState,
    /// Where it came from: the resolved client address, browser, path.
    pub ctx: RequestContext,
}

impl Flow {
    /// The flow of `req`, or `None` when the web layer is not configured in this app.
    pub fn of(req: &HttpRequest) -> Option<Self> {
        let web = req.app_data::<web::Data<Modal2faWeb>>()?.get_ref().clone();
        let session = req.get_session();
        let state = session
            .get::<LoginState>(LOGIN_STATE)
            .ok()
            .flatten()
            .unwrap_or_default();
        let ctx = web.request_context(req);
        Some(Self {
            web,
            req: req.clone(),
            session,
            state,
            ctx,
        })
    }

    /// The core services.
    pub fn auth(&self) -> &Modal2fa {
        self.web.auth()
    }

    /// `next` if it is a local path, else the configured post-sign-in page.
    pub fn next(&self, next: Option<&str>) -> String {
        crate::render::safe_next(next, &self.web.settings().login_redirect)
    }

    /// The full path of a named route.
    pub fn path(&self, name: &str) -> String {
        self.web.settings().path(name)
    }
}

impl FromRequest for Flow {
    type Error = WebError;
    type Future = Ready<Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Flow::of(req).ok_or_else(|| WebError::unexpected("modal2fa is not configured")))
    }
}

/// The `?next=` of a modal GET.
#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    /// Where to go afterwards (checked to be a local path before use).
    pub next: Option<String>,
}

/// A form body that passed the same-origin check (scheme, host and port) and carries a
/// valid CSRF token (in the `csrf_token` field or the `X-CSRF-Token` header) for the
/// session's user, or for an anonymous visitor the nonce in its CSRF cookie; anything
/// else is refused with 403 before the handler runs.
#[derive(Debug)]
pub struct Posted<T>(pub T);

#[derive(Deserialize)]
struct WithToken<T> {
    #[serde(flatten)]
    form: T,
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for Posted<T> {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WebError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Form::<WithToken<T>>::from_request(&req, payload);
        Box::pin(async move {
            let flow =
                Flow::of(&req).ok_or_else(|| WebError::unexpected("modal2fa is not configured"))?;
            let WithToken { form, csrf_token } =
                body.await.map_err(|_| WebError::Forbidden)?.into_inner();
            let header = req
                .headers()
                .get("X-CSRF-Token")
                .and_then(|v| v.to_str().ok());
            let token_ok = csrf_token
                .as_deref()
                .or(header)
                .is_some_and(|t| flow.web.csrf_token_ok(&req, &flow.state, t));
            let proxies = &flow.auth().settings().client_ip;
            if crate::csrf::same_origin(&req, proxies) && token_ok {
                Ok(Posted(form))
            } else {
                Err(WebError::Forbidden)
            }
        })
    }
}

/// A form with nothing but its token (and where to go next).
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    /// Where to go afterwards.
    pub next: Option<String>,
}
