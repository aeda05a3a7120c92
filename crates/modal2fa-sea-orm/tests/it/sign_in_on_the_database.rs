//! The core's services over the SeaORM store: password + TOTP sign-in, a trusted device,
//! and lockout, on every backend this run can reach.

use std::sync::Arc;

use crate::common::{TestDb, backends};
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, RequestContext};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::Clock;
use modal2fa_core::services::{CookieUpdate, NewAccount, PasswordLogin};
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{DefaultPolicy, Modal2fa, Ports, ServerSecret, Settings};
use modal2fa_test_support::{FixedClock, MemoryNotifier, SequenceRandom};
use time::Duration;

#[tokio::test]
async fn a_user_signs_in_with_password_totp_and_a_trusted_device_on_the_database() {
    // Statements per step, per backend: the same store code must cost the same round
    // trips on every database (docs/PERFORMANCE.md, "Statements per sign-in").
    let mut statements = Vec::new();
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let store = Arc::new(db.store().await);
        let clock = Arc::new(FixedClock::default_start());
        let ports = Ports::builder(store.clone())
            .notifier(Arc::new(MemoryNotifier::default()))
            .clock(clock.clone())
            .random(Arc::new(SequenceRandom::new(9)))
            .hash_pool(Arc::new(modal2fa_test_support::InlineHashPool::default()))
            .delay(Arc::new(modal2fa_test_support::RecordingDelay::new()))
            .build()
            .unwrap();
        let mut steps = Vec::new();
        let settings = Settings {
            password_hashing: PasswordHashing::FOR_TESTS,
            ..Settings::default()
        };
        let auth = Modal2fa::new(
            ports,
            Arc::new(DefaultPolicy),
            settings,
            &ServerSecret::new(vec![1; 32]).unwrap(),
        );
        let ctx = RequestContext::new("192.0.2.4".parse().unwrap(), "Firefox", "/auth/login/");
        auth.account
            .create_user(NewAccount {
                username: "alice".into(),
                email: Some("alice@example.com".into()),
                first_name: String::new(),
                last_name: String::new(),
                password: Some("correct horse battery".into()),
                superuser: false,
            })
            .await
            .unwrap();
        let login = |cookie: Option<modal2fa_core::SecretString>, pw: &'static str| {
            let auth = auth.clone();
            let ctx = ctx.clone();
            async move {
                auth.login
                    .submit_password(
                        &LoginState::Anonymous,
                        PasswordLogin {
                            username: "alice".into(),
                            password: pw.into(),
                            trusted_device_cookie: cookie,
                        },
                        &ctx,
                    )
                    .await
                    .unwrap()
            }
        };
        let r = login(None, "correct horse battery").await;
        let e = auth.factors.begin_totp(&r.state).await.unwrap();
        let secret = totp::decode_secret(e.secret.expose()).unwrap();
        let code = || totp::code_at(&secret, &TotpParams::default(), clock.now());
        auth.factors
            .confirm_totp(&r.state, e.token.expose(), &code(), &ctx)
            .await
            .unwrap();
        clock.advance(Duration::seconds(30));
        let before = store.statements_run();
        let r = login(None, "correct horse battery").await;
        assert_eq!(
            r.outcome,
            Outcome::SecondFactorRequired { setup: false },
            "{backend:?}"
        );
        steps.push((
            "password, second factor due",
            store.statements_run() - before,
        ));
        let before = store.statements_run();
        let r = auth
            .login
            .submit_totp(&r.state, &code(), &ctx)
            .await
            .unwrap();
        steps.push(("TOTP code", store.statements_run() - before));
        assert_eq!(
            r.outcome,
            Outcome::SignedIn {
                method: AuthMethod::TwoFactor
            },
            "{backend:?}"
        );
        let id = auth.sessions.create(&r.state, &ctx).await.unwrap();
        assert_eq!(
            auth.sessions.load(&id).await.unwrap().unwrap().state,
            r.state
        );
        let cookie = auth
            .trusted_devices
            .trust_this_device(&r.state, "Laptop", None, &ctx)
            .await
            .unwrap()
            .cookie;
        let before = store.statements_run();
        let r = login(Some(cookie), "correct horse battery").await;
        steps.push(("trusted device", store.statements_run() - before));
        assert_eq!(
            r.outcome,
            Outcome::SignedIn {
                method: AuthMethod::Cookie
            },
            "{backend:?}"
        );
        assert!(matches!(r.trusted_device_cookie, CookieUpdate::Set(_)));
        let before = store.statements_run();
        login(None, "wrong password").await;
        steps.push(("failed", store.statements_run() - before));
        for _ in 1..10 {
            login(None, "wrong password").await;
        }
        // Locked for a new address, even with the right password...
        let form = PasswordLogin {
            username: "alice".into(),
            password: "correct horse battery".into(),
            trusted_device_cookie: None,
        };
        let elsewhere =
            RequestContext::new("192.0.2.99".parse().unwrap(), "Firefox", "/auth/login/");
        let r = auth
            .login
            .submit_password(&LoginState::Anonymous, form, &elsewhere)
            .await
            .unwrap();
        assert!(
            matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
            "{backend:?}: {:?}",
            r.outcome
        );
        // ...while the address alice signed in from still gets its own budget.
        let known = login(None, "correct horse battery").await;
        assert!(
            matches!(known.outcome, Outcome::SecondFactorRequired { .. }),
            "{backend:?}: {:?}",
            known.outcome
        );
        eprintln!("{backend:?}: {steps:?}");
        statements.push((backend, steps));
        db.drop_db().await;
    }
    for (backend, steps) in &statements[1..] {
        assert_eq!(
            steps, &statements[0].1,
            "{backend:?} runs other statements than {:?}",
            statements[0].0
        );
    }
}
