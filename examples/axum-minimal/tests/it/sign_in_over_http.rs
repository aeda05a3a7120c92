//! Drives the axum example over HTTP as a browser would: password, then TOTP, with the
//! session cookie and the forms' CSRF tokens.

use crate::common::harness;
use axum::http::StatusCode;
use modal2fa_core::totp;

#[tokio::test]
async fn the_axum_app_signs_in_with_password_and_totp() {
    let h = harness().await;
    // Sign in with the password (no factor yet) and enrol an authenticator app.
    let mut b = h.browser();
    assert_eq!(b.get("/").await.message(), "You are not signed in.");
    let r = b
        .post("/login", "username=alice&password=demo+password")
        .await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::OK, "Signed in as user 1 with password.")
    );
    let setup = b.post("/totp/setup", "").await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    let secret = totp::decode_secret(setup.code("secret").unwrap()).unwrap();
    let enrolment = setup.input("enrolment").unwrap();
    let r = b
        .post(
            "/totp/confirm",
            &format!("enrolment={enrolment}&code={}", h.code_for(&secret)),
        )
        .await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::OK, "Authenticator app added.")
    );
    let signed_in = b.cookie.clone().unwrap();
    let r = b.post("/logout", "").await;
    assert_eq!(r.message(), "You are signed out.");
    assert!(r.clears_cookie());
    let r = h.get("/", Some(&signed_in)).await;
    assert_eq!(
        r.message(),
        "You are not signed in.",
        "the old session cookie no longer works"
    );

    // Password, then the 2FA step.
    h.mem.clock.advance(time::Duration::seconds(30));
    let mut b = h.browser();
    b.get("/").await;
    let r = b
        .post("/login", "username=alice&password=demo+password")
        .await;
    assert_eq!(
        (r.status, r.message()),
        (
            StatusCode::OK,
            "Enter the code from your authenticator app."
        )
    );
    let pending = b.cookie.clone().unwrap();
    let r = h.get("/", Some(&pending)).await;
    assert_eq!(
        r.message(),
        "Enter the code from your authenticator app.",
        "a pending login is not signed in"
    );
    let r = b.post("/totp", "code=000000").await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::BAD_REQUEST, "The code is incorrect.")
    );
    let r = b
        .post("/totp", &format!("code={}", h.code_for(&secret)))
        .await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::OK, "Signed in as user 1 with 2fa.")
    );
    let signed = r
        .cookie()
        .expect("the session id is renewed after the second factor");
    assert_ne!(signed, pending);
    let r = h.get("/", Some(&signed)).await;
    assert_eq!(r.message(), "Signed in as user 1 with 2fa.");
    let r = h.get("/", Some(&pending)).await;
    assert_eq!(
        r.message(),
        "You are not signed in.",
        "the pre-2FA session id is dead"
    );

    // The same code cannot be used again.
    let mut again = h.browser();
    again.get("/").await;
    again
        .post("/login", "username=alice&password=demo+password")
        .await;
    let r = again
        .post("/totp", &format!("code={}", h.code_for(&secret)))
        .await;
    assert_eq!(
        (r.status, r.message()),
        (
            StatusCode::BAD_REQUEST,
            "This code has already been used. Wait for the next one."
        )
    );
}

#[tokio::test]
async fn the_axum_app_refuses_a_wrong_password() {
    let h = harness().await;
    let mut b = h.browser();
    b.get("/").await;
    let r = b.post("/login", "username=alice&password=nope").await;
    assert_eq!(
        (r.status, r.message()),
        (
            StatusCode::BAD_REQUEST,
            "The username or password is incorrect."
        )
    );
    assert!(r.token().is_some(), "the page offers the form again");
    let r = b.post("/login", "username=&password=x").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.message(), "Please check what you typed and try again.");
}
