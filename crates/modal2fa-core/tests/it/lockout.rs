//! Lockout: user and IP locks refuse even the right password; exclusions.

use std::sync::Arc;

use modal2fa_core::ServiceError;
use modal2fa_core::lockout::{LockoutEntry, LockoutKey, LockoutRule};
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::AuthMethod;
use modal2fa_core::model::Page;
use modal2fa_core::ports::{LockoutStore, PortError, PortResult};
use modal2fa_core::services::PasswordLogin;
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret};
use modal2fa_test_support::MemoryPorts;
use time::Duration;

use crate::world::*;

#[tokio::test]
async fn a_locked_user_is_refused_even_with_the_correct_password_until_the_lock_expires() {
    let w = world();
    w.user("alice").await;
    for i in 0..10 {
        // From different addresses: the user counter alone locks.
        let r = w
            .try_password(
                &LoginState::Anonymous,
                "alice",
                "wrong wrong",
                None,
                &ctx_from(&format!("198.51.100.{i}")),
            )
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCredentials));
    }
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(
        matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
        "{:?}",
        r.outcome
    );
    w.mem.clock.advance(Duration::seconds(31));
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
async fn a_locked_ip_is_refused_even_with_the_correct_password_of_another_user() {
    let w = world();
    w.user("alice").await;
    for i in 0..20 {
        w.password(
            &LoginState::Anonymous,
            &format!("spray{i}"),
            "guess guess",
            None,
        )
        .await;
    }
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(matches!(
        r.outcome,
        Outcome::Refused(Refusal::Locked { .. })
    ));
    // Another address is not affected.
    let r = w
        .try_password(
            &LoginState::Anonymous,
            "alice",
            PASSWORD,
            None,
            &ctx_from("192.0.2.99"),
        )
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}

#[tokio::test]
async fn an_excluded_ip_is_never_locked_by_the_ip_counter() {
    let mut s = settings();
    s.lockout.excluded = modal2fa_core::client_ip::IpSet::parse(&["203.0.113.0/24"]).unwrap();
    let mem = MemoryPorts::new();
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        s,
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    for i in 0..25 {
        auth.login
            .submit_password(
                &LoginState::Anonymous,
                PasswordLogin {
                    username: format!("u{i}"),
                    password: "x".into(),
                    trusted_device_cookie: None,
                },
                &ctx(),
            )
            .await
            .unwrap();
    }
    use modal2fa_core::ports::LockoutStore;
    assert!(
        mem.lockout
            .get(&LockoutKey::ip(ctx().ip))
            .await
            .unwrap()
            .is_none()
    );
}

/// Lockout counters that can be read but not written: counting an attempt fails.
struct CannotCount(Arc<dyn LockoutStore>);

#[async_trait::async_trait]
impl LockoutStore for CannotCount {
    async fn get(&self, key: &LockoutKey) -> PortResult<Option<LockoutEntry>> {
        self.0.get(key).await
    }
    async fn get_many(&self, keys: &[&LockoutKey]) -> PortResult<Vec<LockoutEntry>> {
        self.0.get_many(keys).await
    }
    async fn record_failure(
        &self,
        _: &LockoutKey,
        _: Option<&LockoutEntry>,
        _: time::OffsetDateTime,
        _: LockoutRule,
    ) -> PortResult<LockoutEntry> {
        Err(PortError::Unavailable(
            "the counter cannot be written".into(),
        ))
    }
    async fn settle(
        &self,
        key: &LockoutKey,
        reserved: &LockoutEntry,
        before: Option<&LockoutEntry>,
    ) -> PortResult<()> {
        self.0.settle(key, reserved, before).await
    }
    async fn clear(&self, key: &LockoutKey) -> PortResult<bool> {
        self.0.clear(key).await
    }
    async fn list(&self, page: Page) -> PortResult<Vec<LockoutEntry>> {
        self.0.list(page).await
    }
    async fn purge_expired(&self, cutoff: time::OffsetDateTime) -> PortResult<u64> {
        self.0.purge_expired(cutoff).await
    }
    async fn remember_client(&self, a: &str, b: &str, at: time::OffsetDateTime) -> PortResult<()> {
        self.0.remember_client(a, b, at).await
    }
    async fn knows_client(&self, a: &str, b: &str, s: time::OffsetDateTime) -> PortResult<bool> {
        self.0.knows_client(a, b, s).await
    }
    async fn forget_clients(&self, before: time::OffsetDateTime) -> PortResult<u64> {
        self.0.forget_clients(before).await
    }
}

#[tokio::test]
async fn an_attempt_that_cannot_be_counted_is_refused_and_never_signs_in() {
    let mem = MemoryPorts::new();
    let mut ports = mem.ports.clone();
    ports.lockout = Arc::new(CannotCount(ports.lockout.clone()));
    let auth = Modal2fa::new(
        ports,
        Arc::new(DefaultPolicy),
        settings(),
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    let w = World { mem, auth };
    w.user("alice").await;
    let result = w
        .try_password(&LoginState::Anonymous, "alice", PASSWORD, None, &ctx())
        .await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable(_))),
        "fails closed: {result:?}"
    );
    assert_eq!(w.mem.sessions.list_active_count(), 0, "no session");
}
