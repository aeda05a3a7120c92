//! Administration: permissions, resetting 2FA, lockout admin, clear-failed-logins.

use modal2fa_core::ServiceError;
use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuditKind, AuthMethod, Page, SecurityEventKind, UserId};
use modal2fa_core::services::InviteRequest;
use time::Duration;

use crate::world::*;

#[tokio::test]
async fn only_permitted_users_can_invite_or_administer() {
    let w = world();
    w.user("alice").await;
    let plain = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await
        .state;
    let invite = InviteRequest {
        email: "x@example.com".into(),
        first_name: String::new(),
        last_name: String::new(),
    };
    assert!(matches!(
        w.auth
            .account
            .invite(&plain, invite, "https://x/", &ctx())
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        w.auth.admin.list_sessions(&plain, Page::first(10)).await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        w.auth.admin.list_users(&plain, Page::first(10)).await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        w.auth
            .admin
            .list_sessions(&LoginState::Anonymous, Page::first(10))
            .await,
        Err(ServiceError::NotSignedIn)
    ));
}

#[tokio::test]
async fn an_admin_reset_of_2fa_strips_factors_ends_sessions_clears_lockout_and_mails_the_user() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    w.auth.sessions.create(&r.state, &ctx()).await.unwrap();
    w.try_password(
        &LoginState::Anonymous,
        "alice",
        "wrong wrong",
        None,
        &ctx_from("192.0.2.5"),
    )
    .await
    .unwrap();
    let admin = w.admin().await;
    let rows = w
        .auth
        .admin
        .list_users(&admin, Page::first(10))
        .await
        .unwrap();
    assert!(
        rows.iter()
            .any(|r| r.user.username.as_str() == "alice" && r.totp && r.trusted_devices == Some(0))
    );
    w.auth
        .admin
        .reset_two_factor(&admin, UserId(1), &ctx())
        .await
        .unwrap();
    assert_eq!(w.mem.sessions.list_active_count(), 0);
    assert_eq!(
        w.notified(SecurityEventKind::TwoFactorResetByAdmin).await,
        1
    );
    assert_eq!(w.audited(AuditKind::TwoFactorReset), 1);
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
async fn admins_list_and_clear_lockouts_with_an_audit_event() {
    let w = world();
    w.password(&LoginState::Anonymous, "ghost", "wrong wrong", None)
        .await;
    let admin = w.admin().await;
    let rows = w
        .auth
        .admin
        .list_lockouts(&admin, Page::first(10))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    w.auth
        .admin
        .clear_lockout(&admin, &LockoutKey::User("ghost".into()), &ctx())
        .await
        .unwrap();
    assert_eq!(w.audited(AuditKind::LockoutCleared), 1);
    assert!(matches!(
        w.auth
            .admin
            .clear_lockout(&admin, &LockoutKey::User("ghost".into()), &ctx())
            .await,
        Err(ServiceError::NotFound)
    ));
}

#[tokio::test]
async fn clear_failed_logins_removes_a_key_or_only_stale_rows() {
    let w = world();
    w.user("alice").await;
    for _ in 0..10 {
        w.password(&LoginState::Anonymous, "alice", "wrong wrong", None)
            .await;
    }
    assert_eq!(
        w.auth.admin.clear_failed_logins(None).await.unwrap(),
        0,
        "nothing is stale yet"
    );
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("ALICE"))
            .await
            .unwrap(),
        1
    );
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        },
        "clearing the username lifts its lock"
    );
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("203.0.113.10"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("203.0.113.10"))
            .await
            .unwrap(),
        0
    );
    w.password(&LoginState::Anonymous, "bob", "wrong wrong", None)
        .await;
    w.mem.clock.advance(Duration::days(2));
    assert_eq!(w.auth.admin.clear_failed_logins(None).await.unwrap(), 2);
}

#[tokio::test]
async fn clearing_failed_logins_by_any_spelling_of_a_name_clears_the_key_its_sign_ins_counted_on() {
    let w = world();
    w.user("alice").await;
    for _ in 0..10 {
        w.password(&LoginState::Anonymous, "ａｌｉｃｅ", "wrong wrong", None)
            .await;
    }
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(
        matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
        "the fullwidth guesses locked alice: {:?}",
        r.outcome
    );
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("alíce"))
            .await
            .unwrap(),
        0,
        "an accented name is another key"
    );
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("ＡＬＩＣＥ"))
            .await
            .unwrap(),
        1,
        "the fullwidth capitals are alice's key"
    );
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
async fn administration_needs_a_second_factor_session_not_only_a_superuser() {
    let w = world();
    w.user("alice").await;
    let password_only = w.admin_without_second_factor().await;
    assert!(matches!(
        w.auth
            .admin
            .list_users(&password_only, Page::first(10))
            .await,
        Err(ServiceError::StepUpRequired)
    ));
    assert!(matches!(
        w.auth
            .admin
            .list_sessions(&password_only, Page::first(10))
            .await,
        Err(ServiceError::StepUpRequired)
    ));
    assert!(matches!(
        w.auth
            .admin
            .reset_two_factor(&password_only, UserId(1), &ctx())
            .await,
        Err(ServiceError::StepUpRequired)
    ));
}

#[tokio::test]
async fn clear_failed_logins_from_the_command_line_is_audited() {
    let w = world();
    w.user("alice").await;
    w.password(&LoginState::Anonymous, "alice", "wrong wrong", None)
        .await;
    let before = w.audited(AuditKind::LockoutCleared);
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("alice"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(w.audited(AuditKind::LockoutCleared), before + 1);
}
