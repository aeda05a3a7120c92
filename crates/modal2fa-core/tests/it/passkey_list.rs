//! The user's passkeys after registration: renamed, removed (ending the sessions that
//! were established with the passkey, and guarding the last factor as "Remove 2FA"
//! does), and a passkey as the first factor of a set-up login.

use std::sync::Arc;

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuditKind, AuthMethod, SecurityEventKind};
use modal2fa_core::parse::Problem;
use modal2fa_core::services::PasskeyRemoval;
use modal2fa_core::{AuthPolicy, DefaultPolicy, ServiceError, User};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::passkeys::{
    ORIGIN, alice_with_a_key, assert_with, passkey_world, pending, register, sign_in_with,
};
use crate::world::{PASSWORD, World, ctx};

/// alice signed in with `key`, then registering `second` as "Backup key": the session
/// signed in with the first key, and both keys' store ids.
async fn alice_with_two_keys(
    w: &World,
    key: &mut SoftPasskey,
    second: &mut SoftPasskey,
) -> (LoginState, i64, i64) {
    alice_with_a_key(w, key).await;
    let with_first = sign_in_with(w, key, ORIGIN).await.state;
    let ceremony = w
        .auth
        .passkeys
        .begin_registration(&with_first)
        .await
        .unwrap();
    let answer = register(second, &ceremony, ORIGIN);
    let backup = w
        .auth
        .passkeys
        .finish_registration(&with_first, &ceremony.state, &answer, "Backup key", &ctx())
        .await
        .unwrap();
    let keys = w.auth.passkeys.list(&with_first).await.unwrap();
    (with_first, keys[0].id, backup.id)
}

#[tokio::test]
async fn a_sign_in_with_a_passkey_records_which_passkey_established_the_session() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let (mut key, mut second) = (SoftPasskey::new(true), SoftPasskey::new(true));
    let (with_first, first, _) = alice_with_two_keys(&w, &mut key, &mut second).await;
    assert_eq!(with_first.signed_in().and_then(|s| s.passkey), Some(first));
    let id = w.auth.sessions.create(&with_first, &ctx()).await.unwrap();
    let loaded = w.auth.sessions.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.record.passkey_id, Some(first));
}

#[tokio::test]
async fn renaming_a_passkey_changes_its_name_and_a_bad_name_changes_nothing() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let (mut key, mut second) = (SoftPasskey::new(true), SoftPasskey::new(true));
    let (session, first, _) = alice_with_two_keys(&w, &mut key, &mut second).await;
    let p = &w.auth.passkeys;
    p.rename(&session, first, "  Work laptop ", &ctx())
        .await
        .unwrap();
    assert_eq!(w.audited(AuditKind::FactorRenamed), 1);
    for (bad, problem) in [
        ("   ", Problem::Required),
        ("tab\there", Problem::ControlCharacter),
    ] {
        match p.rename(&session, first, bad, &ctx()).await {
            Err(ServiceError::Refused(Refusal::Invalid(e))) => assert_eq!(e.problem, problem),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let long = "x".repeat(65);
    assert!(matches!(
        p.rename(&session, first, &long, &ctx()).await,
        Err(ServiceError::Refused(Refusal::Invalid(_)))
    ));
    assert!(matches!(
        p.rename(&session, 9_999, "Mine now", &ctx()).await,
        Err(ServiceError::NotFound)
    ));
    let names: Vec<String> = p
        .list(&session)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["Work laptop", "Backup key"]);
}

#[tokio::test]
async fn removing_a_passkey_ends_the_sessions_established_with_it_and_no_others() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let (mut key, mut second) = (SoftPasskey::new(true), SoftPasskey::new(true));
    let (_, first, backup) = alice_with_two_keys(&w, &mut key, &mut second).await;
    // Another browser signed in with the first key, and one with the backup key.
    let elsewhere = sign_in_with(&w, &mut key, ORIGIN).await.state;
    let with_backup = sign_in_with(&w, &mut second, ORIGIN).await.state;
    assert_eq!(
        with_backup.signed_in().and_then(|s| s.passkey),
        Some(backup)
    );
    let sessions = &w.auth.sessions;
    let elsewhere_id = sessions.create(&elsewhere, &ctx()).await.unwrap();
    let backup_id = sessions.create(&with_backup, &ctx()).await.unwrap();
    // A sign-in under way with the first key, answered before the removal.
    let (pending_login, ceremony) = pending(&w).await;
    let late = assert_with(&mut key, &ceremony, ORIGIN);

    let done = w
        .auth
        .passkeys
        .remove(&with_backup, first, false, &ctx())
        .await
        .unwrap();
    assert_eq!(
        done,
        PasskeyRemoval::Removed {
            ended_this_session: false,
            two_factor_removed: false
        }
    );
    assert!(sessions.load(&elsewhere_id).await.unwrap().is_none());
    assert!(sessions.load(&backup_id).await.unwrap().is_some());
    assert_eq!(w.notified(SecurityEventKind::PasskeyRemoved).await, 1);
    let left: Vec<i64> = w
        .auth
        .passkeys
        .list(&with_backup)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(left, [backup]);
    // The removed key no longer signs in.
    let r = w
        .auth
        .passkeys
        .submit_passkey(&pending_login, &ceremony.state, &late, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::PasskeyRejected));
}

