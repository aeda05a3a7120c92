//! The second factor: TOTP codes (single use, window, concurrency, limits), set-up during sign-in, step-up, recovery codes.

use std::sync::Arc;

use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuditKind, AuthMethod, SecurityEventKind, UserId};
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{AuthPolicy, ServiceError};
use time::Duration;

use crate::world::*;

#[tokio::test]
async fn totp_sign_in_works_and_a_code_is_never_accepted_twice() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    assert_eq!(w.notified(SecurityEventKind::TotpAdded).await, 1);
    // The code that confirmed enrolment cannot sign in.
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
    assert!(
        matches!(&r.state, LoginState::PendingSecondFactor(p) if !p.passkey),
        "an app alone offers no passkey"
    );
    let pending = r.state.clone();
    let r = w
        .auth
        .login
        .submit_totp(&pending, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CodeReused));
    assert_eq!(w.audited(AuditKind::CodeReplayed), 1);
    assert_eq!(w.notified(SecurityEventKind::CodeReplayed).await, 1);
    // A fresh step signs in, renews the session and offers to trust the device.
    w.mem.clock.advance(Duration::seconds(30));
    let ok = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(
        ok.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    assert!(ok.renew_session && ok.offer_trust);
    // The same code again, in another login, is refused.
    let again = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let r = w
        .auth
        .login
        .submit_totp(&again.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CodeReused));
}

