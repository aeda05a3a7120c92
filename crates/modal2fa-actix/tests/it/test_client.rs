//! The test client's own helpers: signing in with a password and a TOTP code, with htmx
//! and without, and signing out.

use time::Duration;

use crate::harness::{PASSWORD, browser};

#[actix_web::test]
async fn the_test_client_signs_in_with_a_password_and_a_totp_code_with_htmx_or_without() {
    let mut b = browser!(0);
    let secret = b.enrol().await;
    b.sign_out().await;
    b.mem.clock.advance(Duration::seconds(30));
    let r = b.sign_in_with_totp("alice", PASSWORD, &secret).await;
    assert!(r.body.contains("Trust this device"), "{}", r.body);
    assert_eq!(b.get("/secure").await.body, "secure alice via 2fa");

    let r = b.sign_out().await;
    assert_eq!(r.redirect(), Some("/"));
    assert_eq!(
        b.get("/protected").await.redirect(),
        Some("/auth/login/?next=/protected")
    );
    b.set_htmx(false);
    b.mem.clock.advance(Duration::seconds(30));
    let r = b.sign_in_with_totp("alice", PASSWORD, &secret).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.redirect()
            .is_some_and(|to| to.starts_with("/auth/trust-device/"))
    );
    assert_eq!(b.get("/secure").await.body, "secure alice via 2fa");
}
