//! The second factor's own budget: an attacker who holds the password gets a bounded
//! number of code guesses a day, whatever the owner's sign-ins do meanwhile.

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, SecurityEventKind};
use modal2fa_core::services::CookieUpdate;
use time::Duration;

use crate::world::*;

#[tokio::test]
async fn the_daily_cap_on_code_guesses_holds_across_the_owner_s_sign_ins() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let mut owner_cookie = w.trust(&r.state, "Owner's laptop").await;
    let mut pending: Option<LoginState> = None;
    let mut checked_per_day = [0u32; 3];
    for minute in 0..3 * 24 * 60 {
        let day = minute / (24 * 60);
        // Every hour the owner signs in with password and trusted device: that clears the
        // password counter, never the second factor's.
        if minute % 60 == 0 {
            let r = w
                .password(
                    &LoginState::Anonymous,
                    "alice",
                    PASSWORD,
                    Some(&owner_cookie),
                )
                .await;
            assert_eq!(
                r.outcome,
                Outcome::SignedIn {
                    method: AuthMethod::Cookie
                },
                "the owner is never locked out"
            );
            if let CookieUpdate::Set(next) = r.trusted_device_cookie {
                owner_cookie = next;
            }
        }
        // The attacker, from a new address each minute, with the password: one wrong code.
        let ip = format!(
            "10.{}.{}.{}",
            minute / 65536,
            (minute / 256) % 256,
            minute % 256
        );
        let from = ctx_from(&ip);
        let state = match pending.take() {
            Some(s) => s,
            None => {
                let r = w
                    .try_password(&LoginState::Anonymous, "alice", PASSWORD, None, &from)
                    .await
                    .unwrap();
                assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
                r.state
            }
        };
        let wrong = format!(
            "{:06}",
            (w.code(&secret).parse::<u32>().unwrap() + 500_000) % 1_000_000
        );
        let r = w
            .auth
            .login
            .submit_totp(&state, &wrong, &from)
            .await
            .unwrap();
        match r.outcome {
            Outcome::Refused(Refusal::InvalidCode) => {
                checked_per_day[day] += 1;
                pending = Some(r.state);
            }
            Outcome::Refused(Refusal::TooManyAttempts) => checked_per_day[day] += 1,
            Outcome::Refused(Refusal::Locked { .. }) => pending = Some(r.state),
            // The pending login timed out while the factor was locked: start again.
            Outcome::Refused(Refusal::Expired) => {}
            other => panic!("minute {minute}: {other:?}"),
        }
        w.mem.clock.advance(Duration::minutes(1));
    }
    eprintln!("wrong codes checked per day: {checked_per_day:?}");
    assert!(
        checked_per_day[0] <= 60,
        "day one: {} codes checked",
        checked_per_day[0]
    );
    assert!(
        checked_per_day[1] <= 5 && checked_per_day[2] <= 5,
        "later days: {checked_per_day:?}"
    );
    assert!(
        checked_per_day[0] >= 5,
        "the budget is used: {checked_per_day:?}"
    );
    assert!(w.notified(SecurityEventKind::SecondFactorFailures).await >= 1);
}

#[tokio::test]
async fn wrong_codes_count_on_the_client_address_too() {
    use modal2fa_core::lockout::LockoutKey;
    use modal2fa_core::ports::LockoutStore;
    let w = world();
    let mut secrets = Vec::new();
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        secrets.push(w.enrolled(name).await.1);
    }
    w.mem.clock.advance(Duration::seconds(30));
    let from = ctx_from("192.0.2.99");
    for (i, name) in ["a1", "a2", "a3", "a4"].iter().enumerate() {
        let mut r = w
            .try_password(&LoginState::Anonymous, name, PASSWORD, None, &from)
            .await
            .unwrap();
        let wrong = format!(
            "{:06}",
            (w.code(&secrets[i]).parse::<u32>().unwrap() + 1) % 1_000_000
        );
        for _ in 0..5 {
            r = w
                .auth
                .login
                .submit_totp(&r.state, &wrong, &from)
                .await
                .unwrap();
        }
        assert_eq!(r.outcome, Outcome::Refused(Refusal::TooManyAttempts));
    }
    let ip = w
        .mem
        .lockout
        .get(&LockoutKey::ip("192.0.2.99".parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ip.failures, 20, "twenty wrong codes from one address");
    // The address is locked: the right code of another account is refused from it.
    let r = w
        .try_password(&LoginState::Anonymous, "a5", PASSWORD, None, &from)
        .await
        .unwrap();
    assert!(
        matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
        "{r:?}"
    );
}
