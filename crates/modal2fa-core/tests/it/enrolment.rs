//! Enrolling an authenticator app: showing the set-up page stores nothing; the sealed
//! enrolment is bound to its user and expires; a set-up login parked at password time
//! cannot replace a factor the owner enrolled meanwhile.

use std::sync::Arc;

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, UserId};
use modal2fa_core::ports::FactorStore;
use modal2fa_core::services::ENROLMENT_LIFETIME;
use modal2fa_core::totp;
use modal2fa_core::{AuthPolicy, ServiceError, User};
use time::Duration;

use crate::world::*;

struct Required;
impl AuthPolicy for Required {
    fn user_2fa_optional(&self, _u: &User) -> bool {
        false
    }
}

async fn devices(w: &World, user: i64) -> usize {
    w.mem
        .factors
        .totp_devices(UserId(user))
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn showing_the_set_up_page_stores_nothing_however_often_it_is_opened() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    for _ in 0..25 {
        w.auth.factors.begin_totp(&r.state).await.unwrap();
    }
    assert_eq!(
        devices(&w, 1).await,
        0,
        "no unconfirmed enrolment is stored"
    );
    let e = w.auth.factors.begin_totp(&r.state).await.unwrap();
    let secret = totp::decode_secret(e.secret.expose()).unwrap();
    w.auth
        .factors
        .confirm_totp(&r.state, e.token.expose(), &w.code(&secret), &ctx())
        .await
        .unwrap();
    let stored = w.mem.factors.totp_devices(UserId(1)).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].confirmed,
        "only a confirmed device is ever stored"
    );
}

#[tokio::test]
async fn an_enrolment_expires_and_opens_only_for_the_user_it_was_made_for() {
    let w = world();
    w.user("alice").await;
    w.user("bob").await;
    let alice = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let bob = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    let e = w.auth.factors.begin_totp(&alice.state).await.unwrap();
    let secret = totp::decode_secret(e.secret.expose()).unwrap();
    let refused = |r: Result<(), ServiceError>| {
        matches!(r, Err(ServiceError::Refused(Refusal::EnrolmentExpired)))
    };
    assert!(refused(
        w.auth
            .factors
            .confirm_totp(&bob.state, e.token.expose(), &w.code(&secret), &ctx())
            .await
    ));
    let mut altered = e.token.expose().to_owned();
    altered.replace_range(10..11, if &altered[10..11] == "A" { "B" } else { "A" });
    assert!(refused(
        w.auth
            .factors
            .confirm_totp(&alice.state, &altered, &w.code(&secret), &ctx())
            .await
    ));
    w.mem
        .clock
        .advance(ENROLMENT_LIFETIME + Duration::seconds(1));
    let alice = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(refused(
        w.auth
            .factors
            .confirm_totp(&alice.state, e.token.expose(), &w.code(&secret), &ctx())
            .await
    ));
    assert_eq!(devices(&w, 1).await + devices(&w, 2).await, 0);
}

#[tokio::test]
async fn a_set_up_login_parked_before_the_owner_enrolled_cannot_replace_the_owner_s_app() {
    let w = world_with(Arc::new(Required));
    w.user("bob").await;
    // An attacker with the password parks a set-up login and starts an enrolment.
    let attacker = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    assert_eq!(
        attacker.outcome,
        Outcome::SecondFactorRequired { setup: true }
    );
    let theirs = w.auth.factors.begin_totp(&attacker.state).await.unwrap();
    let their_secret = totp::decode_secret(theirs.secret.expose()).unwrap();
    // Meanwhile the owner signs in and enrols their own app.
    let owner = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    let mine = w.auth.factors.begin_totp(&owner.state).await.unwrap();
    let my_secret = totp::decode_secret(mine.secret.expose()).unwrap();
    let done = w
        .auth
        .login
        .complete_setup_with_totp(
            &owner.state,
            mine.token.expose(),
            &w.code(&my_secret),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        done.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    // The attacker's confirmation ends their set-up login and replaces nothing.
    let late = w
        .auth
        .login
        .complete_setup_with_totp(
            &attacker.state,
            theirs.token.expose(),
            &w.code(&their_secret),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(late.outcome, Outcome::Refused(Refusal::Expired));
    assert!(late.end_session && late.state == LoginState::Anonymous);
    let stored = w.mem.factors.totp_devices(UserId(1)).await.unwrap();
    assert_eq!(stored.len(), 1, "the owner's app only");
    w.mem.clock.advance(Duration::seconds(30));
    let again = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    let r = w
        .auth
        .login
        .submit_totp(&again.state, &w.code(&my_secret), &ctx())
        .await
        .unwrap();
    assert!(matches!(r.outcome, Outcome::SignedIn { .. }), "{r:?}");
}
