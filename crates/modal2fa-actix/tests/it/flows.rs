//! Every sign-in flow over HTTP, in process, with cookies and CSRF: the modals as
//! htmx fragments and as full pages, refusals, TOTP enrolment and sign-in, trusted
//! devices with rotation, step-up, proxies, headers and guards.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, HttpResponse, test, web};
use modal2fa_actix::{
    ManageUsers, Modal2faWeb, Permitted, RequireMethods, SecondFactorUser, SignedInUser,
    TwoFactorOnly, WebSettings,
};
use modal2fa_core::client_ip::ClientIpConfig;
use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::{Clock, LockoutStore};
use modal2fa_core::services::NewAccount;
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_sea_orm::SeaOrmStore;
use modal2fa_test_support::MemoryPorts;
use time::Duration;

const PASSWORD: &str = "correct horse battery";

async fn protected(user: SignedInUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("hello {}", user.user.username))
}

async fn secure_area(user: SecondFactorUser) -> HttpResponse {
    HttpResponse::Ok().body(format!(
        "secure {} via {}",
        user.0.user.username, user.0.method
    ))
}

async fn strict_area(user: RequireMethods<TwoFactorOnly>) -> HttpResponse {
    HttpResponse::Ok().body(format!("strict {}", user.0.user.username))
}

async fn user_admin(user: Permitted<ManageUsers>) -> HttpResponse {
    HttpResponse::Ok().body(format!("admin {}", user.0.user.username))
}

struct Browser<S> {
    app: S,
    mem: Arc<MemoryPorts>,
    jar: HashMap<String, String>,
    peer: SocketAddr,
    htmx: bool,
}

fn settings(proxies: usize) -> Settings {
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
        ..Settings::default()
    }
}

macro_rules! browser {
    ($proxies:expr) => {
        browser!($proxies, None::<SeaOrmStore>)
    };
    ($proxies:expr, $store:expr) => {
        browser!($proxies, $store, false)
    };
    // With `Some(store)`, every store port is that database; clock and mail stay in memory.
    // With `secure`, the cookies are `Secure` and `__Host-` (plain-http development if not).
    ($proxies:expr, $store:expr, $secure:expr) => {{
        let mem = Arc::new(MemoryPorts::new());
        let mut ports = mem.ports.clone();
        if let Some(store) = $store {
            let s = Arc::new(store);
            ports.users = s.clone();
            ports.factors = s.clone();
            ports.trusted_devices = s.clone();
            ports.lockout = s.clone();
            ports.sessions = s.clone();
            ports.audit = s;
        }
        let auth = Modal2fa::new(
            ports,
            Arc::new(DefaultPolicy),
            settings($proxies),
            &ServerSecret::new(vec![4; 32]).unwrap(),
        );
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
        let web = Modal2faWeb::builder(auth)
            .settings(WebSettings {
                secure_cookies: $secure,
                ..WebSettings::default()
            })
            .build()
            .unwrap();
        let w = web.clone();
        let app = test::init_service(
            App::new()
                .wrap(web.security_headers())
                .wrap(web.session_middleware())
                .configure(move |c| w.configure(c))
                .route("/protected", web::get().to(protected))
                .route("/secure", web::get().to(secure_area))
                .route("/users", web::get().to(user_admin))
                .route("/strict", web::get().to(strict_area)),
        )
        .await;
        Browser {
            app,
            mem,
            jar: HashMap::new(),
            peer: "203.0.113.7:5000".parse().unwrap(),
            htmx: true,
        }
    }};
}

