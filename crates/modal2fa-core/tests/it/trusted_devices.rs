//! Trusted devices: skipping the code, rotation, theft, the cap.

use modal2fa_core::ServiceError;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, SecurityEventKind};
use modal2fa_core::services::CookieUpdate;

use crate::world::*;

#[tokio::test]
async fn a_trusted_device_skips_the_code_rotates_and_a_copied_cookie_is_revoked() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let cookie = w
        .auth
        .trusted_devices
        .trust_this_device(&r.state, "Laptop", &ctx())
        .await
        .unwrap();
    assert_eq!(w.notified(SecurityEventKind::TrustedDeviceAdded), 1);
    // Next sign-in: no code, method cookie, new cookie value.
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookie))
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Cookie
        }
    );
    let CookieUpdate::Set(rotated) = r.trusted_device_cookie.clone() else {
        panic!("not rotated: {:?}", r.trusted_device_cookie)
    };
    assert_ne!(rotated, cookie);
    // The cookie skips only the second factor, never the password.
    let wrong = w
        .password(
            &LoginState::Anonymous,
            "alice",
            "wrong password",
            Some(&rotated),
        )
        .await;
    assert_eq!(wrong.outcome, Outcome::Refused(Refusal::InvalidCredentials));
    // The copied (superseded) value: refused, device revoked, owner alerted.
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookie))
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
    assert_eq!(r.trusted_device_cookie, CookieUpdate::Clear);
    assert_eq!(w.notified(SecurityEventKind::TrustedDeviceCookieReused), 1);
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&rotated))
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SecondFactorRequired { setup: false },
        "the revoked device no longer works"
    );
}

#[tokio::test]
async fn trusting_a_device_beyond_the_cap_evicts_the_least_recently_used() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let mut cookies = Vec::new();
    for name in ["one", "two", "three"] {
        let r = w.sign_in_2fa("alice", &secret).await;
        cookies.push(
            w.auth
                .trusted_devices
                .trust_this_device(&r.state, name, &ctx())
                .await
                .unwrap(),
        );
    }
    let r = w.sign_in_2fa("alice", &secret).await;
    let names: Vec<_> = w
        .auth
        .trusted_devices
        .list(&r.state)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["three", "two"]);
    let first = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookies[0]))
        .await;
    assert_eq!(
        first.outcome,
        Outcome::SecondFactorRequired { setup: false }
    );
}

#[tokio::test]
async fn a_device_can_be_trusted_only_after_a_second_factor() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let err = w
        .auth
        .trusted_devices
        .trust_this_device(&r.state, "x", &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Forbidden(_)));
}
