//! CSRF over HTTP: the anonymous visitor's nonce cookie and the tokens bound to it, the
//! same-origin check, refused POSTs; and the security headers and static assets of the
//! modals.

use actix_web::test;
use modal2fa_sea_orm::SeaOrmStore;

use crate::harness::{PASSWORD, browser};

#[actix_web::test]
async fn the_login_modal_is_a_fragment_for_htmx_and_a_page_otherwise_and_writes_nothing() {
    let mut b = browser!(0);
    let r = b.get("/auth/login/").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("name=\"username\"") && !r.body.contains("<html"));
    b.set_htmx(false);
    let r = b.get("/auth/login/?next=/protected").await;
    assert!(r.body.starts_with("<!doctype html>") && r.body.contains("modal2fa-page"));
    assert!(r.body.contains("value=\"/protected\""));
    assert_eq!(
        b.cookies().keys().collect::<Vec<_>>(),
        ["modal2fa_csrf"],
        "an anonymous GET sets only the CSRF nonce cookie, no session"
    );
    assert!(b.mem.sessions.is_empty(), "and stores nothing");
}

#[actix_web::test]
async fn an_anonymous_form_comes_with_a_nonce_cookie_set_once_and_strictly() {
    let mut b = browser!(0);
    let first = b.get("/auth/login/").await;
    let cookie = first.set_cookie("modal2fa_csrf").expect("a nonce cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(
        !cookie.contains("Secure") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let nonce = b.cookies()["modal2fa_csrf"].clone();
    assert!(nonce.len() >= 43, "at least 256 bits");
    assert!(
        !first.body.contains(&nonce),
        "the page never shows the nonce"
    );
    let again = b.get("/auth/login/").await;
    assert_eq!(again.set_cookie("modal2fa_csrf"), None, "kept, not re-sent");
    assert_eq!(b.cookies()["modal2fa_csrf"], nonce);
    b.cookies_mut()
        .insert("modal2fa_csrf".into(), "not-a-nonce".into());
    let replaced = b.get("/auth/login/").await;
    assert!(
        replaced.set_cookie("modal2fa_csrf").is_some(),
        "a malformed one is replaced"
    );
    assert_ne!(b.cookies()["modal2fa_csrf"], "not-a-nonce");
    assert!(b.mem.sessions.is_empty(), "and nothing is stored");

    let mut secure = browser!(0, None::<SeaOrmStore>, true);
    let r = secure.get("/auth/login/").await;
    let cookie = r
        .set_cookie("__Host-modal2fa_csrf")
        .expect("a __Host- nonce cookie");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
}

#[actix_web::test]
async fn an_anonymous_token_works_only_with_the_nonce_cookie_it_was_minted_for() {
    let mut b = browser!(0);
    let token_a = b.get("/auth/login/").await.csrf_token().unwrap();
    let client_a = b.cookies().clone();
    b.cookies_mut().clear();
    b.get("/auth/login/").await;
    let client_b = b.cookies().clone();
    assert_ne!(client_a["modal2fa_csrf"], client_b["modal2fa_csrf"]);
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("next", "/protected"),
        ("csrf_token", token_a.as_str()),
    ];
    *b.cookies_mut() = client_b;
    let r = b.post("/auth/login/", &form).await;
    assert_eq!(r.status, 403, "A's token with B's nonce cookie");
    assert_eq!(
        r.body,
        "The form has expired or did not come from this site. Reload the page and try again."
    );
    b.cookies_mut().clear();
    let r = b.post("/auth/login/", &form).await;
    assert_eq!(r.status, 403, "A's token with no nonce cookie");
    assert!(b.mem.sessions.is_empty());
    *b.cookies_mut() = client_a;
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
    let token = b.get("/auth/login/").await.csrf_token().unwrap();
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
    let token = p.get("/auth/login/").await.csrf_token().unwrap();
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

#[actix_web::test]
async fn security_headers_are_on_every_modal_response() {
    let mut b = browser!(0);
    let r = b.get("/auth/login/").await;
    let csp = r.header("Content-Security-Policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Referrer-Policy"), Some("same-origin"));
    b.set_htmx(false);
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
    let tokenless = test::TestRequest::post()
        .uri("/auth/login/")
        .insert_header(("Sec-Fetch-Site", "same-origin"))
        .set_form([("username", "alice"), ("password", PASSWORD)]);
    assert_eq!(b.send(tokenless).await.status, 403);
    let token = b.get("/auth/login/").await.csrf_token().unwrap();
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
    assert!(!b.cookies().contains_key("modal2fa_session"), "no session");
}