struct Resp {
    status: u16,
    headers: actix_web::http::header::HeaderMap,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<S, B> Browser<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: test::TestRequest) -> Resp {
        let mut req = req.peer_addr(self.peer).insert_header((
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        ));
        if self.htmx {
            req = req.insert_header(("HX-Request", "true"));
        }
        if !self.jar.is_empty() {
            req = req.insert_header(("Cookie", self.cookie_header()));
        }
        let resp = test::call_service(&self.app, req.to_request()).await;
        for c in resp.response().cookies() {
            let expired = c.max_age().is_some_and(|m| m.is_zero()) || c.value().is_empty();
            if expired {
                self.jar.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Resp {
        self.send(test::TestRequest::get().uri(path)).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send(
            test::TestRequest::post()
                .uri(path)
                .insert_header(("Sec-Fetch-Site", "same-origin"))
                .set_form(form),
        )
        .await
    }

    /// GETs `page`, then POSTs `form` to `action` with the page's CSRF token.
    async fn submit(&mut self, page: &str, action: &str, form: &[(&str, &str)]) -> Resp {
        let r = self.get(page).await;
        let token = csrf(&r.body);
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf_token", &token));
        self.post(action, &fields).await
    }

    async fn login(&mut self, password: &str) -> Resp {
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

    fn code(&self, secret: &[u8]) -> String {
        totp::code_at(secret, &TotpParams::default(), self.mem.clock.now())
    }

    /// Signs in with the password and enrols TOTP; returns the secret.
    async fn enrol(&mut self) -> Vec<u8> {
        let r = self.login(PASSWORD).await;
        assert_eq!(r.header("HX-Redirect"), Some("/protected"), "{}", r.body);
        let r = self.get("/auth/2fa/totp/").await;
        assert!(r.body.contains("<svg"), "the QR code is inline SVG");
        let secret_text = between(&r.body, "id=\"modal2fa-secret\">", "<").replace(' ', "");
        let secret = totp::decode_secret(&secret_text).unwrap();
        let token = csrf(&r.body);
        let enrolment = between(&r.body, "name=\"enrolment\" value=\"", "\"").to_owned();
        let code = self.code(&secret);
        let r = self
            .post(
                "/auth/2fa/totp/",
                &[
                    ("code", &code),
                    ("enrolment", &enrolment),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(r.header("HX-Refresh"), Some("true"), "{}", r.body);
        secret
    }

    /// A failed login POST that arrives with `X-Forwarded-For: xff`.
    async fn fail_login_via(&mut self, xff: &str) {
        let token = csrf(&self.get("/auth/login/").await.body);
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
    async fn ip_counted(&self, ip: &str) -> bool {
        self.mem
            .lockout
            .get(&LockoutKey::Ip(ip.into()))
            .await
            .unwrap()
            .is_some()
    }

    async fn logout(&mut self) {
        let r = self.get("/auth/menu/").await;
        let token = csrf(&r.body);
        let r = self.post("/auth/logout/", &[("csrf_token", &token)]).await;
        assert_eq!(r.header("HX-Redirect"), Some("/"));
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in {s}"))
        + start.len();
    let to = s[from..].find(end).unwrap() + from;
    &s[from..to]
}

fn csrf(html: &str) -> String {
    between(html, "name=\"csrf_token\" value=\"", "\"").to_owned()
}

#[actix_web::test]
async fn the_login_modal_is_a_fragment_for_htmx_and_a_page_otherwise_and_writes_nothing() {
    let mut b = browser!(0);
    let r = b.get("/auth/login/").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("name=\"username\"") && !r.body.contains("<html"));
    b.htmx = false;
    let r = b.get("/auth/login/?next=/protected").await;
    assert!(r.body.starts_with("<!doctype html>") && r.body.contains("modal2fa-page"));
    assert!(r.body.contains("value=\"/protected\""));
    assert_eq!(
        b.jar.keys().collect::<Vec<_>>(),
        ["modal2fa_csrf"],
        "an anonymous GET sets only the CSRF nonce cookie, no session"
    );
    assert!(b.mem.sessions.is_empty(), "and stores nothing");
}

/// The `Set-Cookie` of `name` in `r`, if any.
fn set_cookie<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
}

#[actix_web::test]
async fn an_anonymous_form_comes_with_a_nonce_cookie_set_once_and_strictly() {
    let mut b = browser!(0);
    let first = b.get("/auth/login/").await;
    let cookie = set_cookie(&first, "modal2fa_csrf").expect("a nonce cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(
        !cookie.contains("Secure") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let nonce = b.jar["modal2fa_csrf"].clone();
    assert!(nonce.len() >= 43, "at least 256 bits");
    assert!(
        !first.body.contains(&nonce),
        "the page never shows the nonce"
    );
    let again = b.get("/auth/login/").await;
    assert_eq!(
        set_cookie(&again, "modal2fa_csrf"),
        None,
        "kept, not re-sent"
    );
    assert_eq!(b.jar["modal2fa_csrf"], nonce);
    b.jar.insert("modal2fa_csrf".into(), "not-a-nonce".into());
    let replaced = b.get("/auth/login/").await;
    assert!(
        set_cookie(&replaced, "modal2fa_csrf").is_some(),
        "a malformed one is replaced"
    );
    assert_ne!(b.jar["modal2fa_csrf"], "not-a-nonce");
    assert!(b.mem.sessions.is_empty(), "and nothing is stored");

    let mut secure = browser!(0, None::<SeaOrmStore>, true);
    let r = secure.get("/auth/login/").await;
    let cookie = set_cookie(&r, "__Host-modal2fa_csrf").expect("a __Host- nonce cookie");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
}

#[actix_web::test]
async fn an_anonymous_token_works_only_with_the_nonce_cookie_it_was_minted_for() {
    let mut b = browser!(0);
    let token_a = csrf(&b.get("/auth/login/").await.body);
    let client_a = b.jar.clone();
    b.jar.clear();
    b.get("/auth/login/").await;
    let client_b = b.jar.clone();
    assert_ne!(client_a["modal2fa_csrf"], client_b["modal2fa_csrf"]);
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("next", "/protected"),
        ("csrf_token", token_a.as_str()),
    ];
    b.jar = client_b;
    let r = b.post("/auth/login/", &form).await;
    assert_eq!(r.status, 403, "A's token with B's nonce cookie");
    assert_eq!(
        r.body,
        "The form has expired or did not come from this site. Reload the page and try again."
    );
    b.jar.clear();
    let r = b.post("/auth/login/", &form).await;
    assert_eq!(r.status, 403, "A's token with no nonce cookie");
    assert!(b.mem.sessions.is_empty());
    b.jar = client_a;
    let r = b.post("/auth/login/", &form).await;
    assert_eq!(
        r.header("HX-Redirect"),
        Some("/protected"),
        "A's token with A's cookie: {}",
        r.body
    );
}

#[actix_web::test]
async fn an_origin_must_match_the_scheme_as_well_as_the_host_and_port() {
    let form = |token: &str| {
        vec![
            ("username".to_owned(), "nobody".to_owned()),
            ("password".to_owned(), "wrong".to_owned()),
            ("csrf_token".to_owned(), token.to_owned()),
        ]
    };
    // No Sec-Fetch-Site (an older browser): the Origin decides.
    let from = |origin: &str, token: &str| {
        test::TestRequest::post()
            .uri("/auth/login/")
            .insert_header(("Host", "app.example:8080"))
            .insert_header(("Origin", origin.to_owned()))
            .set_form(form(token))
    };
    let refused = "Please enter a correct username and password";
    let mut b = browser!(0);
    let token = csrf(&b.get("/auth/login/").await.body);
    for origin in [
        "https://app.example:8080",
        "http://app.example:8081",
        "http://evil.example:8080",
        "null",
    ] {
        assert_eq!(b.send(from(origin, &token)).await.status, 403, "{origin}");
    }
    let r = b.send(from("http://app.example:8080", &token)).await;
    assert!(
        r.status == 200 && r.body.contains(refused),
        "{}: {}",
        r.status,
        r.body
    );
    let spoofed =
        from("https://app.example:8080", &token).insert_header(("X-Forwarded-Proto", "https"));
    assert_eq!(
        b.send(spoofed).await.status,
        403,
        "X-Forwarded-Proto from a peer that is no trusted proxy is ignored"
    );

    // Behind a trusted TLS proxy the scheme is the one the proxy forwards.
    let mut p = browser!(1);
    let token = csrf(&p.get("/auth/login/").await.body);
    let https = |origin: &str| from(origin, &token).insert_header(("X-Forwarded-Proto", "https"));
    let r = p.send(https("https://app.example:8080")).await;
    assert!(
        r.status == 200 && r.body.contains(refused),
        "{}: {}",
        r.status,
        r.body
    );
    assert_eq!(p.send(https("http://app.example:8080")).await.status, 403);
    assert_eq!(
        p.send(from("https://app.example:8080", &token))
            .await
            .status,
        403,
        "no forwarded scheme: the connection's, http"
    );
}

/// A migrated SQLite file and its path, to remove afterwards.
async fn sqlite_store(name: &str) -> (SeaOrmStore, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "modal2fa_flows_{name}_{}.sqlite",
        std::process::id()
    ));
    std::fs::remove_file(&path).ok();
    let store = SeaOrmStore::connect(&format!("sqlite://{}?mode=rwc", path.display()), 2)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (store, path)
}

#[actix_web::test]
async fn an_anonymous_visitor_costs_no_statement_and_each_sign_in_only_a_few() {
    let (store, path) = sqlite_store("statements").await;
    let mut b = browser!(0, Some(store.clone()));
    let run = || store.statements_run();

    let before = run();
    b.get("/auth/login/").await;
    b.htmx = false;
    b.get("/auth/login/?next=/protected").await;
    b.htmx = true;
    assert_eq!(
        run(),
        before,
        "the login modal, fragment or page, reads nothing"
    );

    let before = run();
    let r = b.login("wrong password").await;
    assert!(
        r.body
            .contains("Please enter a correct username and password"),
        "{}",
        r.body
    );
    let failed = run() - before;

    let before = run();
    let r = b.login(PASSWORD).await;
    assert_eq!(r.header("HX-Redirect"), Some("/protected"), "{}", r.body);
    let password = run() - before;

    let secret = b.enrol().await;
    b.logout().await;
    b.mem.clock.advance(Duration::seconds(30));
    let before = run();
    let r = b.login(PASSWORD).await;
    assert!(r.body.contains("name=\"code\""), "{}", r.body);
    let code = b.code(&secret);
    let r = b
        .submit(
            "/auth/2fa/",
            "/auth/2fa/",
            &[("code", &code), ("next", "/protected")],
        )
        .await;
    assert!(r.body.contains("Trust this device"), "{}", r.body);
    let totp = run() - before;

    let token = csrf(&r.body);
    let r = b
        .post(
            "/auth/trust-device/",
            &[("name", "Laptop"), ("trust", "yes"), ("csrf_token", &token)],
        )
        .await;
    assert!(r.header("HX-Redirect").is_some(), "{}", r.body);
    b.logout().await;
    let before = run();
    let r = b.login(PASSWORD).await;
    assert_eq!(r.header("HX-Redirect"), Some("/protected"), "{}", r.body);
    let trusted = run() - before;

    eprintln!(
        "statements: failed {failed}, password {password}, password + TOTP {totp}, trusted device {trusted}"
    );
    // The budgets of docs/PERFORMANCE.md rest on these counts; a new round trip on a
    // sign-in path should be a decision, not an accident. Here the address has a counter
    // from the first failure, so it is read and taken back at each success. Failed: the
    // attempt counted on the account (a new counter: one insert) and the address (read,
    // compare-and-set), the user, the audit event. Password: read, both counts, user,
    // factor counts, clearing the account's count, taking back the address's, last login,
    // audit, session, and — the first sign-in of this account from this address — writing
    // the address down as known (later ones within the hour write nothing: the TOTP and
    // trusted-device sign-ins below do not). Password + TOTP over four requests: 7 at the password (the right
    // password stays counted while pending), the session read, 12 at the code (session,
    // user, the code counted on the second factor's own counter and taken back when right,
    // devices, step, clearing the password's count, last login, audit, renewal as one
    // statement). Trusted device: as password, with the
    // rotation (one statement) instead of the factor counts.
    assert!(failed <= 4, "a failed sign-in ran {failed} statements");
    assert!(
        password <= 11,
        "a password sign-in ran {password} statements"
    );
    assert!(
        totp <= 20,
        "a password + TOTP sign-in ran {totp} statements"
    );
    assert!(
        trusted <= 10,
        "a trusted-device sign-in ran {trusted} statements"
    );
    std::fs::remove_file(&path).ok();
}

#[actix_web::test]
async fn security_headers_are_on_every_response() {
    let mut b = browser!(0);
    let r = b.get("/auth/login/").await;
    let csp = r.header("Content-Security-Policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Referrer-Policy"), Some("same-origin"));
    b.htmx = false;
    let page = b.get("/auth/login/").await.body;
    assert!(page.contains("<script src=\"/auth/static/vendor/htmx/htmx.min.js\"></script>"));
    assert!(page.contains("<script src=\"/auth/static/modal2fa.js\"></script>"));
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script src=").count(),
        "no inline scripts"
    );
}

#[actix_web::test]
async fn static_assets_are_served_with_a_content_type_and_an_etag() {
    let mut b = browser!(0);
    let r = b.get("/auth/static/vendor/htmx/htmx.min.js").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("Content-Type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(r.header("ETag").is_some());
    assert_eq!(b.get("/auth/static/../Cargo.toml").await.status, 404);
}

#[actix_web::test]
async fn a_post_without_a_csrf_token_or_from_another_site_is_refused() {
    let mut b = browser!(0);
    let r = b
        .post(
            "/auth/login/",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 403);
    let token = csrf(&b.get("/auth/login/").await.body);
    let cross = test::TestRequest::post()
        .uri("/auth/login/")
        .insert_header(("Sec-Fetch-Site", "cross-site"))
        .set_form([
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ]);
    assert_eq!(b.send(cross).await.status, 403);
    let forged = b
        .post(
            "/auth/login/",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf_token", "123.abc"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(!b.jar.contains_key("modal2fa_session"), "no session");
}

#[actix_web::test]
async fn a_password_sign_in_renews_the_session_and_goes_to_a_local_next_only() {
    let mut b = browser!(0);
    let r = b
        .submit(
            "/auth/login/",
            "/auth/login/",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(
        r.header("HX-Redirect"),
        Some("/"),
        "an off-site next is ignored"
    );
    assert!(b.jar.contains_key("modal2fa_session"));
    assert_eq!(b.get("/protected").await.body, "hello alice");
    // Without JavaScript the same flow answers with a 303.
    let mut plain = browser!(0);
    plain.htmx = false;
    let r = plain
        .submit(
            "/auth/login/",
            "/auth/login/",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", "/protected"),
            ],
        )
        .await;
    assert_eq!((r.status, r.header("Location")), (303, Some("/protected")));
}

#[actix_web::test]
async fn a_wrong_password_re_renders_the_modal_and_a_locked_user_is_refused_even_with_the_right_one()
 {
    let mut b = browser!(0);
    let r = b.login("wrong password").await;
    assert!(
        r.body
            .contains("Please enter a correct username and password.")
    );
    assert!(
        !b.jar.contains_key("modal2fa_session"),
        "a failed login creates no session"
    );
    for i in 0..9 {
        b.peer = format!("198.51.100.{i}:4000").parse().unwrap();
        b.login("wrong password").await;
    }
    let r = b.login(PASSWORD).await;
    assert!(r.body.contains("Too many failed attempts"), "{}", r.body);
    assert!(b.get("/protected").await.status == 303);
}

#[actix_web::test]
async fn a_locked_ip_is_refused_even_with_the_right_password() {
    let mut b = browser!(0);
    for i in 0..20 {
        b.submit(
            "/auth/login/",
            "/auth/login/",
            &[("username", &format!("nobody{i}")), ("password", "guess")],
        )
        .await;
    }
    let r = b.login(PASSWORD).await;
    assert!(r.body.contains("Too many failed attempts"), "{}", r.body);
}

#[actix_web::test]
async fn totp_enrolment_then_sign_in_with_a_code_and_a_trusted_device() {
    let mut b = browser!(0);
    let secret = b.enrol().await;
    b.logout().await;
    assert_eq!(b.get("/protected").await.status, 303, "signed out");

    b.mem.clock.advance(Duration::seconds(30));
    let r = b.login(PASSWORD).await;
    assert!(
        r.body.contains("name=\"code\""),
        "the 2FA modal replaces the login modal"
    );
    let pending_cookie = b.jar["modal2fa_session"].clone();
    assert_eq!(
        b.get("/protected").await.status,
        303,
        "a pending login reaches nothing"
    );
    let token = csrf(&r.body);
    let r = b
        .post(
            "/auth/2fa/",
            &[
                ("code", "000000"),
                ("csrf_token", &token),
                ("next", "/protected"),
            ],
        )
        .await;
    assert!(r.body.contains("The code is incorrect."));
    let code = b.code(&secret);
    let r = b
        .post(
            "/auth/2fa/",
            &[
                ("code", &code),
                ("csrf_token", &token),
                ("next", "/protected"),
            ],
        )
        .await;
    assert!(r.body.contains("Trust this device"), "{}", r.body);
    assert_ne!(
        b.jar["modal2fa_session"], pending_cookie,
        "the session id changes after the second factor"
    );
    let token = csrf(&r.body);
    let r = b
        .post(
            "/auth/trust-device/",
            &[
                ("name", "Laptop"),
                ("trust", "yes"),
                ("csrf_token", &token),
                ("next", "/protected"),
            ],
        )
        .await;
    assert_eq!(r.header("HX-Redirect"), Some("/protected"));
    let first_device_cookie = b.jar["modal2fa_device"].clone();
    assert_eq!(b.get("/secure").await.body, "secure alice via 2fa");

    // Next time the password is enough, and the device cookie rotates.
    b.logout().await;
    let r = b.login(PASSWORD).await;
    assert_eq!(r.header("HX-Redirect"), Some("/protected"), "{}", r.body);
    assert_ne!(b.jar["modal2fa_device"], first_device_cookie);
    assert_eq!(b.get("/protected").await.body, "hello alice");

    // A copied (superseded) cookie is refused and revokes the device.
    b.logout().await;
    b.jar.insert("modal2fa_device".into(), first_device_cookie);
    let r = b.login(PASSWORD).await;
    assert!(
        r.body.contains("name=\"code\""),
        "the copied cookie does not skip the code"
    );
    assert!(!b.jar.contains_key("modal2fa_device"), "and is cleared");
}

#[actix_web::test]
async fn a_replayed_code_and_an_expired_pending_login_are_refused() {
    let mut b = browser!(0);
    let secret = b.enrol().await;
    b.logout().await;
    b.mem.clock.advance(Duration::seconds(30));
    let r = b.login(PASSWORD).await;
    let token = csrf(&r.body);
    let code = b.code(&secret);
    b.post("/auth/2fa/", &[("code", &code), ("csrf_token", &token)])
        .await;
    b.logout().await;
    let r = b.login(PASSWORD).await;
    let token = csrf(&r.body);
    let r = b
        .post("/auth/2fa/", &[("code", &code), ("csrf_token", &token)])
        .await;
    assert!(r.body.contains("already been used"), "{}", r.body);
    b.mem.clock.advance(Duration::minutes(6));
    let r = b
        .post(
            "/auth/2fa/",
            &[("code", &b.code(&secret)), ("csrf_token", &token)],
        )
        .await;
    assert!(r.body.contains("took too long"), "{}", r.body);
}

#[actix_web::test]
async fn cancelling_the_2fa_modal_abandons_the_pending_login() {
    let mut b = browser!(0);
    b.enrol().await;
    b.logout().await;
    let r = b.login(PASSWORD).await;
    assert!(
        r.body
            .contains("data-modal2fa-cancel=\"/auth/2fa/cancel/\"")
    );
    let token = csrf(&r.body);
    let r = b.post("/auth/2fa/cancel/", &[("csrf_token", &token)]).await;
    assert_eq!(r.status, 204);
    assert!(
        b.get("/auth/2fa/").await.body.contains("name=\"username\""),
        "back to the login modal"
    );
}

#[actix_web::test]
async fn a_cookie_session_is_stepped_up_before_managing_devices_or_entering_the_secure_area() {
    let mut b = browser!(0);
    let secret = b.enrol().await;
    b.logout().await;
    b.mem.clock.advance(Duration::seconds(30));
    let r = b.login(PASSWORD).await;
    let token = csrf(&r.body);
    let r = b
        .post(
            "/auth/2fa/",
            &[("code", &b.code(&secret)), ("csrf_token", &token)],
        )
        .await;
    let token = csrf(&r.body);
    b.post(
        "/auth/trust-device/",
        &[("name", "Laptop"), ("trust", "yes"), ("csrf_token", &token)],
    )
    .await;
    b.logout().await;
    b.login(PASSWORD).await;
    // A cookie session: the secure areas send it to the 2FA modal.
    assert_eq!(b.get("/strict").await.status, 303);
    let r = b.get("/secure").await;
    assert_eq!(r.status, 303);
    assert!(
        r.header("Location")
            .unwrap()
            .starts_with("/auth/2fa/?next=%2Fsecure")
            || r.header("Location")
                .unwrap()
                .starts_with("/auth/2fa/?next=/secure")
    );
    let devices = b.get("/auth/devices/").await;
    assert!(devices.body.contains("Laptop"));
    let id = between(&devices.body, "/auth/devices/", "/remove/").to_owned();
    let token = csrf(&devices.body);
    let r = b
        .post(
            &format!("/auth/devices/{id}/remove/"),
            &[("csrf_token", &token)],
        )
        .await;
    assert!(
        r.body.contains("name=\"code\""),
        "removing a device needs a step-up first: {}",
        r.body
    );
    b.mem.clock.advance(Duration::seconds(30));
    let before = b.jar["modal2fa_session"].clone();
    let token = csrf(&r.body);
    b.post(
        "/auth/2fa/",
        &[("code", &b.code(&secret)), ("csrf_token", &token)],
    )
    .await;
    assert_ne!(
        b.jar["modal2fa_session"], before,
        "the step-up renews the session id"
    );
    assert_eq!(b.get("/secure").await.body, "secure alice via 2fa");
    assert_eq!(b.get("/strict").await.body, "strict alice");
    let devices = b.get("/auth/devices/").await;
    let token = csrf(&devices.body);
    let r = b
        .post(
            &format!("/auth/devices/{id}/remove/"),
            &[("csrf_token", &token)],
        )
        .await;
    assert!(r.body.contains("No trusted devices"), "{}", r.body);
}

#[actix_web::test]
async fn x_forwarded_for_is_ignored_with_no_trusted_proxy_and_honoured_with_one() {
    let mut b = browser!(0);
    b.fail_login_via("192.0.2.99").await;
    assert!(b.ip_counted("203.0.113.7").await, "the peer address counts");
    assert!(!b.ip_counted("192.0.2.99").await, "the header is ignored");

    let mut p = browser!(1);
    p.fail_login_via("6.6.6.6, 192.0.2.99").await;
    assert!(
        p.ip_counted("192.0.2.99").await,
        "the address the trusted proxy saw counts"
    );
    assert!(
        !p.ip_counted("6.6.6.6").await,
        "what the client claimed does not"
    );
}

#[actix_web::test]
async fn logging_out_kills_the_server_side_session_and_the_old_cookie_fails() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    let old = b.jar.clone();
    b.logout().await;
    b.jar = old;
    assert_eq!(
        b.get("/protected").await.status,
        303,
        "replaying the old cookie fails"
    );
}

#[actix_web::test]
async fn the_user_menu_offers_what_the_user_can_do() {
    let mut b = browser!(0);
    assert!(b.get("/auth/menu/").await.body.contains("Sign in"));
    b.login(PASSWORD).await;
    let menu = b.get("/auth/menu/").await.body;
    assert!(
        menu.contains("Alice Liddell")
            && menu.contains("Add 2FA")
            && menu.contains("Change password")
    );
    assert!(!menu.contains("Remove 2FA"));
}

#[actix_web::test]
async fn changing_the_password_needs_the_old_one() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    let r = b
        .submit(
            "/auth/change-password/",
            "/auth/change-password/",
            &[
                ("old_password", "nope"),
                ("new_password", "a new password"),
                ("new_password2", "a new password"),
            ],
        )
        .await;
    assert!(r.body.contains("incorrect"), "{}", r.body);
    let r = b
        .submit(
            "/auth/change-password/",
            "/auth/change-password/",
            &[
                ("old_password", PASSWORD),
                ("new_password", "a new password"),
                ("new_password2", "a new password"),
            ],
        )
        .await;
    assert_eq!(r.header("HX-Trigger"), Some("modal2fa:close"), "{}", r.body);
    b.logout().await;
    let r = b.login("a new password").await;
    assert_eq!(r.header("HX-Redirect"), Some("/protected"));
}

#[actix_web::test]
async fn the_permission_guard_refuses_a_signed_in_user_without_the_permission() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    let r = b.get("/users").await;
    assert_eq!(r.status, 403);
}