#[tokio::test]
async fn an_older_in_window_code_is_refused_after_a_newer_one() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.clock.advance(Duration::seconds(60));
    use modal2fa_core::ports::Clock;
    let now = w.mem.clock.now();
    let older = totp::code_at(&secret, &TotpParams::default(), now - Duration::seconds(30));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let ok = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(
        ok.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let r = w
        .auth
        .login
        .submit_totp(&r.state, &older, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CodeReused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_submissions_of_one_valid_code_give_exactly_one_success() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.clock.advance(Duration::seconds(30));
    let mut pendings = Vec::new();
    for _ in 0..50 {
        pendings.push(
            w.password(&LoginState::Anonymous, "alice", PASSWORD, None)
                .await
                .state,
        );
        w.auth
            .admin
            .clear_failed_logins(Some("alice"))
            .await
            .unwrap();
    }
    let code = w.code(&secret);
    let tasks: Vec<_> = pendings
        .into_iter()
        .map(|p| {
            let (auth, code) = (w.auth.clone(), code.clone());
            tokio::spawn(async move {
                auth.login
                    .submit_totp(&p, &code, &ctx())
                    .await
                    .unwrap()
                    .outcome
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Outcome::SignedIn { .. }) {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn wrong_codes_count_on_the_second_factor_counter_and_five_destroy_the_pending_login() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let mut r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let wrong = format!(
        "{:06}",
        (w.code(&secret).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    for _ in 0..4 {
        r = w
            .auth
            .login
            .submit_totp(&r.state, &wrong, &ctx())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCode));
    }
    r = w
        .auth
        .login
        .submit_totp(&r.state, &wrong, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::TooManyAttempts));
    assert_eq!(r.state, LoginState::Anonymous);
    assert!(r.end_session);
    use modal2fa_core::ports::LockoutStore;
    let entry = w
        .mem
        .lockout
        .get(&LockoutKey::User("alice".into()))
        .await
        .unwrap()
        .unwrap();
    // The right password of the abandoned login: a pending login stays an attempt on the
    // account's password counter until its second factor is proven...
    assert_eq!(entry.failures, 1);
    // ...and the five wrong codes are on the second factor's own counter, now locked.
    let factor = w
        .mem
        .lockout
        .get(&LockoutKey::Factor(modal2fa_core::UserId(1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(factor.failures, 5);
    assert!(factor.locked_until.is_some());
}

#[tokio::test]
async fn a_locked_second_factor_refuses_even_the_right_code_but_a_password_lock_does_not() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.clock.advance(Duration::seconds(30));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    // Password guesses from elsewhere lock the account's password counter: the login that
    // already proved the password may still give its code.
    for i in 0..10 {
        w.try_password(
            &LoginState::Anonymous,
            "alice",
            "bad bad bad",
            None,
            &ctx_from(&format!("198.51.100.{i}")),
        )
        .await
        .unwrap();
    }
    let wrong = format!(
        "{:06}",
        (w.code(&secret).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let mut r = r;
    for _ in 0..4 {
        r = w
            .auth
            .login
            .submit_totp(&r.state, &wrong, &ctx())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCode));
    }
    // Four wrong codes here and one from another pending login lock the second factor.
    let other = w
        .auth
        .login
        .submit_totp(&r.state, &wrong, &ctx())
        .await
        .unwrap();
    assert_eq!(other.outcome, Outcome::Refused(Refusal::TooManyAttempts));
    let r = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert!(
        matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
        "{:?}",
        r.outcome
    );
    assert_eq!(w.notified(SecurityEventKind::SecondFactorFailures).await, 1);
}

#[tokio::test]
async fn a_pending_login_expires() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.clock.advance(Duration::seconds(30));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    w.mem.clock.advance(Duration::minutes(6));
    let r = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::Expired));
    assert_eq!(r.state, LoginState::Anonymous);
}

#[tokio::test]
async fn a_user_who_must_use_2fa_sets_up_totp_during_login() {
    struct Required;
    impl AuthPolicy for Required {
        fn user_2fa_optional(&self, _u: &modal2fa_core::User) -> bool {
            false
        }
    }
    let w = world_with(Arc::new(Required));
    w.user("bob").await;
    let r = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: true });
    // A pending login cannot reach anything signed-in.
    assert!(w.auth.trusted_devices.list(&r.state).await.is_err());
    let e = w.auth.factors.begin_totp(&r.state).await.unwrap();
    assert!(
        e.otpauth_url
            .expose()
            .starts_with("otpauth://totp/modal2fa:bob%40example.com?")
            || e.otpauth_url
                .expose()
                .starts_with("otpauth://totp/modal2fa:bob@example.com?")
    );
    let secret = totp::decode_secret(e.secret.expose()).unwrap();
    assert_eq!(secret.len(), 32);
    let done = w
        .auth
        .login
        .complete_setup_with_totp(&r.state, e.token.expose(), &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(
        done.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
}

#[tokio::test]
async fn unconfirmed_totp_never_counts_as_a_factor() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    w.auth.factors.begin_totp(&r.state).await.unwrap();
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
async fn totp_secrets_are_stored_encrypted_and_bound_to_their_user() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let (_, _) = w.enrolled("bob").await;
    use modal2fa_core::ports::FactorStore;
    let alice = w
        .mem
        .factors
        .totp_devices(UserId(1))
        .await
        .unwrap()
        .remove(0);
    assert!(
        !alice
            .encrypted_secret
            .windows(secret.len())
            .any(|win| win == secret.as_slice())
    );
    // Copy alice's ciphertext into bob's row: bob's verification fails.
    w.mem.factors.delete_totp(UserId(2)).await.unwrap();
    let d = w
        .mem
        .factors
        .add_totp(UserId(2), alice.encrypted_secret.clone(), alice.created_at)
        .await
        .unwrap();
    w.mem.factors.confirm_totp(d.id, 0).await.unwrap();
    w.mem.clock.advance(Duration::seconds(30));
    let r = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    let r = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCode));
}

#[tokio::test]
async fn a_cookie_session_must_step_up_before_managing_factors() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let cookie = w.trust(&r.state, "Laptop").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookie))
        .await;
    let cookie_state = r.state;
    assert!(matches!(
        w.auth.factors.remove_totp(&cookie_state, &ctx()).await,
        Err(ServiceError::StepUpRequired)
    ));
    assert!(matches!(
        w.auth.factors.begin_totp(&cookie_state).await,
        Err(ServiceError::StepUpRequired)
    ));
    let up = w
        .auth
        .login
        .begin_step_up(&cookie_state, &ctx())
        .await
        .unwrap();
    assert_eq!(up.outcome, Outcome::SecondFactorRequired { setup: false });
    // During step-up the session is still the cookie session (no management yet).
    assert!(matches!(
        w.auth.factors.remove_totp(&up.state, &ctx()).await,
        Err(ServiceError::StepUpRequired)
    ));
    w.mem.clock.advance(Duration::seconds(30));
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
    assert!(done.renew_session);
    w.auth
        .factors
        .remove_totp(&done.state, &ctx())
        .await
        .unwrap();
    assert_eq!(w.notified(SecurityEventKind::TotpRemoved).await, 1);
}

