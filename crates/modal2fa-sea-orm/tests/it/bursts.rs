//! Lockout under bursts, across two server processes' pools on one database: an attempt
//! is counted before it is checked, so however many guesses arrive together, no more are
//! checked than the budget allows. Verifications are counted in the audit log (each
//! checked wrong password is one `login_failed`, each checked wrong code one
//! `second_factor_failed`; refusals by a lock are `login_locked`).

use std::sync::Arc;

use crate::common::{TestDb, backends};
use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuditKind, Page, RequestContext};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::{AuditLog, Clock, LockoutStore};
use modal2fa_core::services::{NewAccount, PasswordLogin};
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{DefaultPolicy, Modal2fa, Ports, ServerSecret, Settings};
use modal2fa_sea_orm::SeaOrmStore;
use modal2fa_test_support::{FixedClock, MemoryNotifier, SequenceRandom};

const PASSWORD: &str = "correct horse battery";

/// The services over one pool (one "server process"), sharing the clock.
fn services(store: SeaOrmStore, clock: Arc<FixedClock>, seed: u64) -> Modal2fa {
    let store = Arc::new(store);
    let ports = Ports {
        users: store.clone(),
        factors: store.clone(),
        trusted_devices: store.clone(),
        lockout: store.clone(),
        sessions: store.clone(),
        outbox: store.clone(),
        notifier: Arc::new(MemoryNotifier::default()),
        audit: store,
        clock,
        random: Arc::new(SequenceRandom::new(seed)),
        hash_pool: Arc::new(modal2fa_test_support::InlineHashPool::default()),
        delay: Arc::new(modal2fa_test_support::RecordingDelay::new()),
    };
    let settings = Settings {
        password_hashing: PasswordHashing::FOR_TESTS,
        ..Settings::default()
    };
    Modal2fa::new(
        ports,
        Arc::new(DefaultPolicy),
        settings,
        &ServerSecret::new(vec![3; 32]).unwrap(),
    )
}

async fn audits(store: &SeaOrmStore, kind: AuditKind) -> usize {
    AuditLog::list(store, Page::first(10_000))
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

fn ctx(n: usize) -> RequestContext {
    // Each guess from its own address, so only the account's budget (10) applies.
    RequestContext::new(
        format!("198.51.100.{}", n % 250 + 1).parse().unwrap(),
        "burst",
        "/",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_wrong_passwords_through_two_pools_get_ten_checks_and_a_lock() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let clock = Arc::new(FixedClock::default_start());
        let (a, b) = (db.store().await, db.store().await);
        let one = services(a.clone(), clock.clone(), 1);
        let two = services(b, clock.clone(), 2);
        one.account
            .create_user(NewAccount {
                username: "alice".into(),
                email: None,
                first_name: String::new(),
                last_name: String::new(),
                password: Some(PASSWORD.into()),
                superuser: false,
            })
            .await
            .unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let auth = if i % 2 == 0 { one.clone() } else { two.clone() };
                tokio::spawn(async move {
                    let form = PasswordLogin {
                        username: "alice".into(),
                        password: format!("wrong guess {i}").into(),
                        trusted_device_cookie: None,
                    };
                    auth.login
                        .submit_password(&LoginState::Anonymous, form, &ctx(i))
                        .await
                        .unwrap()
                        .outcome
                })
            })
            .collect();
        let mut wrong = 0;
        for t in tasks {
            if t.await.unwrap() == Outcome::Refused(Refusal::InvalidCredentials) {
                wrong += 1;
            }
        }
        let checked = audits(&a, AuditKind::LoginFailed).await;
        assert_eq!(checked, 10, "{backend:?}: passwords checked");
        assert_eq!(wrong, 10, "{backend:?}: 'wrong password' answers");
        let entry = a
            .get(&LockoutKey::User("alice".into()))
            .await
            .unwrap()
            .expect("a counter");
        assert!(entry.locked_until.is_some(), "{backend:?}: locked");
        let refused = audits(&a, AuditKind::LoginLocked).await;
        assert_eq!(checked + refused, 50, "{backend:?}: every attempt answered");
        // The right password is refused too while locked, and checked by nobody.
        let r = one
            .login
            .submit_password(
                &LoginState::Anonymous,
                PasswordLogin {
                    username: "alice".into(),
                    password: PASSWORD.into(),
                    trusted_device_cookie: None,
                },
                &ctx(99),
            )
            .await
            .unwrap();
        assert!(matches!(
            r.outcome,
            Outcome::Refused(Refusal::Locked { .. })
        ));
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_wrong_codes_on_one_pending_login_get_five_checks_and_a_lock() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let clock = Arc::new(FixedClock::default_start());
        let (a, b) = (db.store().await, db.store().await);
        let one = services(a.clone(), clock.clone(), 1);
        let two = services(b, clock.clone(), 2);
        one.account
            .create_user(NewAccount {
                username: "alice".into(),
                email: None,
                first_name: String::new(),
                last_name: String::new(),
                password: Some(PASSWORD.into()),
                superuser: false,
            })
            .await
            .unwrap();
        let password = |auth: &Modal2fa| {
            let auth = auth.clone();
            async move {
                let form = PasswordLogin {
                    username: "alice".into(),
                    password: PASSWORD.into(),
                    trusted_device_cookie: None,
                };
                auth.login
                    .submit_password(&LoginState::Anonymous, form, &ctx(0))
                    .await
                    .unwrap()
            }
        };
        // Enrol TOTP, then park a login waiting for its code.
        let signed = password(&one).await;
        let e = one.factors.begin_totp(&signed.state).await.unwrap();
        let secret = totp::decode_secret(e.secret.expose()).unwrap();
        let code = totp::code_at(&secret, &TotpParams::default(), clock.now());
        one.factors
            .confirm_totp(&signed.state, e.token.expose(), &code, &ctx(0))
            .await
            .unwrap();
        let pending = password(&one).await;
        assert_eq!(
            pending.outcome,
            Outcome::SecondFactorRequired { setup: false }
        );
        let right = totp::code_at(&secret, &TotpParams::default(), clock.now());
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let auth = if i % 2 == 0 { one.clone() } else { two.clone() };
                let state = pending.state.clone();
                // Wrong codes only (never the current one).
                let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
                tokio::spawn(async move {
                    auth.login
                        .submit_totp(&state, &wrong, &ctx(i as usize))
                        .await
                        .unwrap()
                        .outcome
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // The second factor's own budget is 5 codes, whatever the pending login's session
        // says (the 50 posts all carry the same state).
        let checked = audits(&a, AuditKind::SecondFactorFailed).await;
        assert_eq!(checked, 5, "{backend:?}: codes checked");
        let entry = a
            .get(&LockoutKey::Factor(modal2fa_core::UserId(1)))
            .await
            .unwrap()
            .expect("a counter");
        assert!(entry.locked_until.is_some(), "{backend:?}: locked");
        // Every attempt that was not refused by a lock it read first was counted; how
        // many read the lock first depends on timing (such an attempt is refused before
        // it is counted, and checked by nobody). Exact counting under concurrency itself is
        // `schema_and_concurrency::fifty_concurrent_failures_through_two_pools_count_exactly_fifty_and_lock_once`.
        assert!(
            (6..=50).contains(&entry.failures),
            "{backend:?}: {} attempts counted",
            entry.failures
        );
        db.drop_db().await;
    }
}
