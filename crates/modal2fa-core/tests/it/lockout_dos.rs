//! Lockout without denial of service: failures from elsewhere lock an account for
//! everyone else, but its owner still gets through — from an address they signed in from
//! before, or with a trusted device — and after 100 consecutive failed checks the account
//! refuses every other attempt, however many addresses are used.

use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::AuthMethod;
use modal2fa_core::ports::LockoutStore;
use time::Duration;

use crate::world::*;

const HOME: &str = "198.51.100.20";

/// Ten wrong passwords for alice from ten other addresses: her account is locked.
async fn lock_from_elsewhere(w: &World, round: u32) {
    for i in 0..10 {
        w.try_password(
            &LoginState::Anonymous,
            "alice",
            "not her password",
            None,
            &ctx_from(&format!("203.0.113.{}", (round * 10 + i) % 250)),
        )
        .await
        .unwrap();
    }
}

fn locked(r: &modal2fa_core::services::LoginReport) -> bool {
    matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. }))
}

#[tokio::test]
async fn the_owner_signs_in_from_a_known_address_through_a_lock_caused_elsewhere() {
    let w = world();
    w.user("alice").await;
    let home = ctx_from(HOME);
    let r = w
        .try_password(&LoginState::Anonymous, "alice", PASSWORD, None, &home)
        .await
        .unwrap();
    assert!(matches!(r.outcome, Outcome::SignedIn { .. }));
    lock_from_elsewhere(&w, 0).await;
    // A new address is refused, even with the right password...
    let stranger = w
        .try_password(
            &LoginState::Anonymous,
            "alice",
            PASSWORD,
            None,
            &ctx_from("192.0.2.77"),
        )
        .await
        .unwrap();
    assert!(locked(&stranger), "{stranger:?}");
    // ...the owner at home is not.
    let owner = w
        .try_password(&LoginState::Anonymous, "alice", PASSWORD, None, &home)
        .await
        .unwrap();
    assert_eq!(
        owner.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    // The success clears only the account-at-home counter: the lock stays for others.
    let again = w
        .try_password(
            &LoginState::Anonymous,
            "alice",
            PASSWORD,
            None,
            &ctx_from("192.0.2.78"),
        )
        .await
        .unwrap();
    assert!(locked(&again), "{again:?}");
    let account = w
        .mem
        .lockout
        .get(&LockoutKey::User("alice".into()))
        .await
        .unwrap()
        .expect("the account's counter stays");
    assert!(account.locked_until.is_some());
}

#[tokio::test]
async fn guesses_from_a_known_address_are_bounded_by_their_own_counter() {
    let w = world();
    w.user("alice").await;
    let home = ctx_from(HOME);
    w.try_password(&LoginState::Anonymous, "alice", PASSWORD, None, &home)
        .await
        .unwrap();
    lock_from_elsewhere(&w, 0).await;
    let mut checked = 0;
    for _ in 0..30 {
        let r = w
            .try_password(
                &LoginState::Anonymous,
                "alice",
                "wrong at home",
                None,
                &home,
            )
            .await
            .unwrap();
        if r.outcome == Outcome::Refused(Refusal::InvalidCredentials) {
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "the account-at-this-address budget");
    let r = w
        .try_password(&LoginState::Anonymous, "alice", PASSWORD, None, &home)
        .await
        .unwrap();
    assert!(locked(&r), "{r:?}");
}

#[tokio::test]
async fn the_owner_with_a_trusted_device_signs_in_through_a_lock_caused_elsewhere() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let cookie = w.trust(&r.state, "Laptop").await;
    lock_from_elsewhere(&w, 0).await;
    // From a café never used before: the device lets her through.
    let cafe = ctx_from("192.0.2.200");
    let r = w
        .try_password(
            &LoginState::Anonymous,
            "alice",
            PASSWORD,
            Some(&cookie),
            &cafe,
        )
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Cookie
        },
        "{r:?}"
    );
    let without = w
        .try_password(
            &LoginState::Anonymous,
            "alice",
            PASSWORD,
            None,
            &ctx_from("192.0.2.201"),
        )
        .await
        .unwrap();
    assert!(locked(&without));
}

#[tokio::test]
async fn the_101st_consecutive_failure_is_refused_however_many_addresses_are_used() {
    let w = world();
    w.user("alice").await;
    let home = ctx_from(HOME);
    w.try_password(&LoginState::Anonymous, "alice", PASSWORD, None, &home)
        .await
        .unwrap();
    // An attacker waits out every lock, from a new address each time.
    let mut checked = 0u32;
    let mut attempt = 0u32;
    while attempt < 2_000 {
        attempt += 1;
        let from = ctx_from(&format!("10.1.{}.{}", attempt / 250, attempt % 250));
        let r = w
            .try_password(&LoginState::Anonymous, "alice", "guess", None, &from)
            .await
            .unwrap();
        match r.outcome {
            Outcome::Refused(Refusal::InvalidCredentials) => checked += 1,
            Outcome::Refused(Refusal::Locked { until }) => {
                if until - modal2fa_core::ports::Clock::now(w.mem.clock.as_ref())
                    > Duration::days(365)
                {
                    break;
                }
                let wait = until - modal2fa_core::ports::Clock::now(w.mem.clock.as_ref())
                    + Duration::seconds(1);
                w.mem.clock.advance(wait);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked, 100, "failed checks before the account stopped");
    w.mem.clock.advance(Duration::days(20));
    let later = w
        .try_password(
            &LoginState::Anonymous,
            "alice",
            PASSWORD,
            None,
            &ctx_from("10.9.9.9"),
        )
        .await
        .unwrap();
    assert!(
        locked(&later),
        "twenty days later, from a new address: {later:?}"
    );
    let owner = w
        .try_password(&LoginState::Anonymous, "alice", PASSWORD, None, &home)
        .await
        .unwrap();
    assert!(
        matches!(owner.outcome, Outcome::SignedIn { .. }),
        "the owner at home: {owner:?}"
    );
}