#[tokio::test]
async fn recovery_codes_work_once_each_and_are_stored_hashed() {
    let w = world();
    let (_, codes) = with_recovery_codes(&w).await;
    assert_eq!(codes.len(), 10);
    assert_eq!(codes[0].expose().len(), 29);
    let p = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let ok = w
        .auth
        .login
        .submit_recovery_code(&p.state, &codes[0].expose().to_lowercase(), &ctx())
        .await
        .unwrap();
    assert_eq!(
        ok.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    assert_eq!(w.notified(SecurityEventKind::RecoveryCodeUsed).await, 1);
    assert_eq!(
        w.auth.factors.recovery_codes_left(&ok.state).await.unwrap(),
        9
    );
    let p = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let again = w
        .auth
        .login
        .submit_recovery_code(&p.state, codes[0].expose(), &ctx())
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::Refused(Refusal::InvalidCode));
}

#[tokio::test]
async fn twenty_concurrent_submissions_of_one_recovery_code_sign_in_exactly_once() {
    let w = world();
    let (_, codes) = with_recovery_codes(&w).await;
    let mut pending = Vec::new();
    for _ in 0..20 {
        let p = w
            .password(&LoginState::Anonymous, "alice", PASSWORD, None)
            .await;
        pending.push(p.state);
    }
    let code = codes[3].expose().to_owned();
    let tries = pending.into_iter().map(|state| {
        let auth = w.auth.clone();
        let code = code.clone();
        tokio::spawn(async move {
            auth.login
                .submit_recovery_code(&state, &code, &ctx())
                .await
                .unwrap()
                .outcome
        })
    });
    let mut signed_in = 0;
    for t in tries.collect::<Vec<_>>() {
        if matches!(t.await.unwrap(), Outcome::SignedIn { .. }) {
            signed_in += 1;
        }
    }
    assert_eq!(signed_in, 1);
    assert_eq!(w.notified(SecurityEventKind::RecoveryCodeUsed).await, 1);
}

#[tokio::test]
async fn a_new_set_of_recovery_codes_voids_every_code_of_the_old_one() {
    let w = world();
    let (r, old) = with_recovery_codes(&w).await;
    let new = w
        .auth
        .factors
        .generate_recovery_codes(&r.state, &ctx())
        .await
        .unwrap();
    assert_eq!(
        w.auth.factors.recovery_codes_left(&r.state).await.unwrap(),
        10
    );
    // Three of the old codes (the second factor's budget locks after five wrong ones).
    for code in old.iter().filter(|c| !new.contains(c)).take(3) {
        let p = w
            .password(&LoginState::Anonymous, "alice", PASSWORD, None)
            .await;
        let tried = w
            .auth
            .login
            .submit_recovery_code(&p.state, code.expose(), &ctx())
            .await
            .unwrap();
        assert_eq!(tried.outcome, Outcome::Refused(Refusal::InvalidCode));
    }
    let p = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let fresh = w
        .auth
        .login
        .submit_recovery_code(&p.state, new[0].expose(), &ctx())
        .await
        .unwrap();
    assert!(
        matches!(fresh.outcome, Outcome::SignedIn { .. }),
        "{:?}",
        fresh.outcome
    );
}

/// alice, signed in with her app, and a set of recovery codes.
async fn with_recovery_codes(
    w: &crate::world::World,
) -> (
    modal2fa_core::services::LoginReport,
    Vec<modal2fa_core::SecretString>,
) {
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let codes = w
        .auth
        .factors
        .generate_recovery_codes(&r.state, &ctx())
        .await
        .unwrap();
    (r, codes)
}
