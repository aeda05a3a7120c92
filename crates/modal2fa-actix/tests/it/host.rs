//! modal2fa as a host uses it: the host's own layout with the CSRF token, the user menu
//! and the asset tags from the web layer, an inline script of its own, security headers
//! scoped to the mount point, and the appearance keys checked at build.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, test, web};
use modal2fa_actix::actix_session::Session;
use modal2fa_actix::testing::{TestClient, TestResponse};
use modal2fa_actix::{BuildError, Modal2faWeb, ModalAppearance, SecondFactorUser, WebSettings};
use modal2fa_core::DefaultPolicy;
use modal2fa_test_support::MemoryPorts;

use crate::harness::{PASSWORD, services};

/// The host's layout: its own inline script, the modals' tags, the CSRF `<meta>`, the
/// user menu. It never calls `with_csrf_cookie`.
async fn home(web: web::Data<Modal2faWeb>, req: HttpRequest, session: Session) -> HttpResponse {
    let page = format!(
        "<!doctype html><html><head>{}\n{}<script>window.hostInline = 1;</script></head>\
         <body><nav>{}</nav>\n{}</body></html>",
        web.csrf_meta_tag(&req),
        web.head_tags(),
        web.user_menu_html(&session).await,
        web.script_tags(),
    );
    HttpResponse::Ok().content_type("text/html").body(page)
}

/// A token for a form of the host's own.
async fn token(web: web::Data<Modal2faWeb>, req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok().body(web.csrf_token(&req))
}

async fn admin(user: SecondFactorUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("admin {}", user.0.user.username))
}

async fn built(settings: WebSettings) -> Modal2faWeb {
    let mem = MemoryPorts::new();
    let auth = services(mem.ports, Arc::new(DefaultPolicy), 0).await;
    Modal2faWeb::builder(auth)
        .settings(WebSettings {
            secure_cookies: false,
            ..settings
        })
        .build()
        .unwrap()
}

/// A test client for the host app, with the security headers scoped to the mount point
/// or, with `everywhere`, on every response.
macro_rules! host {
    ($web:expr, $everywhere:expr) => {{
        let web: &Modal2faWeb = &$web;
        let w = web.clone();
        let headers = if $everywhere {
            web.security_headers_everywhere()
        } else {
            web.security_headers()
        };
        let app = test::init_service(
            App::new()
                .wrap(headers)
                .wrap(web.session_middleware())
                .configure(move |c| w.configure(c))
                .route("/", web::get().to(home))
                .route("/token", web::get().to(token))
                .route("/admin", web::get().to(admin)),
        )
        .await;
        TestClient::new(app, web)
    }};
}

fn csp(r: &TestResponse) -> Option<&str> {
    r.header("Content-Security-Policy")
}

#[actix_web::test]
async fn the_strict_headers_are_on_the_modals_only_unless_the_host_opts_in_for_the_whole_app() {
    let web = built(WebSettings::default()).await;
    let mut scoped = host!(web, false);
    let page = scoped.get("/").await;
    assert!(page.body.contains("window.hostInline"), "{}", page.body);
    assert_eq!(csp(&page), None, "the host's page keeps its inline script");
    assert_eq!(page.header("X-Frame-Options"), None);
    let modal = scoped.get("/auth/login/").await;
    assert!(csp(&modal).is_some_and(|c| c.contains("script-src 'self'")));
    assert_eq!(modal.header("X-Frame-Options"), Some("DENY"));
    let asset = scoped.get("/auth/static/modal2fa.js").await;
    assert_eq!(asset.header("X-Content-Type-Options"), Some("nosniff"));

    let mut everywhere = host!(web, true);
    let page = everywhere.get("/").await;
    assert!(csp(&page).is_some_and(|c| c.contains("script-src 'self'")));
    assert_eq!(page.header("Referrer-Policy"), Some("same-origin"));
}

