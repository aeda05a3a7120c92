//! Lockout: user and IP locks refuse even the right password; exclusions.

use std::sync::Arc;

use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::AuthMethod;
use modal2fa_core::services::PasswordLogin;
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret};
use modal2fa_test_support::MemoryPorts;
use time::Duration;

use crate::world::*;

#[tokio::test]
async fn a_locked_user_is_refused_even_with_the_correct_password_until_the_lock_expires() {
    let w = world();
    w.user("alice").await;
    for i in 0..10 {
        // From different addresses: the user counter alone locks.
        let r = w
            .try_password(
                &LoginState::Anonymous,
                "alice",
                "wrong wrong",
                None,
                &ctx_from(&format!("198.51.100.{i}")),
            )
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCredentials));
    }
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(
        matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
        "{:?}",
        r.outcome
    );
    w.mem.clock.advance(Duration::seconds(31));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}

#[tokio::test]
async fn a_locked_ip_is_refused_even_with_the_correct_password_of_another_user() {
    let w = world();
    w.user("alice").await;
    for i in 0..20 {
        w.password(
            &LoginState::Anonymous,
            &format!("spray{i}"),
            "guess guess",
            None,
        )
        .await;
    }
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(matches!(
        r.outcome,
        Outcome::Refused(Refusal::Locked { .. })
    ));
    // Another address is not affected.
    let r = w
        .try_password(
            &LoginState::Anonymous,
            "alice",
            PASSWORD,
            None,
            &ctx_from("192.0.2.99"),
        )
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}

#[tokio::test]
async fn an_excluded_ip_is_never_locked_by_the_ip_counter() {
    let mut s = settings();
    s.lockout.excluded = modal2fa_core::client_ip::IpSet::parse(&["203.0.113.0/24"]).unwrap();
    let mem = MemoryPorts::new();
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        s,
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    for i in 0..25 {
        auth.login
            .submit_password(
                &LoginState::Anonymous,
                PasswordLogin {
                    username: format!("u{i}"),
                    password: "x".into(),
                    trusted_device_cookie: None,
                },
                &ctx(),
            )
            .await
            .unwrap();
    }
    use modal2fa_core::ports::LockoutStore;
    assert!(
        mem.lockout
            .get(&LockoutKey::ip(ctx().ip))
            .await
            .unwrap()
            .is_none()
    );
}
