//! The answer floor of a failed sign-in: every checked failure asks the Delay port for the
//! same wait, whatever the stored hash; a success and a floor of zero ask for none.

use std::sync::Arc;
use std::time::Duration;

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::AuthMethod;
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;

use crate::world::{PASSWORD, World, settings};

const FLOOR: Duration = Duration::from_millis(500);

/// Django: make_password("hunter2 hunter2", "abcdefghijklmnopqrstuv"), 1 000 000 iterations.
const DJANGO_1M: &str =
    "pbkdf2_sha256$1000000$abcdefghijklmnopqrstuv$i0DD2HI2m9WWAvBZMOSdak4zdLdrEK+r6b8VDt1stCM=";

fn world_with_floor(floor: Duration) -> World {
    let mem = MemoryPorts::new();
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        Settings {
            password_answer_floor: floor,
            ..settings()
        },
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    World { mem, auth }
}

async fn with_hash(w: &World, name: &str, hash: &str) {
    let id = w.user(name).await;
    w.mem
        .users
        .edit(id, |u| u.password_hash = Some(hash.into()));
}

#[tokio::test]
async fn a_failed_attempt_against_a_slow_legacy_hash_and_against_an_unknown_user_ask_for_the_same_answer_floor()
 {
    let w = world_with_floor(FLOOR);
    with_hash(&w, "legacy", DJANGO_1M).await;
    with_hash(&w, "unusable", "!9nd6P3fVjQm2xkT1uRb8sYcWz4LhA0eGoJtKqNv").await;
    with_hash(&w, "garbled", "md5$not$a-hash").await;
    for name in ["legacy", "nobody", "unusable", "garbled"] {
        w.mem.delay.clear();
        let r = w
            .password(&LoginState::Anonymous, name, "wrong wrong wrong", None)
            .await;
        assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCredentials));
        assert_eq!(w.mem.delay.sleeps(), vec![FLOOR], "{name}");
    }
}

#[tokio::test]
async fn the_legacy_hash_still_verifies_and_a_correct_password_answers_without_waiting() {
    let w = world_with_floor(FLOOR);
    with_hash(&w, "legacy", DJANGO_1M).await;
    let r = w
        .password(&LoginState::Anonymous, "legacy", "hunter2 hunter2", None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    w.user("alice").await;
    w.password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(w.mem.delay.sleeps(), Vec::<Duration>::new());
}

#[tokio::test]
async fn without_a_floor_a_failed_attempt_asks_for_no_wait() {
    let w = world_with_floor(Duration::ZERO);
    w.password(&LoginState::Anonymous, "nobody", "wrong wrong wrong", None)
        .await;
    assert_eq!(w.mem.delay.sleeps(), Vec::<Duration>::new());
}