#[actix_web::test]
async fn a_wrong_password_keeps_the_username_in_the_form() {
    let mut b = browser!(0);
    let r = b.login("wrong password").await;
    assert!(
        r.body
            .contains("id=\"modal2fa-username\" name=\"username\" value=\"alice\""),
        "{}",
        r.body
    );
}

#[actix_web::test]
async fn a_user_without_a_factor_sent_to_the_2fa_modal_is_offered_the_set_up() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    let r = b.get("/secure").await;
    assert_eq!(r.status, 303);
    let r = b.get(r.header("Location").unwrap()).await;
    assert!(
        !r.body.contains("name=\"code\""),
        "no code is asked of a user who has no authenticator"
    );
    assert!(
        r.body.contains("href=\"/auth/2fa/totp/?next="),
        "{}",
        r.body
    );
}

#[actix_web::test]
async fn opening_the_authenticator_set_up_page_writes_nothing_however_often() {
    let (store, path) = sqlite_store("totp_get").await;
    let mut b = browser!(0, Some(store.clone()));
    let r = b.login(PASSWORD).await;
    assert_eq!(r.header("HX-Redirect"), Some("/protected"), "{}", r.body);
    b.get("/auth/2fa/totp/").await;
    let before = store.statements_run();
    for _ in 0..10 {
        let r = b.get("/auth/2fa/totp/").await;
        assert!(r.body.contains("name=\"enrolment\""), "{}", r.body);
    }
    let per_visit = (store.statements_run() - before) as f64 / 10.0;
    use modal2fa_core::ports::FactorStore;
    assert!(
        store
            .totp_devices(modal2fa_core::UserId(1))
            .await
            .unwrap()
            .is_empty(),
        "an enrolment row was stored by a GET"
    );
    // Reading the session, the user and the factor counts; no insert, no session write.
    assert!(per_visit <= 3.0, "{per_visit} statements per visit");
    std::fs::remove_file(path).ok();
}
