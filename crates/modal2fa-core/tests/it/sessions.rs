//! Server-side sessions: hashed ids, timeouts, renewal.

use modal2fa_core::machine::LoginState;
use time::Duration;

use crate::world::*;

#[tokio::test]
async fn sessions_store_only_a_hash_and_end_after_idle_and_absolute_timeouts() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let id = w.auth.sessions.create(&r.state, &ctx()).await.unwrap();
    assert!(id.expose().len() >= 43, "256-bit id");
    assert!(
        w.mem
            .sessions
            .has_hash(&modal2fa_core::services::SessionService::id_hash(&id))
    );
    assert!(!w.mem.sessions.has_hash(id.expose()));
    let loaded = w.auth.sessions.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.state, r.state);
    // Active use keeps it alive past the idle timeout...
    let mut record = loaded.record;
    for _ in 0..30 {
        w.mem.clock.advance(Duration::minutes(20));
        let s = w
            .auth
            .sessions
            .load(&id)
            .await
            .unwrap()
            .expect("still alive");
        assert!(
            w.auth
                .sessions
                .update(&id, &s.record, &s.state, &ctx())
                .await
                .unwrap()
        );
        record = s.record;
    }
    // ...but not past the absolute one (12 h).
    w.mem.clock.advance(Duration::hours(3));
    assert!(
        w.auth.sessions.load(&id).await.unwrap().is_none(),
        "{record:?}"
    );
    let id2 = w.auth.sessions.create(&r.state, &ctx()).await.unwrap();
    w.mem.clock.advance(Duration::minutes(31));
    assert!(
        w.auth.sessions.load(&id2).await.unwrap().is_none(),
        "idle timeout"
    );
}

#[tokio::test]
async fn renewing_a_session_gives_a_new_id_and_kills_the_old_one() {
    let w = world();
    let id = w
        .auth
        .sessions
        .create(&LoginState::Anonymous, &ctx())
        .await
        .unwrap();
    let old = w.auth.sessions.load(&id).await.unwrap().unwrap();
    let new = w
        .auth
        .sessions
        .renew(Some((&id, &old.record)), &LoginState::Anonymous, &ctx())
        .await
        .unwrap()
        .expect("renewed");
    assert_ne!(new, id);
    assert!(w.auth.sessions.load(&id).await.unwrap().is_none());
    assert!(w.auth.sessions.load(&new).await.unwrap().is_some());
}

#[tokio::test]
async fn a_session_ended_while_a_request_holds_it_stays_ended() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let id = w.auth.sessions.create(&r.state, &ctx()).await.unwrap();
    // A request loads the session; another ends it before the first one writes.
    let held = w.auth.sessions.load(&id).await.unwrap().unwrap();
    w.auth.sessions.end(&id).await.unwrap();
    assert!(
        !w.auth
            .sessions
            .update(&id, &held.record, &held.state, &ctx())
            .await
            .unwrap(),
        "an update of an ended session reports it"
    );
    assert!(
        w.auth
            .sessions
            .renew(Some((&id, &held.record)), &held.state, &ctx())
            .await
            .unwrap()
            .is_none(),
        "a renewal of an ended session gives no new id"
    );
    assert!(w.auth.sessions.load(&id).await.unwrap().is_none());
    assert!(w.mem.sessions.is_empty(), "nothing was written back");
}

#[tokio::test]
async fn the_background_purge_removes_expired_sessions_quiet_counters_and_stale_enrolments() {
    use modal2fa_core::lockout::LockoutKey;
    use modal2fa_core::ports::{Clock, FactorStore, LockoutStore};
    let w = world();
    w.user("alice").await;
    let live = w
        .auth
        .sessions
        .create(&LoginState::Anonymous, &ctx())
        .await
        .unwrap();
    w.password(&LoginState::Anonymous, "alice", "wrong wrong", None)
        .await;
    w.mem
        .factors
        .add_totp(modal2fa_core::UserId(1), vec![1], w.mem.clock.now())
        .await
        .unwrap();
    assert_eq!(
        w.auth.maintenance.purge().await.unwrap(),
        modal2fa_core::services::Purged::default(),
        "nothing has expired yet"
    );
    w.mem.clock.advance(Duration::days(2));
    let purged = w.auth.maintenance.purge().await.unwrap();
    assert_eq!(
        (purged.sessions, purged.lockout_counters, purged.enrolments),
        (1, 2, 1),
        "{purged:?}"
    );
    assert!(w.auth.sessions.load(&live).await.unwrap().is_none());
    assert!(
        w.mem
            .lockout
            .get(&LockoutKey::User("alice".into()))
            .await
            .unwrap()
            .is_none()
    );
}
