//! A test client for host applications, over `actix_web::test` (feature `testing`, off by
//! default: enable it in your `[dev-dependencies]`).
//!
//! [`TestClient`] behaves like one browser: it keeps a cookie jar across requests (the
//! session, the CSRF nonce, the trusted device), sends a same-origin `Origin` on every
//! form POST, and carries the CSRF token of the last page that showed one (a modal's
//! hidden `csrf_token` input or a layout's `<meta name="csrf-token">`), fetching one when
//! it has none. Helpers sign in with a password, and with a password and a TOTP code.
//!
//! ```no_run
//! # async fn example(web: modal2fa_actix::Modal2faWeb) {
//! use actix_web::{App, HttpResponse, test, web};
//! use modal2fa_actix::SecondFactorUser;
//! use modal2fa_actix::testing::TestClient;
//!
//! let w = web.clone();
//! let app = test::init_service(
//!     App::new()
//!         .wrap(web.session_middleware())
//!         .configure(move |c| w.configure(c))
//!         .route("/admin", web::get().to(|u: SecondFactorUser| async move {
//!             HttpResponse::Ok().body(u.0.user.username.to_string())
//!         })),
//! )
//! .await;
//! let mut client = TestClient::new(app, &web);
//! assert_eq!(client.get("/admin").await.status, 303, "signed out: to the login modal");
//! client.sign_in("alice", "correct horse battery").await;
//! # }
//! ```
//!
//! The jar is deliberately simple: one value per cookie name, every path and domain; a
//! cookie the server expires (`Max-Age=0` or an empty value) is dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::test::{self, TestRequest};
use modal2fa_core::totp;

use crate::Modal2faWeb;

/// What a request answered.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status code (`200`, `303`, …).
    pub status: u16,
    /// The headers, `Set-Cookie` included.
    pub headers: HeaderMap,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

impl TestResponse {
    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Where the response sends the browser: `HX-Redirect` (htmx), else `Location`.
    pub fn redirect(&self) -> Option<&str> {
        self.header("HX-Redirect")
            .or_else(|| self.header("Location"))
    }

    /// The `Set-Cookie` line of cookie `name`, if the response sets it.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.headers
            .get_all("set-cookie")
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&prefix))
    }

    /// The CSRF token the body shows: a hidden `name="csrf_token" value="…"` input, else
    /// a `<meta name="csrf-token" content="…">`.
    pub fn csrf_token(&self) -> Option<String> {
        [
            "name=\"csrf_token\" value=\"",
            "name=\"csrf-token\" content=\"",
        ]
        .iter()
        .find_map(|start| {
            let from = self.body.find(start)? + start.len();
            let len = self.body[from..].find('"')?;
            Some(&self.body[from..from + len])
        })
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
    }
}

/// One browser against an app built with `actix_web::test::init_service` (see the
/// [module docs](self)).
pub struct TestClient<S> {
    app: S,
    web: Modal2faWeb,
    jar: BTreeMap<String, String>,
    csrf: Option<String>,
    origin: String,
    peer: SocketAddr,
    user_agent: String,
    htmx: bool,
}

