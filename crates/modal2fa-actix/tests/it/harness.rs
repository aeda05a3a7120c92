//! The browser of the flow tests: `modal2fa_actix::testing::TestClient` (cookie jar, CSRF
//! token, same-origin `Origin`) over an app with alice's account, guarded routes, the
//! memory ports (clock, lockout, sessions) at hand, and the steps most tests share.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, HttpResponse, test};
use modal2fa_actix::testing::{TestClient, TestResponse};
use modal2fa_actix::{
    ManageUsers, Modal2faWeb, Permitted, RequireMethods, SecondFactorUser, SignedInUser,
    TwoFactorOnly,
};
use modal2fa_core::client_ip::ClientIpConfig;
use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::{Clock, LockoutStore};
use modal2fa_core::services::NewAccount;
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{
    AuthMethod, AuthPolicy, DefaultPolicy, Modal2fa, Ports, ServerSecret, Settings,
};
use modal2fa_test_support::MemoryPorts;

pub const PASSWORD: &str = "correct horse battery";

pub async fn protected(user: SignedInUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("hello {}", user.user.username))
}

pub async fn secure_area(user: SecondFactorUser) -> HttpResponse {
    HttpResponse::Ok().body(format!(
        "secure {} via {}",
        user.0.user.username, user.0.method
    ))
}

pub async fn strict_area(user: RequireMethods<TwoFactorOnly>) -> HttpResponse {
    HttpResponse::Ok().body(format!("strict {}", user.0.user.username))
}

pub async fn user_admin(user: Permitted<ManageUsers>) -> HttpResponse {
    HttpResponse::Ok().body(format!("admin {}", user.0.user.username))
}

/// The default policy, but a trusted-device (`cookie`) session may manage factors.
pub struct CookieManagesFactors;

impl AuthPolicy for CookieManagesFactors {
    fn factor_management_methods(&self) -> Vec<AuthMethod> {
        let mut methods = DefaultPolicy.factor_management_methods();
        methods.push(AuthMethod::Cookie);
        methods
    }
}

pub fn settings(proxies: usize) -> Settings {
    Settings {
        password_hashing: PasswordHashing::Argon2id {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        client_ip: ClientIpConfig {
            trusted_proxy_count: proxies,
            ..Default::default()
        },
        // The test client's origin (actix_web::test requests are for localhost:8080).
        relying_party: Some(
            modal2fa_core::settings::RelyingParty::new(
                "localhost",
                "http://localhost:8080",
                "modal2fa",
            )
            .unwrap(),
        ),
        ..Settings::default()
    }
}

/// The core services over `ports` with `policy`, trusting `proxies` proxies, cheap
/// hashing, and alice's account (password [`PASSWORD`]).
pub async fn services(ports: Ports, policy: Arc<dyn AuthPolicy>, proxies: usize) -> Modal2fa {
    let secret = ServerSecret::new(vec![4; 32]).unwrap();
    let auth = Modal2fa::new(ports, policy, settings(proxies), &secret);
    auth.account
        .create_user(NewAccount {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            first_name: "Alice".into(),
            last_name: "Liddell".into(),
            password: Some(PASSWORD.into()),
            superuser: false,
        })
        .await
        .unwrap();
    auth
}

/// `browser!(proxies[, Some(store)[, secure[, policy]]])`: a [`Browser`] (htmx on) for an
/// app trusting `proxies` proxies. With `Some(store)`, every store port is that database;
/// clock and mail stay in memory. With `secure`, the cookies are `Secure` and `__Host-`
/// (plain-http development if not). `policy` defaults to the default policy.
macro_rules! browser {
    ($proxies:expr) => {
        browser!($proxies, None::<modal2fa_sea_orm::SeaOrmStore>)
    };
    ($proxies:expr, $store:expr) => {
        browser!($proxies, $store, false)
    };
    ($proxies:expr, $store:expr, $secure:expr) => {
        browser!($proxies, $store, $secure, modal2fa_core::DefaultPolicy)
    };
    ($proxies:expr, $store:expr, $secure:expr, $policy:expr) => {{
        use std::sync::Arc;
        let mem = Arc::new(modal2fa_test_support::MemoryPorts::new());
        let mut ports = mem.ports.clone();
        if let Some(store) = $store {
            let s = Arc::new(store);
            ports.users = s.clone();
            ports.factors = s.clone();
            ports.trusted_devices = s.clone();
            ports.lockout = s.clone();
            ports.sessions = s.clone();
            ports.outbox = s.clone();
            ports.audit = s;
        }
        let auth = $crate::harness::services(ports, Arc::new($policy), $proxies).await;
        let web = modal2fa_actix::Modal2faWeb::builder(auth)
            .settings(modal2fa_actix::WebSettings {
                secure_cookies: $secure,
                public_url: Some("http://localhost:8080".into()),
                ..modal2fa_actix::WebSettings::default()
            })
            .build()
            .unwrap();
        let w = web.clone();
        let app = actix_web::test::init_service(
            actix_web::App::new()
                .wrap(web.security_headers())
                .wrap(web.session_middleware())
                .configure(move |c| w.configure(c))
                .route(
                    "/protected",
                    actix_web::web::get().to($crate::harness::protected),
                )
                .route(
                    "/secure",
                    actix_web::web::get().to($crate::harness::secure_area),
                )
                .route(
                    "/users",
                    actix_web::web::get().to($crate::harness::user_admin),
                )
                .route(
                    "/strict",
                    actix_web::web::get().to($crate::harness::strict_area),
                ),
        )
        .await;
        $crate::harness::Browser::new(modal2fa_actix::testing::TestClient::new(app, &web), mem)
    }};
}
pub(crate) use browser;

/// A test client for an app with nothing but the session middleware and the modals.
pub async fn modal_client(
    web: &Modal2faWeb,
) -> TestClient<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let w = web.clone();
    let app = test::init_service(
        App::new()
            .wrap(web.session_middleware())
            .configure(move |c| w.configure(c)),
    )
    .await;
    TestClient::new(app, web)
}