#[actix_web::test]
async fn a_token_from_a_host_page_signs_in_and_out_without_any_cookie_call_of_the_hosts() {
    let web = built(WebSettings::default()).await;
    let mut client = host!(web, false);
    let r = client.get("/token").await;
    assert!(
        r.set_cookie("modal2fa_csrf").is_some(),
        "the session middleware sets the nonce the token is bound to"
    );
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("csrf_token", r.body.as_str()),
    ];
    let r = client.post_form("/auth/login/", &form).await;
    assert_eq!((r.status, r.redirect()), (303, Some("/")), "{}", r.body);
    assert_eq!(
        client.get("/admin").await.status,
        303,
        "no second factor yet"
    );

    // Signed in, the token is the user's: it signs out.
    let token = client.get("/token").await.body;
    let r = client
        .post_form("/auth/logout/", &[("csrf_token", &token)])
        .await;
    assert_eq!((r.status, r.redirect()), (303, Some("/")));
    assert!(client.cookie("modal2fa_session").is_none());
}

#[actix_web::test]
async fn the_layouts_meta_tag_carries_a_token_the_modals_accept() {
    let web = built(WebSettings::default()).await;
    let mut client = host!(web, false);
    let page = client.get("/").await;
    let token = page.csrf_token().expect("a <meta name=\"csrf-token\">");
    assert!(
        page.body
            .contains(&format!("<meta name=\"csrf-token\" content=\"{token}\">"))
    );
    // The test client carries it: the login POST needs no token of the test's own.
    let r = client
        .post_form(
            "/auth/login/",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.redirect(), Some("/"), "{}", r.body);
}

#[actix_web::test]
async fn the_asset_helpers_give_mounted_urls_and_the_tags_of_the_built_in_pages_in_order() {
    let web = built(WebSettings::default()).await;
    assert_eq!(
        web.asset_url("modal2fa.js").as_deref(),
        Some("/auth/static/modal2fa.js")
    );
    assert_eq!(
        web.asset_url("vendor/bootstrap/bootstrap.min.css")
            .as_deref(),
        Some("/auth/static/vendor/bootstrap/bootstrap.min.css")
    );
    for missing in ["nope.js", "../Cargo.toml", "", "vendor/"] {
        assert_eq!(web.asset_url(missing), None, "{missing:?}");
    }
    let mut client = host!(web, false);
    let page = client.get("/auth/login/").await.body;
    let mut at = 0;
    for tag in web.head_tags().lines().chain(web.script_tags().lines()) {
        let found = page[at..]
            .find(tag)
            .unwrap_or_else(|| panic!("{tag} is not in the built-in page after {at}: {page}"));
        at += found + tag.len();
    }
    assert_eq!(web.head_tags().lines().count(), 2);
    assert_eq!(web.script_tags().lines().count(), 4);

    let moved = built(WebSettings {
        mount: "/account".into(),
        ..WebSettings::default()
    })
    .await;
    let url = moved.asset_url("modal2fa.js").unwrap();
    assert_eq!(url, "/account/static/modal2fa.js");
    assert!(
        moved
            .script_tags()
            .contains("src=\"/account/static/modal2fa.js\"")
    );
    let mut client = host!(moved, false);
    let r = client.get(&url).await;
    assert!(
        r.status == 200 && r.body.contains("modal2fa"),
        "{}",
        r.status
    );
}

/// The web layer with an appearance for the modal `key`.
async fn with_appearance(key: &str) -> Result<Modal2faWeb, BuildError> {
    let auth = services(MemoryPorts::new().ports, Arc::new(DefaultPolicy), 0).await;
    Modal2faWeb::builder(auth)
        .settings(WebSettings {
            appearance: HashMap::from([(key.to_owned(), ModalAppearance::default())]),
            ..WebSettings::default()
        })
        .build()
}

#[actix_web::test]
async fn an_appearance_key_that_names_no_modal_is_refused_at_build_naming_the_valid_ones() {
    let Err(e @ BuildError::UnknownAppearance { .. }) = with_appearance("auth:login").await else {
        panic!("an unknown appearance key was accepted");
    };
    let text = e.to_string();
    assert!(text.contains("\"auth:login\""), "{text}");
    for name in [
        "login",
        "auth_2fa",
        "totp_setup",
        "confirm_remember",
        "user_devices",
        "remove_2fa",
        "recovery_codes",
        "change_password",
        "unavailable",
    ] {
        assert!(text.contains(name), "{name} is not named in: {text}");
    }
    assert!(
        with_appearance("login").await.is_ok(),
        "a modal's name is accepted"
    );
}
