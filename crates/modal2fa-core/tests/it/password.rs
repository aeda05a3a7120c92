//! Password sign-in: no factor, wrong and unknown alike, form errors, legacy hashes.

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuditKind, AuthMethod};
use modal2fa_core::ports::UserStore;

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
    // Django: make_password("hunter2", "abcdefghijklmnopqrstuv") with 1000 iterations.
    w.mem.users.edit(id, |u| {
        u.password_hash = Some(
            "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$qkObPPK9rP0GubfMXjglDC6HALWE6Op/eMHGy+WlhjE="
                .into(),
        );
    });
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

/// Users in memory, edited by "someone else" right after each read by username: as an
/// admin's deactivation that lands while a sign-in is in flight.
fn edited_meanwhile(
    users: std::sync::Arc<modal2fa_test_support::MemoryUsers>,
) -> modal2fa_test_support::HookedUsers {
    modal2fa_test_support::HookedUsers::new(users, |users, _, found| {
        if let Ok(Some(u)) = &found {
            users.edit(u.id, |edited| {
                edited.is_active = false;
                edited.first_name = "Edited meanwhile".into();
            });
        }
        found
    })
}

#[tokio::test]
async fn upgrading_a_legacy_hash_never_reverts_a_change_made_meanwhile() {
    let mem = modal2fa_test_support::MemoryPorts::new();
    let build = |ports| {
        modal2fa_core::Modal2fa::new(
            ports,
            std::sync::Arc::new(modal2fa_core::DefaultPolicy),
            settings(),
            &modal2fa_core::ServerSecret::new(vec![3; 32]).unwrap(),
        )
    };
    let id = build(mem.ports.clone())
        .account
        .create_user(modal2fa_core::services::NewAccount {
            username: "legacy".into(),
            email: None,
            first_name: "Lee".into(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
            superuser: false,
        })
        .await
        .unwrap()
        .id;
    mem.users.edit(id, |u| {
        u.password_hash = Some(
            "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$qkObPPK9rP0GubfMXjglDC6HALWE6Op/eMHGy+WlhjE="
                .into(),
        );
    });
    let mut ports = mem.ports.clone();
    ports.users = std::sync::Arc::new(edited_meanwhile(mem.users.clone()));
    build(ports)
        .login
        .submit_password(
            &LoginState::Anonymous,
            modal2fa_core::services::PasswordLogin {
                username: "legacy".into(),
                password: "hunter2".into(),
                trusted_device_cookie: None,
            },
            &ctx(),
        )
        .await
        .unwrap();
    let stored = mem.users.find_by_id(id).await.unwrap().unwrap();
    assert!(
        stored
            .password_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$"),
        "upgraded"
    );
    assert!(
        !stored.is_active,
        "the deactivation made meanwhile was reverted"
    );
    assert_eq!(
        stored.first_name, "Edited meanwhile",
        "the edit was reverted"
    );
}
