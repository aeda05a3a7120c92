#![doc = include_str!("../README.md")]

mod account;
mod copy;
mod csrf;
mod delay;
mod devices;
mod error;
mod extract;
mod guards;
pub mod hash_pool;
mod headers;
mod host;
mod layer;
mod links;
mod login;
mod menu;
mod passkeys;
mod qr;
mod recovery;
mod render;
mod respond;
mod second_factor;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
mod totp;
mod wiring;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite};
use actix_web::{HttpRequest, HttpResponse, Route, guard, web};
use modal2fa_core::Modal2fa;
use modal2fa_core::machine::LoginState;
use modal2fa_core::model::RequestContext;

/// actix-session at the version this crate uses, for `Session` (as in
/// [`Modal2faWeb::user_menu_html`]) without a dependency of the host's own.
pub use actix_session;
pub use csrf::{Csrf, Holder, Nonce};
pub use delay::TokioDelay;
pub use error::{Shown, WebError};
pub use extract::{Flow, NextQuery, Posted, TokenForm};
pub use guards::{
    GuardRedirect, GuardRejection, ManageSecurity, ManageUsers, MethodSet, Permission, Permitted,
    RequireMethods, SecondFactorUser, SignedInUser, TwoFactorOnly,
};
pub use hash_pool::TokioHashPool;
pub use headers::{CONTENT_SECURITY_POLICY, SecurityHeaders, SecurityHeadersService};
pub use host::{SCRIPTS, STYLESHEETS};
pub use layer::SessionLayer;
/// The core at the version this crate uses, for implementing a port or a policy
/// (`modal2fa_core::async_trait`, `modal2fa_core::time`) without a dependency of the
/// host's own.
pub use modal2fa_core;
pub use render::{BuildError, Command, ModalAppearance, RenderError};
pub use respond::Back;
pub use session::PortSessionStore;
pub use wiring::ports;

/// Every route, by stable name (`auth:<name>`), with its path below the mount point.
pub const ROUTES: &[(&str, &str)] = &[
    ("auth:login", "/login/"),
    ("auth:auth_2fa", "/2fa/"),
    ("auth:auth_2fa_cancel", "/2fa/cancel/"),
    ("auth:passkey_options", "/2fa/passkey/options/"),
    ("auth:passkey", "/2fa/passkey/"),
    (
        "auth:passkey_register_options",
        "/passkeys/register/options/",
    ),
    ("auth:passkey_register", "/passkeys/register/"),
    ("auth:passkey_rename", "/passkeys/{id}/rename/"),
    ("auth:passkey_remove", "/passkeys/{id}/remove/"),
    ("auth:passwordless_options", "/passkey/options/"),
    ("auth:passwordless", "/passkey/"),
    ("auth:totp_setup", "/2fa/totp/"),
    ("auth:confirm_remember", "/trust-device/"),
    ("auth:user_devices", "/devices/"),
    ("auth:remove_device", "/devices/{id}/remove/"),
    ("auth:remove_2fa", "/remove-2fa/"),
    ("auth:recovery_codes", "/recovery-codes/"),
    ("auth:change_password", "/change-password/"),
    ("auth:password_reset", "/password-reset/"),
    ("auth:password_reset_confirm", "/password-reset/{token}"),
    ("auth:invitation", "/invitation/{token}"),
    ("auth:logout", "/logout/"),
    ("auth:user_menu", "/menu/"),
    ("auth:static", "/static/{path:.*}"),
];

/// Web-layer settings.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Where the routes are mounted (default `/auth`).
    pub mount: String,
    /// Secure, `__Host-` cookies and HSTS (the default). Only plain-http development on
    /// the developer's own machine may turn this off.
    pub secure_cookies: bool,
    /// Shown in titles.
    pub site_name: String,
    /// Where to go after signing in when no `next` is given.
    pub login_redirect: String,
    /// Where to go after signing out.
    pub logout_redirect: String,
    /// Per-modal appearance, by modal name (`login`, `auth_2fa`, …: the templates under
    /// `modals/`). [`Builder::build`] refuses a key that names no modal.
    pub appearance: HashMap<String, ModalAppearance>,
    /// A directory whose templates override the embedded ones by name.
    pub template_dir: Option<PathBuf>,
    /// The site's public base URL (`https://app.example.com`), which the links in emails
    /// (password reset, invitation) point at. Without it, "Forgot your password?" is not
    /// offered and no link can be sent: a link is never built from the `Host` a request
    /// named, which an attacker chooses.
    pub public_url: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            mount: "/auth".into(),
            secure_cookies: true,
            site_name: "modal2fa".into(),
            login_redirect: "/".into(),
            logout_redirect: "/".into(),
            appearance: HashMap::new(),
            template_dir: None,
            public_url: None,
        }
    }
}

