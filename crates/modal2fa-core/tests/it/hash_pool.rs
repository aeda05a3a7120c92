//! Password hashing runs on the `HashPool` port: when the pool refuses a job the request
//! is `Unavailable` (nothing counted, nothing changed), and a locked attempt reaches no
//! hashing at all.

use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, Username};
use modal2fa_core::ports::LockoutStore;
use modal2fa_core::{SecretString, ServiceError};

use crate::world::{PASSWORD, ctx, ctx_from, world};

#[tokio::test]
async fn a_sign_in_the_full_hash_pool_refuses_is_unavailable_and_counts_nothing() {
    let w = world();
    w.user("alice").await;
    w.mem.hash_pool.set_full(true);
    for name in ["alice", "nobody"] {
        let r = w
            .try_password(&LoginState::Anonymous, name, PASSWORD, None, &ctx())
            .await;
        assert!(
            matches!(r, Err(ServiceError::Unavailable(_))),
            "{name}: {r:?}"
        );
        let user_key = LockoutKey::user(&Username::parse(name).unwrap());
        assert_eq!(w.mem.lockout.get(&user_key).await.unwrap(), None, "{name}");
    }
    let ip_key = LockoutKey::ip(ctx().ip);
    assert_eq!(
        w.mem.lockout.get(&ip_key).await.unwrap(),
        None,
        "an attempt that was never checked is not counted"
    );
    w.mem.hash_pool.set_full(false);
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
async fn a_locked_attempt_reaches_no_hashing() {
    let w = world();
    w.user("alice").await;
    for i in 0..10 {
        w.try_password(
            &LoginState::Anonymous,
            "alice",
            "wrong wrong",
            None,
            &ctx_from(&format!("198.51.100.{i}")),
        )
        .await
        .unwrap();
    }
    let before = w.mem.hash_pool.jobs_run();
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(
        matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
        "{:?}",
        r.outcome
    );
    assert_eq!(w.mem.hash_pool.jobs_run(), before);
}

#[tokio::test]
async fn changing_a_password_while_the_hash_pool_is_full_is_unavailable_and_changes_nothing() {
    let w = world();
    w.user("alice").await;
    let state = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await
        .state;
    w.mem.hash_pool.set_full(true);
    let new = SecretString::new("a brand new passphrase");
    let r = w
        .auth
        .account
        .change_password(&state, &PASSWORD.into(), &new, false, &ctx())
        .await;
    assert!(matches!(r, Err(ServiceError::Unavailable(_))), "{r:?}");
    w.mem.hash_pool.set_full(false);
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        },
        "the old password still works"
    );
}