impl<S, B> TestClient<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// A browser with an empty jar for `app`, in which `web` is configured. It is a plain
    /// browser (no `HX-Request`) from `203.0.113.7:5000`, whose origin is
    /// `http://localhost:8080` (the host and scheme `actix_web::test` requests have).
    pub fn new(app: S, web: &Modal2faWeb) -> Self {
        Self {
            app,
            web: web.clone(),
            jar: BTreeMap::new(),
            csrf: None,
            origin: "http://localhost:8080".to_owned(),
            peer: SocketAddr::from(([203, 0, 113, 7], 5000)),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".to_owned(),
            htmx: false,
        }
    }

    /// The app, for requests of your own through `actix_web::test`.
    pub fn app(&self) -> &S {
        &self.app
    }

    /// Whether requests say `HX-Request: true`, as the modal runtime's do: modals then
    /// answer as fragments and commands as htmx headers (`HX-Redirect`, …).
    pub fn set_htmx(&mut self, htmx: bool) {
        self.htmx = htmx;
    }

    /// The socket address requests come from (the client address, unless a trusted
    /// proxy's `X-Forwarded-For` says otherwise).
    pub fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = peer;
    }

    /// The `User-Agent` requests send.
    pub fn set_user_agent(&mut self, user_agent: &str) {
        user_agent.clone_into(&mut self.user_agent);
    }

    /// The `Origin` form POSTs send (`scheme://host:port`).
    pub fn set_origin(&mut self, origin: &str) {
        origin.clone_into(&mut self.origin);
    }

    /// The cookie jar: name → value. Change it to play a second browser, a stolen cookie,
    /// a cleared one.
    pub fn cookies(&self) -> &BTreeMap<String, String> {
        &self.jar
    }

    /// The cookie jar, to change. The carried CSRF token is forgotten (the next form
    /// POST without one fetches a fresh one).
    pub fn cookies_mut(&mut self) -> &mut BTreeMap<String, String> {
        self.csrf = None;
        &mut self.jar
    }

    /// The value of cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    /// Sends `req` as this browser: from its peer, with its `User-Agent`, `HX-Request`
    /// when set and its cookies; then keeps the cookies the response sets or expires and
    /// the CSRF token its body shows. The token is forgotten when the session or the CSRF
    /// nonce cookie changes (a sign-in, a sign-out, a new visitor), since it was bound to
    /// the old one.
    pub async fn send(&mut self, req: TestRequest) -> TestResponse {
        let mut req = req
            .peer_addr(self.peer)
            .insert_header(("User-Agent", self.user_agent.clone()));
        if self.htmx {
            req = req.insert_header(("HX-Request", "true"));
        }
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.insert_header(("Cookie", cookies.join("; ")));
        }
        let resp = test::call_service(&self.app, req.to_request()).await;
        let settings = self.web.settings();
        let binding = [settings.session_cookie_name(), settings.csrf_cookie_name()];
        for c in resp.response().cookies() {
            if binding.contains(&c.name()) {
                self.csrf = None;
            }
            if c.max_age().is_some_and(|m| m.is_zero()) || c.value().is_empty() {
                self.jar.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = String::from_utf8_lossy(&test::read_body(resp).await).into_owned();
        let resp = TestResponse {
            status,
            headers,
            body,
        };
        if let Some(token) = resp.csrf_token() {
            self.csrf = Some(token);
        }
        resp
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.send(TestRequest::get().uri(path)).await
    }

    /// `POST path` with `form` url-encoded and the same-origin `Origin`; with the carried
    /// CSRF token (see [`Self::csrf_token`]) unless `form` has a `csrf_token` of its own.
    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> TestResponse {
        let mut fields: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !form.iter().any(|(k, _)| *k == "csrf_token") {
            fields.push(("csrf_token".to_owned(), self.csrf_token().await));
        }
        let req = TestRequest::post()
            .uri(path)
            .insert_header(("Origin", self.origin.clone()))
            .set_form(fields);
        self.send(req).await
    }

    /// The CSRF token the next form POST carries: the last one a page showed, else one
    /// fetched from the user menu (a signed-in user's) or the login modal (a visitor's,
    /// bound to the nonce cookie that comes with it).
    pub async fn csrf_token(&mut self) -> String {
        if let Some(token) = &self.csrf {
            return token.clone();
        }
        for route in ["auth:user_menu", "auth:login"] {
            let path = self.web.settings().path(route);
            if let Some(token) = self.get(&path).await.csrf_token() {
                return token;
            }
        }
        String::new()
    }

    /// Signs in with a password through the login modal: what the login POST answered
    /// (a redirect to the post-sign-in page, or the 2FA modal when a second factor is
    /// asked for).
    pub async fn sign_in(&mut self, username: &str, password: &str) -> TestResponse {
        let login = self.web.settings().path("auth:login");
        self.get(&login).await;
        self.post_form(&login, &[("username", username), ("password", password)])
            .await
    }

    /// Signs in with a password and, when the 2FA modal asks for it, the TOTP code of
    /// `secret` at the app's clock now: what the 2FA POST answered (the "trust this
    /// device" offer or a redirect; the session has signed in with `2fa` either way).
    /// When no second factor is asked for (a trusted device), what the login POST
    /// answered. A code is good once: advance the app's clock by a TOTP step before
    /// signing in with the same secret again.
    pub async fn sign_in_with_totp(
        &mut self,
        username: &str,
        password: &str,
        secret: &[u8],
    ) -> TestResponse {
        let two_factor = self.web.settings().path("auth:auth_2fa");
        let first = self.sign_in(username, password).await;
        let asked = first.body.contains("name=\"code\"")
            || first
                .header("Location")
                .is_some_and(|to| to.starts_with(&two_factor));
        if !asked {
            return first;
        }
        let auth = self.web.auth();
        let code = totp::code_at(secret, &auth.settings().totp, auth.now());
        self.post_form(&two_factor, &[("code", &code)]).await
    }

    /// Signs out through the user menu's form.
    pub async fn sign_out(&mut self) -> TestResponse {
        let logout = self.web.settings().path("auth:logout");
        self.post_form(&logout, &[]).await
    }
}