/// The test client, with the memory ports behind the app.
pub struct Browser<S> {
    client: TestClient<S>,
    pub mem: Arc<MemoryPorts>,
}

impl<S> Deref for Browser<S> {
    type Target = TestClient<S>;
    fn deref(&self) -> &TestClient<S> {
        &self.client
    }
}

impl<S> DerefMut for Browser<S> {
    fn deref_mut(&mut self) -> &mut TestClient<S> {
        &mut self.client
    }
}

impl<S, B> Browser<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// An htmx browser (as the modal runtime is).
    pub fn new(mut client: TestClient<S>, mem: Arc<MemoryPorts>) -> Self {
        client.set_htmx(true);
        Self { client, mem }
    }

    /// Delivers the outbox as the server's sender would (the same server secret opens
    /// it), then returns every notification sent so far.
    pub async fn mail(&self) -> Vec<modal2fa_core::ports::Notification> {
        let secret = ServerSecret::new(vec![4; 32]).unwrap();
        let sender = Modal2fa::new(
            self.mem.ports.clone(),
            Arc::new(DefaultPolicy),
            settings(0),
            &secret,
        );
        sender.outbox.deliver_all_due().await.unwrap();
        self.mem.notifier.sent()
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> TestResponse {
        self.client.post_form(path, form).await
    }

    /// GETs `page`, then POSTs `form` to `action` with the page's CSRF token.
    pub async fn submit(
        &mut self,
        page: &str,
        action: &str,
        form: &[(&str, &str)],
    ) -> TestResponse {
        self.get(page).await;
        self.post(action, form).await
    }

    pub async fn login(&mut self, password: &str) -> TestResponse {
        self.submit(
            "/auth/login/",
            "/auth/login/",
            &[
                ("username", "alice"),
                ("password", password),
                ("next", "/protected"),
            ],
        )
        .await
    }

    pub fn code(&self, secret: &[u8]) -> String {
        totp::code_at(secret, &TotpParams::default(), self.mem.clock.now())
    }

    /// Signs in with the password and enrols TOTP; returns the secret.
    pub async fn enrol(&mut self) -> Vec<u8> {
        let r = self.login(PASSWORD).await;
        assert_eq!(r.header("HX-Redirect"), Some("/protected"), "{}", r.body);
        let r = self.get("/auth/2fa/totp/").await;
        assert!(r.body.contains("<svg"), "the QR code is inline SVG");
        let secret_text = between(&r.body, "id=\"modal2fa-secret\">", "<").replace(' ', "");
        let secret = totp::decode_secret(&secret_text).unwrap();
        let enrolment = between(&r.body, "name=\"enrolment\" value=\"", "\"").to_owned();
        let code = self.code(&secret);
        let r = self
            .post(
                "/auth/2fa/totp/",
                &[("code", &code), ("enrolment", &enrolment)],
            )
            .await;
        assert_eq!(r.header("HX-Refresh"), Some("true"), "{}", r.body);
        secret
    }

    /// Enrols TOTP, then signs in with a code and trusts the browser, then signs out
    /// and in again with the password: a trusted-device (`cookie`) session. Returns the
    /// secret.
    pub async fn cookie_session(&mut self) -> Vec<u8> {
        let secret = self.enrol().await;
        self.logout().await;
        self.mem.clock.advance(time::Duration::seconds(30));
        let r = self.login(PASSWORD).await;
        let code = self.code(&secret);
        let token = r.csrf_token().unwrap();
        let r = self
            .post("/auth/2fa/", &[("code", &code), ("csrf_token", &token)])
            .await;
        assert!(r.body.contains("Trust this device"), "{}", r.body);
        self.post(
            "/auth/trust-device/",
            &[("name", "Laptop"), ("trust", "yes")],
        )
        .await;
        self.logout().await;
        let r = self.login(PASSWORD).await;
        assert_eq!(r.header("HX-Redirect"), Some("/protected"), "{}", r.body);
        secret
    }

    /// A failed login POST that arrives with `X-Forwarded-For: xff`.
    pub async fn fail_login_via(&mut self, xff: &str) {
        let token = self.get("/auth/login/").await.csrf_token().unwrap();
        let req = test::TestRequest::post()
            .uri("/auth/login/")
            .insert_header(("Sec-Fetch-Site", "same-origin"))
            .insert_header(("X-Forwarded-For", xff.to_owned()))
            .set_form([
                ("username", "alice"),
                ("password", "wrong"),
                ("csrf_token", &token),
            ]);
        self.send(req).await;
    }

    /// Whether the IP lockout counter of `ip` exists.
    pub async fn ip_counted(&self, ip: &str) -> bool {
        self.mem
            .lockout
            .get(&LockoutKey::Ip(ip.into()))
            .await
            .unwrap()
            .is_some()
    }

    pub async fn logout(&mut self) {
        let token = self.get("/auth/menu/").await.csrf_token().unwrap();
        let r = self.post("/auth/logout/", &[("csrf_token", &token)]).await;
        assert_eq!(r.header("HX-Redirect"), Some("/"));
    }
}

pub fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in {s}"))
        + start.len();
    let to = s[from..].find(end).unwrap() + from;
    &s[from..to]
}