impl WebSettings {
    /// The session cookie's name: `__Host-` prefixed when secure.
    pub fn session_cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-modal2fa"
        } else {
            "modal2fa_session"
        }
    }

    /// The trusted-device cookie's name.
    pub fn device_cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-modal2fa_device"
        } else {
            "modal2fa_device"
        }
    }

    /// The anonymous visitor's CSRF nonce cookie's name: `__Host-` prefixed when secure.
    pub fn csrf_cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-modal2fa_csrf"
        } else {
            "modal2fa_csrf"
        }
    }

    /// The full path of a named route (without parameters filled in).
    pub fn path(&self, name: &str) -> String {
        let p = ROUTES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .unwrap_or("/");
        format!("{}{}", self.mount.trim_end_matches('/'), p)
    }

    /// The absolute URL an emailed link of route `name` starts with (its `{token}`
    /// segment cut off, to be appended), from [`WebSettings::public_url`].
    pub fn link_base(&self, name: &str) -> Option<String> {
        let base = self.public_url.as_deref()?.trim_end_matches('/');
        let path = self.path(name);
        Some(format!("{base}{}", path.trim_end_matches("{token}")))
    }
}

pub(crate) struct Inner {
    pub auth: Modal2fa,
    pub render: render::Renderer,
    pub csrf: Csrf,
    pub settings: WebSettings,
    pub cookie_key: Key,
    pub overrides: HashMap<String, fn() -> actix_web::Route>,
}

/// The modal2fa web layer: cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct Modal2faWeb(pub(crate) Arc<Inner>);

/// Builds a [`Modal2faWeb`].
pub struct Builder {
    auth: Modal2fa,
    settings: WebSettings,
    overrides: HashMap<String, fn() -> actix_web::Route>,
}

impl Builder {
    /// Web settings.
    pub fn settings(mut self, settings: WebSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Replaces the handler of a named route (`auth:login`, …) with your own.
    pub fn replace_route(mut self, name: &str, route: fn() -> actix_web::Route) -> Self {
        self.overrides.insert(name.to_owned(), route);
        self
    }

    /// Builds it, loading the embedded templates and then the override directory, and
    /// checking that every key of `WebSettings::appearance` names a modal (`login`, not
    /// the route name `auth:login`): an unknown key is an error naming it and the valid
    /// ones, never silently ignored.
    pub fn build(self) -> Result<Modal2faWeb, BuildError> {
        let render = render::Renderer::new(self.settings.template_dir.as_deref())?;
        let valid = render.modal_names();
        let mut keys: Vec<&String> = self.settings.appearance.keys().collect();
        keys.sort();
        if let Some(key) = keys.into_iter().find(|k| !valid.contains(k)) {
            return Err(BuildError::UnknownAppearance {
                key: key.clone(),
                valid,
            });
        }
        let keys = self.auth.web_keys();
        Ok(Modal2faWeb(Arc::new(Inner {
            csrf: Csrf::new(*keys.csrf()),
            cookie_key: Key::derive_from(keys.cookie_signing()),
            render,
            auth: self.auth,
            settings: self.settings,
            overrides: self.overrides,
        })))
    }
}

impl Modal2faWeb {
    /// Starts building the web layer over the core services. Its keys (CSRF tokens,
    /// cookie signing) are the ones the core derived from the server secret given to
    /// [`Modal2fa::new`]: the secret is given once, and the two can never disagree.
    pub fn builder(auth: Modal2fa) -> Builder {
        Builder {
            auth,
            settings: WebSettings::default(),
            overrides: HashMap::new(),
        }
    }

    /// The core services.
    pub fn auth(&self) -> &Modal2fa {
        &self.0.auth
    }

    /// The web settings.
    pub fn settings(&self) -> &WebSettings {
        &self.0.settings
    }

