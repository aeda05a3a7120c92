//! `Ports::builder`: one store for every store port, defaults for the rest, and a clear
//! error for a port without a default.

use std::sync::Arc;

use modal2fa_core::machine::{LoginState, Outcome};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::services::{MissingPort, NewAccount, PasswordLogin};
use modal2fa_core::{
    AuthMethod, DefaultPolicy, Modal2fa, Ports, RequestContext, ServerSecret, Settings,
};
use modal2fa_test_support::{InlineHashPool, RecordingDelay};

use crate::common::{Backend, TestDb};

#[tokio::test]
async fn building_ports_without_a_hash_pool_or_a_delay_names_the_one_missing() {
    let db = TestDb::create(Backend::Sqlite).await;
    let store = Arc::new(db.store().await);
    let no_pool = Ports::builder(store.clone())
        .delay(Arc::new(RecordingDelay::new()))
        .build();
    let err = no_pool.err().expect("a hash pool is required");
    assert_eq!(err, MissingPort::HashPool);
    assert!(err.to_string().contains("hash pool"), "{err}");
    let no_delay = Ports::builder(store)
        .hash_pool(Arc::new(InlineHashPool::default()))
        .build();
    assert_eq!(no_delay.err(), Some(MissingPort::Delay));
    db.drop_db().await;
}

#[tokio::test]
async fn one_store_and_the_default_clock_random_and_notifier_sign_a_user_in() {
    let db = TestDb::create(Backend::Sqlite).await;
    let ports = Ports::builder(Arc::new(db.store().await))
        .hash_pool(Arc::new(InlineHashPool::default()))
        .delay(Arc::new(RecordingDelay::new()))
        .build()
        .unwrap();
    let settings = Settings {
        password_hashing: PasswordHashing::FOR_TESTS,
        ..Settings::default()
    };
    let secret = ServerSecret::new(vec![9; 32]).unwrap();
    let auth = Modal2fa::new(ports, Arc::new(DefaultPolicy), settings, &secret);
    auth.account
        .create_user(NewAccount {
            username: "wired".into(),
            email: Some("wired@example.com".into()),
            first_name: String::new(),
            last_name: String::new(),
            password: Some("correct horse battery".into()),
            superuser: false,
        })
        .await
        .unwrap();
    let ctx = RequestContext::new("203.0.113.5".parse().unwrap(), "test", "/auth/login/");
    let r = auth
        .login
        .submit_password(
            &LoginState::Anonymous,
            PasswordLogin {
                username: "wired".into(),
                password: "correct horse battery".into(),
                trusted_device_cookie: None,
            },
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    // The default notifier accepts a security notice without sending it anywhere.
    auth.account
        .request_password_reset("wired@example.com", "https://app.example/reset/", &ctx)
        .await
        .unwrap();
    db.drop_db().await;
}

#[tokio::test]
async fn a_hot_pooled_connection_goes_to_its_statement_without_a_ping_first() {
    // sqlx pings at every checkout by default: one more hop to SQLite's worker thread (or
    // one more round trip to a server) per statement. The store pings only connections
    // idle for `PoolOptions::ping_after_idle`.
    let db = TestDb::create(Backend::Sqlite).await;
    let store = db.store().await;
    let pool = store.connection().get_sqlite_connection_pool();
    assert!(!pool.options().get_test_before_acquire());
    assert_eq!(
        modal2fa_sea_orm::PoolOptions::default().ping_after_idle,
        std::time::Duration::from_secs(5)
    );
    db.drop_db().await;
}
