//! Password sign-in: no factor, wrong and unknown alike, form errors, legacy hashes.

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuditKind, AuthMethod};

use crate::world::*;

#[tokio::test]
async fn a_user_without_a_factor_signs_in_with_the_password_and_a_new_session_id() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    assert!(r.renew_session);
    assert!(!r.offer_trust);
    assert_eq!(w.audited(AuditKind::LoginSucceeded), 1);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_refusal() {
    let w = world();
    w.user("alice").await;
    let wrong = w
        .password(&LoginState::Anonymous, "alice", "nope nope nope", None)
        .await;
    let unknown = w
        .password(&LoginState::Anonymous, "mallory", "nope nope nope", None)
        .await;
    assert_eq!(wrong.outcome, Outcome::Refused(Refusal::InvalidCredentials));
    assert_eq!(unknown.outcome, wrong.outcome);
    assert_eq!(unknown.state, LoginState::Anonymous);
}

#[tokio::test]
async fn an_empty_username_is_a_form_error_that_counts_nothing() {
    let w = world();
    let r = w
        .try_password(&LoginState::Anonymous, "  ", "x", None, &ctx())
        .await
        .unwrap();
    assert!(
        matches!(r.outcome, Outcome::Refused(Refusal::Invalid(e)) if e.field == "username"),
        "{:?}",
        r.outcome
    );
    assert_eq!(r.state, LoginState::Anonymous);
    assert!(
        w.auth
            .admin
            .clear_failed_logins(Some("203.0.113.10"))
            .await
            .unwrap()
            == 0
    );
}

#[tokio::test]
async fn a_django_pbkdf2_password_signs_in_and_is_upgraded_to_argon2id() {
    let w = world();
    let id = w.user("legacy").await;
    use modal2fa_core::ports::UserStore;
    let mut u = w.mem.users.find_by_id(id).await.unwrap().unwrap();
    // Django: make_password("hunter2", "abcdefghijklmnopqrstuv") with 1000 iterations.
    u.password_hash = Some(
        "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$qkObPPK9rP0GubfMXjglDC6HALWE6Op/eMHGy+WlhjE="
            .into(),
    );
    w.mem.users.update(&u).await.unwrap();
    let r = w
        .password(&LoginState::Anonymous, "legacy", "hunter2", None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    let u = w.mem.users.find_by_id(id).await.unwrap().unwrap();
    assert!(u.password_hash.unwrap().starts_with("$argon2id$"));
    let r = w
        .password(&LoginState::Anonymous, "legacy", "hunter2", None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}
