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
    let cookie = w.trust(&r.state, "Laptop").await;
    assert_eq!(w.notified(SecurityEventKind::TrustedDeviceAdded).await, 1);
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
    assert_eq!(
        w.notified(SecurityEventKind::TrustedDeviceCookieReused)
            .await,
        1
    );
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
        cookies.push(w.trust(&r.state, name).await);
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
        .trust_this_device(&r.state, "x", None, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Forbidden(_)));
}

#[tokio::test]
async fn trust_is_offered_once_right_after_a_second_factor_and_never_after_a_step_up() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    assert!(r.offer_trust, "offered right after the second factor");
    let trusted = w
        .auth
        .trusted_devices
        .trust_this_device(&r.state, "Laptop", None, &ctx())
        .await
        .unwrap();
    // The answer takes the offer: the same session cannot trust a second time.
    let again = w
        .auth
        .trusted_devices
        .trust_this_device(&trusted.state, "Laptop again", None, &ctx())
        .await;
    assert!(
        matches!(again, Err(ServiceError::Forbidden(_))),
        "{again:?}"
    );
    // A browser holding the device cookie signs in with it, then steps up.
    let r = w
        .password(
            &LoginState::Anonymous,
            "alice",
            PASSWORD,
            Some(&trusted.cookie),
        )
        .await;
    let CookieUpdate::Set(_) = r.trusted_device_cookie else {
        panic!("a cookie sign-in: {r:?}")
    };
    let up = w.auth.login.begin_step_up(&r.state, &ctx()).await.unwrap();
    w.mem.clock.advance(time::Duration::seconds(30));
    let done = w
        .auth
        .login
        .submit_totp(&up.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(
        done.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    assert!(!done.offer_trust, "a step-up offers trust again");
    let after_step_up = w
        .auth
        .trusted_devices
        .trust_this_device(&done.state, "third", None, &ctx())
        .await;
    assert!(
        matches!(after_step_up, Err(ServiceError::Forbidden(_))),
        "{after_step_up:?}"
    );
    let listed = w.auth.trusted_devices.list(&done.state).await.unwrap();
    assert_eq!(listed.len(), 1, "no extra record: {listed:?}");
}

#[tokio::test]
async fn trusting_a_browser_that_holds_this_user_s_device_cookie_renews_that_device() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let mut cookies = Vec::new();
    for name in ["desk", "phone"] {
        let r = w.sign_in_2fa("alice", &secret).await;
        cookies.push(w.trust(&r.state, name).await);
    }
    // The desk browser, holding its cookie, passes a second factor and is trusted again.
    let r = w.sign_in_2fa("alice", &secret).await;
    let renewed = w
        .auth
        .trusted_devices
        .trust_this_device(&r.state, "desk", Some(cookies[0].expose()), &ctx())
        .await
        .unwrap();
    let names: Vec<_> = w
        .auth
        .trusted_devices
        .list(&renewed.state)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&"phone".to_owned()),
        "the phone kept: {names:?}"
    );
    let phone = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookies[1]))
        .await;
    assert_eq!(
        phone.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Cookie
        },
        "the other browser still works"
    );
    assert_eq!(w.notified(SecurityEventKind::TrustedDeviceAdded).await, 2);
}

#[tokio::test]
async fn a_copy_two_generations_old_revokes_the_device_ends_sessions_and_alerts_the_owner() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let owners = w.trust(&r.state, "Laptop").await;
    // A thief with a copy signs in twice: the owner's copy is two generations back.
    let mut thiefs = owners.clone();
    for _ in 0..2 {
        let r = w
            .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&thiefs))
            .await;
        let CookieUpdate::Set(next) = r.trusted_device_cookie else {
            panic!("{r:?}")
        };
        thiefs = next;
        w.auth.sessions.create(&r.state, &ctx()).await.unwrap();
    }
    assert!(w.mem.sessions.list_active_count() >= 2);
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&owners))
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
    assert_eq!(r.trusted_device_cookie, CookieUpdate::Clear);
    assert_eq!(
        w.notified(SecurityEventKind::TrustedDeviceCookieReused)
            .await,
        1
    );
    assert_eq!(
        w.mem.sessions.list_active_count(),
        0,
        "the thief's sessions ended"
    );
    let thief = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&thiefs))
        .await;
    assert_eq!(
        thief.outcome,
        Outcome::SecondFactorRequired { setup: false },
        "the device is revoked for the thief too"
    );
}

#[tokio::test]
async fn a_trusted_device_used_every_day_still_ends_at_its_absolute_lifetime() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let mut cookie = w.trust(&r.state, "Laptop").await;
    for _ in 0..364 {
        w.mem.clock.advance(time::Duration::days(1));
        let r = w
            .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookie))
            .await;
        assert_eq!(
            r.outcome,
            Outcome::SignedIn {
                method: AuthMethod::Cookie
            }
        );
        let CookieUpdate::Set(next) = r.trusted_device_cookie else {
            panic!("{r:?}")
        };
        cookie = next;
    }
    w.mem.clock.advance(time::Duration::days(2));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookie))
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
    assert_eq!(r.trusted_device_cookie, CookieUpdate::Clear);
}