    /// The session middleware: server-side sessions through the core session service,
    /// the idle timeout kept by the store, the absolute timeout enforced on every load.
    /// When the store cannot be reached it answers 503 with `Retry-After` (the
    /// "temporarily unavailable" modal) instead of an opaque 500.
    pub fn session_middleware(&self) -> SessionLayer {
        let core = self.0.auth.settings();
        let store = session::PortSessionStore::new(self.0.auth.sessions.clone());
        let inner = SessionMiddleware::builder(store, self.0.cookie_key.clone())
            .cookie_name(self.0.settings.session_cookie_name().to_owned())
            .cookie_secure(self.0.settings.secure_cookies)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".to_owned())
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(
                // The server ends idle sessions; the cookie lives as long as a session
                // can, and is re-sent only when the session changes.
                PersistentSession::default()
                    .session_ttl(actix_web::cookie::time::Duration::seconds(
                        core.session.absolute_timeout.whole_seconds(),
                    ))
                    .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
            )
            .build();
        SessionLayer::new(inner, self.clone())
    }

    /// Security headers for the responses under the mount point (`/auth/…`): a strict
    /// CSP (no inline scripts), no framing, no MIME sniffing, a same-origin referrer
    /// policy, and HSTS under https. The host's own pages are left alone, so one with an
    /// inline script keeps working; [`Self::security_headers_everywhere`] puts them on
    /// every response. A header a handler set itself is kept.
    pub fn security_headers(&self) -> SecurityHeaders {
        SecurityHeaders::new(Some(&self.0.settings.mount), self.0.settings.secure_cookies)
    }

    /// [`Self::security_headers`] on every response of the app, the host's pages
    /// included: for an app whose pages all hold under the strict CSP (the reference
    /// server's do).
    pub fn security_headers_everywhere(&self) -> SecurityHeaders {
        SecurityHeaders::new(None, self.0.settings.secure_cookies)
    }

    /// Mounts every route under the mount point (`/auth` by default). Use with
    /// `App::new().wrap(web.session_middleware()).wrap(web.security_headers()).configure(|c| web.configure(c))`.
    /// Every GET route answers HEAD too.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()));
        let mut scope = web::scope(&self.0.settings.mount);
        for (name, path) in ROUTES {
            let mut resource = web::resource(*path).name(name);
            match self.0.overrides.get(*name) {
                Some(route) => resource = resource.route(route()),
                None => {
                    for route in routes(name) {
                        resource = resource.route(route);
                    }
                }
            }
            scope = scope.service(resource);
        }
        cfg.service(scope);
    }

    /// The request's context for the core: the client address resolved through the
    /// configured proxies, the browser, the path.
    pub fn request_context(&self, req: &HttpRequest) -> RequestContext {
        let peer = req
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let xff: Vec<&[u8]> = req
            .headers()
            .get_all("x-forwarded-for")
            .map(|v| v.as_bytes())
            .collect();
        let ip = self.auth().settings().client_ip.resolve(peer, &xff);
        let ua = req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        RequestContext::new(ip, ua, req.path())
    }

    /// A CSRF token for the forms of the response to `req`, whose session is in `state`:
    /// bound to the signed-in user, else to the visitor's nonce cookie. For a visitor
    /// without one a nonce is minted for this request (every token of the response shares
    /// it), whose cookie the session middleware sets on the response (outside it, send it
    /// with [`Modal2faWeb::with_csrf_cookie`], or the forms will be refused).
    /// [`Modal2faWeb::csrf_token`] reads `state` from the request's session.
    pub fn csrf_token_for(&self, req: &HttpRequest, state: &LoginState) -> String {
        let now = self.auth().now();
        match state.signed_in() {
            Some(s) => self.0.csrf.token(now, Holder::User(s.user_id)),
            None => {
                let nonce = csrf::visitor_nonce(req, &self.0.settings);
                self.0.csrf.token(now, Holder::Visitor(&nonce))
            }
        }
    }

    /// `resp` with the visitor's CSRF nonce cookie when [`Modal2faWeb::csrf_token_for`]
    /// minted a nonce for `req`; `resp` unchanged otherwise. The session middleware does
    /// this for every response, so only a response that does not pass through it needs
    /// this call.
    pub fn with_csrf_cookie(&self, req: &HttpRequest, mut resp: HttpResponse) -> HttpResponse {
        if let Some(cookie) = csrf::minted_cookie(req, &self.0.settings) {
            // A cookie built from our own values always encodes.
            let _ = resp.add_cookie(&cookie);
        }
        resp
    }

