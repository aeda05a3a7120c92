//! The page guards: how a refusal answers (a 303, or `HX-Redirect` for htmx) and which
//! session methods `SecondFactorUser` lets through (the policy's page-guard methods, not
//! its factor-management ones).

use modal2fa_sea_orm::SeaOrmStore;

use crate::harness::{CookieManagesFactors, PASSWORD, browser};

#[actix_web::test]
async fn a_refused_htmx_request_gets_hx_redirect_and_a_plain_one_a_303() {
    let mut b = browser!(0);
    let r = b.get("/protected?tab=2").await;
    assert_eq!(
        r.status, 200,
        "htmx would follow a 303 inside its own request"
    );
    assert_eq!(
        r.header("HX-Redirect"),
        Some("/auth/login/?next=/protected%3Ftab%3D2")
    );
    assert_eq!(r.header("Location"), None);
    b.login(PASSWORD).await;
    let r = b.get("/secure").await;
    assert_eq!(
        (r.status, r.header("HX-Redirect")),
        (200, Some("/auth/2fa/?next=/secure"))
    );

    b.set_htmx(false);
    let r = b.get("/secure").await;
    assert_eq!(
        (r.status, r.header("Location")),
        (303, Some("/auth/2fa/?next=/secure"))
    );
    assert_eq!(r.header("HX-Redirect"), None);
    b.cookies_mut().clear();
    let r = b.get("/protected").await;
    assert_eq!(
        (r.status, r.header("Location")),
        (303, Some("/auth/login/?next=/protected"))
    );
}

#[actix_web::test]
async fn letting_a_cookie_session_manage_factors_does_not_let_it_through_the_page_guard() {
    let mut b = browser!(0, None::<SeaOrmStore>, false, CookieManagesFactors);
    b.cookie_session().await;
    assert_eq!(
        b.get("/secure").await.redirect(),
        Some("/auth/2fa/?next=/secure"),
        "the page guard still wants a second factor"
    );
    // The relaxed policy is in force: the cookie session removes a device without a
    // step-up.
    let devices = b.get("/auth/devices/").await;
    let id = crate::harness::between(&devices.body, "/auth/devices/", "/remove/").to_owned();
    let r = b.post(&format!("/auth/devices/{id}/remove/"), &[]).await;
    assert!(r.body.contains("No trusted devices"), "{}", r.body);
}