#[tokio::test]
async fn the_session_that_removes_its_own_passkey_is_told_it_has_ended() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let (mut key, mut second) = (SoftPasskey::new(true), SoftPasskey::new(true));
    let (with_first, first, _) = alice_with_two_keys(&w, &mut key, &mut second).await;
    let id = w.auth.sessions.create(&with_first, &ctx()).await.unwrap();
    let done = w
        .auth
        .passkeys
        .remove(&with_first, first, false, &ctx())
        .await
        .unwrap();
    assert_eq!(
        done,
        PasskeyRemoval::Removed {
            ended_this_session: true,
            two_factor_removed: false
        }
    );
    assert!(w.auth.sessions.load(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn removing_the_last_factor_asks_first_and_then_removes_2fa_with_its_recovery_codes() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    alice_with_a_key(&w, &mut key).await;
    let session = sign_in_with(&w, &mut key, ORIGIN).await.state;
    let only = w.auth.passkeys.list(&session).await.unwrap()[0].id;
    w.auth
        .factors
        .generate_recovery_codes(&session, &ctx())
        .await
        .unwrap();
    let asked = w.auth.passkeys.remove(&session, only, false, &ctx()).await;
    assert_eq!(asked.unwrap(), PasskeyRemoval::ConfirmLastFactor);
    assert_eq!(w.auth.passkeys.list(&session).await.unwrap().len(), 1);

    let done = w
        .auth
        .passkeys
        .remove(&session, only, true, &ctx())
        .await
        .unwrap();
    assert!(matches!(
        done,
        PasskeyRemoval::Removed {
            two_factor_removed: true,
            ..
        }
    ));
    assert_eq!(
        w.auth.factors.recovery_codes_left(&session).await.unwrap(),
        0,
        "the recovery codes are void"
    );
    assert_eq!(w.notified(SecurityEventKind::TwoFactorRemoved).await, 1);
    let again = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        again.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        },
        "with 2FA optional and no factor left, the password alone signs in"
    );
}

struct Required;
impl AuthPolicy for Required {
    fn user_2fa_optional(&self, _u: &User) -> bool {
        false
    }
}

#[tokio::test]
async fn a_set_up_login_enrols_a_passkey_as_its_first_factor_and_offers_recovery_codes() {
    let w = passkey_world(Arc::new(Required));
    w.user("alice").await;
    let pending = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        pending.outcome,
        Outcome::SecondFactorRequired { setup: true }
    );
    let ceremony = w
        .auth
        .passkeys
        .begin_registration(&pending.state)
        .await
        .unwrap();
    let mut key = SoftPasskey::new(true);
    let answer = register(&mut key, &ceremony, ORIGIN);
    let r = w
        .auth
        .passkeys
        .complete_setup(&pending.state, &ceremony.state, &answer, "Phone", &ctx())
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    assert!(r.offer_recovery_codes);
    let keys = w.auth.passkeys.list(&r.state).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "Phone");
    assert_eq!(
        r.state.signed_in().and_then(|s| s.passkey),
        Some(keys[0].id)
    );
    // The next sign-in asks for that passkey.
    let next = sign_in_with(&w, &mut key, ORIGIN).await;
    assert_eq!(
        next.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
}

#[tokio::test]
async fn a_set_up_login_whose_user_enrolled_a_factor_meanwhile_ends() {
    let w = passkey_world(Arc::new(Required));
    w.user("alice").await;
    let pending = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await
        .state;
    let (first, second) = (
        w.auth.passkeys.begin_registration(&pending).await.unwrap(),
        w.auth.passkeys.begin_registration(&pending).await.unwrap(),
    );
    let mut key = SoftPasskey::new(true);
    let answer = register(&mut key, &first, ORIGIN);
    let p = &w.auth.passkeys;
    p.complete_setup(&pending, &first.state, &answer, "Phone", &ctx())
        .await
        .unwrap();
    let mut other = SoftPasskey::new(true);
    let late = register(&mut other, &second, ORIGIN);
    let r = p
        .complete_setup(&pending, &second.state, &late, "Laptop", &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::Expired));
    assert!(r.end_session);
}