    /// Whether `token` is a valid CSRF token now for `req`, whose session is in `state`:
    /// the signed-in user's, else one minted under the nonce in the request's cookie (no
    /// cookie, no valid token).
    pub(crate) fn csrf_token_ok(&self, req: &HttpRequest, state: &LoginState, token: &str) -> bool {
        let now = self.auth().now();
        match state.signed_in() {
            Some(s) => self.0.csrf.verify(token, now, Holder::User(s.user_id)),
            None => csrf::cookie_nonce(req, &self.0.settings)
                .is_some_and(|nonce| self.0.csrf.verify(token, now, Holder::Visitor(&nonce))),
        }
    }

    /// Where the embedded static files are served (`/auth/static/`).
    pub fn static_base(&self) -> String {
        format!("{}/static/", self.0.settings.mount.trim_end_matches('/'))
    }

    /// Renders one of your own page templates (from the template directory, or the
    /// embedded `demo/…` pages) for `req` with the common context: `csrf_token`, `urls`,
    /// `static_base`, `site_name`, `title` and `user_menu` (the menu's HTML, for
    /// `{{ user_menu | safe }}`), plus `extra`. An anonymous visitor without a CSRF nonce
    /// cookie gets one with the page.
    pub async fn page(
        &self,
        req: &HttpRequest,
        template: &str,
        title: &str,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> HttpResponse {
        menu::page(self, req, template, title, extra).await
    }

    /// The user menu for host pages (the same HTML as `GET /auth/menu/`).
    pub async fn user_menu_html(&self, session: &actix_session::Session) -> String {
        menu::html(self, session).await
    }
}

/// A route that answers GET and HEAD (HTTP clients and uptime monitors expect HEAD
/// wherever GET works); use it for your own pages too.
pub fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The routes of a named resource.
fn routes(name: &str) -> Vec<Route> {
    let post = web::post;
    match name {
        "auth:login" => vec![get().to(login::get), post().to(login::post)],
        "auth:auth_2fa" => vec![get().to(second_factor::get), post().to(second_factor::post)],
        "auth:auth_2fa_cancel" => vec![post().to(second_factor::cancel)],
        "auth:passkey_options" => vec![post().to(passkeys::sign_in_options)],
        "auth:passkey" => vec![post().to(passkeys::sign_in)],
        "auth:passkey_register_options" => vec![post().to(passkeys::register_options)],
        "auth:passkey_register" => vec![post().to(passkeys::register)],
        "auth:passkey_rename" => vec![post().to(passkeys::rename)],
        "auth:passkey_remove" => vec![post().to(passkeys::remove)],
        "auth:passwordless_options" => vec![post().to(passkeys::passwordless_options)],
        "auth:passwordless" => vec![post().to(passkeys::passwordless)],
        "auth:totp_setup" => vec![get().to(totp::get), post().to(totp::post)],
        "auth:confirm_remember" => {
            vec![get().to(devices::trust_get), post().to(devices::trust_post)]
        }
        "auth:user_devices" => vec![get().to(devices::list_get)],
        "auth:remove_device" => vec![post().to(devices::remove_post)],
        "auth:remove_2fa" => vec![
            get().to(account::remove_2fa_get),
            post().to(account::remove_2fa_post),
        ],
        "auth:recovery_codes" => vec![get().to(recovery::get), post().to(recovery::post)],
        "auth:change_password" => vec![
            get().to(account::password_get),
            post().to(account::password_post),
        ],
        "auth:logout" => vec![post().to(account::logout_post)],
        "auth:password_reset" => vec![get().to(links::request_get), post().to(links::request_post)],
        "auth:password_reset_confirm" => {
            vec![get().to(links::reset_get), post().to(links::reset_post)]
        }
        "auth:invitation" => vec![
            get().to(links::invitation_get),
            post().to(links::invitation_post),
        ],
        "auth:user_menu" => vec![get().to(menu::get)],
        "auth:static" => vec![get().to(menu::static_get)],
        _ => vec![],
    }
}
