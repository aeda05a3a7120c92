//! The services over in-memory adapters: every flow of SPEC §1–§5 end to end.

use std::sync::Arc;

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{
    AuditKind, AuthMethod, LockoutKey, Page, RequestContext, SecurityEventKind, UserId,
};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::Notification;
use modal2fa_core::services::{
    CookieUpdate, InviteRequest, LoginReport, NewAccount, PasswordLogin,
};
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{
    AuthPolicy, DefaultPolicy, Modal2fa, SecretString, ServerSecret, ServiceError, Settings,
};
use modal2fa_test_support::MemoryPorts;
use time::Duration;

const PASSWORD: &str = "correct horse battery";

struct World {
    mem: MemoryPorts,
    auth: Modal2fa,
}

fn settings() -> Settings {
    Settings {
        password_hashing: PasswordHashing::Argon2id {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Settings::default()
    }
}

fn world_with(policy: Arc<dyn AuthPolicy>) -> World {
    let mem = MemoryPorts::new();
    let auth = Modal2fa::new(
        mem.ports.clone(),
        policy,
        settings(),
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    World { mem, auth }
}

fn world() -> World {
    world_with(Arc::new(DefaultPolicy))
}

fn ctx() -> RequestContext {
    RequestContext::new(
        "203.0.113.10".parse().unwrap(),
        "Firefox/140",
        "/auth/login/",
    )
}

fn ctx_from(ip: &str) -> RequestContext {
    RequestContext::new(ip.parse().unwrap(), "Firefox/140", "/auth/login/")
}

impl World {
    async fn user(&self, name: &str) -> UserId {
        self.auth
            .account
            .create_user(NewAccount {
                username: name.into(),
                email: Some(if name.contains('@') {
                    name.to_owned()
                } else {
                    format!("{name}@example.com")
                }),
                first_name: String::new(),
                last_name: String::new(),
                password: Some(PASSWORD.into()),
                superuser: false,
            })
            .await
            .unwrap()
            .id
    }

    async fn admin(&self) -> LoginState {
        self.auth
            .account
            .create_user(NewAccount {
                username: "root".into(),
                email: Some("root@example.com".into()),
                first_name: String::new(),
                last_name: String::new(),
                password: Some(PASSWORD.into()),
                superuser: true,
            })
            .await
            .unwrap();
        self.password(&LoginState::Anonymous, "root", PASSWORD, None)
            .await
            .state
    }

    async fn try_password(
        &self,
        state: &LoginState,
        name: &str,
        pw: &str,
        cookie: Option<&SecretString>,
        ctx: &RequestContext,
    ) -> Result<LoginReport, ServiceError> {
        self.auth
            .login
            .submit_password(
                state,
                PasswordLogin {
                    username: name.into(),
                    password: pw.into(),
                    trusted_device_cookie: cookie.cloned(),
                },
                ctx,
            )
            .await
    }

    async fn password(
        &self,
        state: &LoginState,
        name: &str,
        pw: &str,
        cookie: Option<&SecretString>,
    ) -> LoginReport {
        self.try_password(state, name, pw, cookie, &ctx())
            .await
            .unwrap()
    }

    /// Signs in with the password (no factor yet), enrols TOTP, returns (state, secret).
    async fn enrolled(&self, name: &str) -> (LoginState, Vec<u8>) {
        self.user(name).await;
        let r = self
            .password(&LoginState::Anonymous, name, PASSWORD, None)
            .await;
        assert_eq!(
            r.outcome,
            Outcome::SignedIn {
                method: AuthMethod::Password
            }
        );
        let e = self.auth.factors.begin_totp(&r.state).await.unwrap();
        let secret = totp::decode_secret(e.secret.expose()).unwrap();
        let code = self.code(&secret);
        assert!(
            self.auth
                .factors
                .confirm_totp(&r.state, e.device_id, &code, &ctx())
                .await
                .unwrap()
                .is_none()
        );
        (r.state, secret)
    }

    fn code(&self, secret: &[u8]) -> String {
        use modal2fa_core::ports::Clock;
        totp::code_at(secret, &TotpParams::default(), self.mem.clock.now())
    }

    /// Signs in with password + TOTP from a fresh time step.
    async fn sign_in_2fa(&self, name: &str, secret: &[u8]) -> LoginReport {
        self.mem.clock.advance(Duration::seconds(30));
        let r = self
            .password(&LoginState::Anonymous, name, PASSWORD, None)
            .await;
        assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
        let r = self
            .auth
            .login
            .submit_totp(&r.state, &self.code(secret), &ctx())
            .await
            .unwrap();
        assert_eq!(
            r.outcome,
            Outcome::SignedIn {
                method: AuthMethod::TwoFactor
            }
        );
        r
    }

    fn audited(&self, kind: AuditKind) -> usize {
        self.mem
            .audit
            .events()
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    fn notified(&self, kind: SecurityEventKind) -> usize {
        self.mem
            .notifier
            .sent()
            .iter()
            .filter(|n| matches!(n, Notification::SecurityChange { kind: k, .. } if *k == kind))
            .count()
    }
}

#[tokio::test]
async fn a_user_without_a_factor_signs_in_with_the_password_and_a_new_session_id() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    assert!(r.renew_session);
    assert!(!r.offer_trust);
    assert_eq!(w.audited(AuditKind::LoginSucceeded), 1);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_refusal() {
    let w = world();
    w.user("alice").await;
    let wrong = w
        .password(&LoginState::Anonymous, "alice", "nope nope nope", None)
        .await;
    let unknown = w
        .password(&LoginState::Anonymous, "mallory", "nope nope nope", None)
        .await;
    assert_eq!(wrong.outcome, Outcome::Refused(Refusal::InvalidCredentials));
    assert_eq!(unknown.outcome, wrong.outcome);
    assert_eq!(unknown.state, LoginState::Anonymous);
}

#[tokio::test]
async fn an_empty_username_is_a_form_error_that_counts_nothing() {
    let w = world();
    let err = w
        .try_password(&LoginState::Anonymous, "  ", "x", None, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(e) if e.field == "username"));
    assert!(
        w.auth
            .admin
            .clear_failed_logins(Some("203.0.113.10"))
            .await
            .unwrap()
            == 0
    );
}

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

#[tokio::test]
async fn totp_sign_in_works_and_a_code_is_never_accepted_twice() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    assert_eq!(w.notified(SecurityEventKind::TotpAdded), 1);
    // The code that confirmed enrolment cannot sign in.
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
    let pending = r.state.clone();
    let r = w
        .auth
        .login
        .submit_totp(&pending, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CodeReused));
    assert_eq!(w.audited(AuditKind::CodeReplayed), 1);
    assert_eq!(w.notified(SecurityEventKind::CodeReplayed), 1);
    // A fresh step signs in, renews the session and offers to trust the device.
    w.mem.clock.advance(Duration::seconds(30));
    let ok = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(
        ok.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    assert!(ok.renew_session && ok.offer_trust);
    // The same code again, in another login, is refused.
    let again = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let r = w
        .auth
        .login
        .submit_totp(&again.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CodeReused));
}

#[tokio::test]
async fn an_older_in_window_code_is_refused_after_a_newer_one() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.clock.advance(Duration::seconds(60));
    use modal2fa_core::ports::Clock;
    let now = w.mem.clock.now();
    let older = totp::code_at(&secret, &TotpParams::default(), now - Duration::seconds(30));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let ok = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(
        ok.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let r = w
        .auth
        .login
        .submit_totp(&r.state, &older, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CodeReused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_submissions_of_one_valid_code_give_exactly_one_success() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.clock.advance(Duration::seconds(30));
    let mut pendings = Vec::new();
    for _ in 0..50 {
        pendings.push(
            w.password(&LoginState::Anonymous, "alice", PASSWORD, None)
                .await
                .state,
        );
        w.auth
            .admin
            .clear_failed_logins(Some("alice"))
            .await
            .unwrap();
    }
    let code = w.code(&secret);
    let tasks: Vec<_> = pendings
        .into_iter()
        .map(|p| {
            let (auth, code) = (w.auth.clone(), code.clone());
            tokio::spawn(async move {
                auth.login
                    .submit_totp(&p, &code, &ctx())
                    .await
                    .unwrap()
                    .outcome
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Outcome::SignedIn { .. }) {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn wrong_codes_count_against_the_user_and_five_destroy_the_pending_login() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let mut r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let wrong = format!(
        "{:06}",
        (w.code(&secret).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    for _ in 0..4 {
        r = w
            .auth
            .login
            .submit_totp(&r.state, &wrong, &ctx())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCode));
    }
    r = w
        .auth
        .login
        .submit_totp(&r.state, &wrong, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::TooManyAttempts));
    assert_eq!(r.state, LoginState::Anonymous);
    assert!(r.end_session);
    use modal2fa_core::ports::LockoutStore;
    let entry = w
        .mem
        .lockout
        .get(&LockoutKey::User("alice".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.failures, 5);
}

#[tokio::test]
async fn a_locked_user_cannot_try_codes() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.clock.advance(Duration::seconds(30));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    for i in 0..10 {
        w.try_password(
            &LoginState::Anonymous,
            "alice",
            "bad bad bad",
            None,
            &ctx_from(&format!("198.51.100.{i}")),
        )
        .await
        .unwrap();
    }
    let r = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert!(matches!(
        r.outcome,
        Outcome::Refused(Refusal::Locked { .. })
    ));
}

#[tokio::test]
async fn a_pending_login_expires() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.clock.advance(Duration::seconds(30));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    w.mem.clock.advance(Duration::minutes(6));
    let r = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::Expired));
    assert_eq!(r.state, LoginState::Anonymous);
}

#[tokio::test]
async fn a_user_who_must_use_2fa_sets_up_totp_during_login() {
    struct Required;
    impl AuthPolicy for Required {
        fn user_2fa_optional(&self, _u: &modal2fa_core::User) -> bool {
            false
        }
    }
    let w = world_with(Arc::new(Required));
    w.user("bob").await;
    let r = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: true });
    // A pending login cannot reach anything signed-in.
    assert!(w.auth.trusted_devices.list(&r.state).await.is_err());
    let e = w.auth.factors.begin_totp(&r.state).await.unwrap();
    assert!(
        e.otpauth_url
            .expose()
            .starts_with("otpauth://totp/modal2fa:bob%40example.com?")
            || e.otpauth_url
                .expose()
                .starts_with("otpauth://totp/modal2fa:bob@example.com?")
    );
    let secret = totp::decode_secret(e.secret.expose()).unwrap();
    assert_eq!(secret.len(), 32);
    let done = w
        .auth
        .factors
        .confirm_totp(&r.state, e.device_id, &w.code(&secret), &ctx())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        done.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
}

#[tokio::test]
async fn unconfirmed_totp_never_counts_as_a_factor() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    w.auth.factors.begin_totp(&r.state).await.unwrap();
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
async fn totp_secrets_are_stored_encrypted_and_bound_to_their_user() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let (_, _) = w.enrolled("bob").await;
    use modal2fa_core::ports::FactorStore;
    let alice = w
        .mem
        .factors
        .totp_devices(UserId(1))
        .await
        .unwrap()
        .remove(0);
    assert!(
        !alice
            .encrypted_secret
            .windows(secret.len())
            .any(|win| win == secret.as_slice())
    );
    // Copy alice's ciphertext into bob's row: bob's verification fails.
    w.mem.factors.delete_totp(UserId(2)).await.unwrap();
    let d = w
        .mem
        .factors
        .add_totp(UserId(2), alice.encrypted_secret.clone(), alice.created_at)
        .await
        .unwrap();
    w.mem.factors.confirm_totp(d.id, 0).await.unwrap();
    w.mem.clock.advance(Duration::seconds(30));
    let r = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    let r = w
        .auth
        .login
        .submit_totp(&r.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCode));
}

#[tokio::test]
async fn a_trusted_device_skips_the_code_rotates_and_a_copied_cookie_is_revoked() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let cookie = w
        .auth
        .trusted_devices
        .trust_this_device(&r.state, "Laptop", &ctx())
        .await
        .unwrap();
    assert_eq!(w.notified(SecurityEventKind::TrustedDeviceAdded), 1);
    // Next sign-in: no code, method cookie, new cookie value.
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookie))
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Cookie
        }
    );
    let CookieUpdate::Set(rotated) = r.trusted_device_cookie.clone() else {
        panic!("not rotated: {:?}", r.trusted_device_cookie)
    };
    assert_ne!(rotated, cookie);
    // The cookie skips only the second factor, never the password.
    let wrong = w
        .password(
            &LoginState::Anonymous,
            "alice",
            "wrong password",
            Some(&rotated),
        )
        .await;
    assert_eq!(wrong.outcome, Outcome::Refused(Refusal::InvalidCredentials));
    // The copied (superseded) value: refused, device revoked, owner alerted.
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookie))
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
    assert_eq!(r.trusted_device_cookie, CookieUpdate::Clear);
    assert_eq!(w.notified(SecurityEventKind::TrustedDeviceCookieReused), 1);
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&rotated))
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SecondFactorRequired { setup: false },
        "the revoked device no longer works"
    );
}

#[tokio::test]
async fn trusting_a_device_beyond_the_cap_evicts_the_least_recently_used() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let mut cookies = Vec::new();
    for name in ["one", "two", "three"] {
        let r = w.sign_in_2fa("alice", &secret).await;
        cookies.push(
            w.auth
                .trusted_devices
                .trust_this_device(&r.state, name, &ctx())
                .await
                .unwrap(),
        );
    }
    let r = w.sign_in_2fa("alice", &secret).await;
    let names: Vec<_> = w
        .auth
        .trusted_devices
        .list(&r.state)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["three", "two"]);
    let first = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookies[0]))
        .await;
    assert_eq!(
        first.outcome,
        Outcome::SecondFactorRequired { setup: false }
    );
}

#[tokio::test]
async fn a_device_can_be_trusted_only_after_a_second_factor() {
    let w = world();
    w.user("alice").await;
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let err = w
        .auth
        .trusted_devices
        .trust_this_device(&r.state, "x", &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::NotAllowed(_)));
}

#[tokio::test]
async fn a_cookie_session_must_step_up_before_managing_factors() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let cookie = w
        .auth
        .trusted_devices
        .trust_this_device(&r.state, "Laptop", &ctx())
        .await
        .unwrap();
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, Some(&cookie))
        .await;
    let cookie_state = r.state;
    assert!(matches!(
        w.auth.factors.remove_totp(&cookie_state, &ctx()).await,
        Err(ServiceError::StepUpRequired)
    ));
    assert!(matches!(
        w.auth.factors.begin_totp(&cookie_state).await,
        Err(ServiceError::StepUpRequired)
    ));
    let up = w
        .auth
        .login
        .begin_step_up(&cookie_state, &ctx())
        .await
        .unwrap();
    assert_eq!(up.outcome, Outcome::SecondFactorRequired { setup: false });
    // During step-up the session is still the cookie session (no management yet).
    assert!(matches!(
        w.auth.factors.remove_totp(&up.state, &ctx()).await,
        Err(ServiceError::StepUpRequired)
    ));
    w.mem.clock.advance(Duration::seconds(30));
    let done = w
        .auth
        .login
        .submit_totp(&up.state, &w.code(&secret), &ctx())
        .await
        .unwrap();
    assert_eq!(
        done.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    assert!(done.renew_session);
    w.auth
        .factors
        .remove_totp(&done.state, &ctx())
        .await
        .unwrap();
    assert_eq!(w.notified(SecurityEventKind::TotpRemoved), 1);
}

#[tokio::test]
async fn recovery_codes_work_once_each_and_are_stored_hashed() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let codes = w
        .auth
        .factors
        .generate_recovery_codes(&r.state, &ctx())
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(codes[0].expose().len(), 29);
    let p = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let ok = w
        .auth
        .login
        .submit_recovery_code(&p.state, &codes[0].expose().to_lowercase(), &ctx())
        .await
        .unwrap();
    assert_eq!(
        ok.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
    assert_eq!(w.notified(SecurityEventKind::RecoveryCodeUsed), 1);
    assert_eq!(
        w.auth.factors.recovery_codes_left(&ok.state).await.unwrap(),
        9
    );
    let p = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    let again = w
        .auth
        .login
        .submit_recovery_code(&p.state, codes[0].expose(), &ctx())
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::Refused(Refusal::InvalidCode));
}

#[tokio::test]
async fn a_django_pbkdf2_password_signs_in_and_is_upgraded_to_argon2id() {
    let w = world();
    let id = w.user("legacy").await;
    use modal2fa_core::ports::UserStore;
    let mut u = w.mem.users.find_by_id(id).await.unwrap().unwrap();
    // Django: make_password("hunter2", "abcdefghijklmnopqrstuv") with 1000 iterations.
    u.password_hash = Some(
        "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$qkObPPK9rP0GubfMXjglDC6HALWE6Op/eMHGy+WlhjE="
            .into(),
    );
    w.mem.users.update(&u).await.unwrap();
    let r = w
        .password(&LoginState::Anonymous, "legacy", "hunter2", None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    let u = w.mem.users.find_by_id(id).await.unwrap().unwrap();
    assert!(u.password_hash.unwrap().starts_with("$argon2id$"));
    let r = w
        .password(&LoginState::Anonymous, "legacy", "hunter2", None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}

fn reset_link(w: &World) -> String {
    w.mem
        .notifier
        .sent()
        .iter()
        .rev()
        .find_map(|n| match n {
            Notification::PasswordReset { link, .. } => Some(
                link.expose()
                    .trim_start_matches("https://x/reset/")
                    .to_owned(),
            ),
            _ => None,
        })
        .expect("no reset mail")
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let w = world();
    w.user("alice").await;
    let signed = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    w.auth.sessions.create(&signed.state, &ctx()).await.unwrap();
    w.auth
        .account
        .request_password_reset("ALICE@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w);
    assert!(w.auth.account.check_reset_link(&token).await.is_ok());
    w.auth
        .account
        .reset_password(&token, &"a brand new secret".into(), &ctx())
        .await
        .unwrap();
    assert!(matches!(
        w.auth
            .account
            .reset_password(&token, &"another new secret".into(), &ctx())
            .await,
        Err(ServiceError::Link(_))
    ));
    assert_eq!(w.mem.sessions.list_active_count(), 0);
    assert_eq!(w.notified(SecurityEventKind::PasswordChanged), 1);
    let r = w
        .password(&LoginState::Anonymous, "alice", "a brand new secret", None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}

#[tokio::test]
async fn a_reset_link_dies_when_the_user_signs_in_and_after_three_days() {
    let w = world();
    w.user("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w);
    w.mem.clock.advance(Duration::seconds(1));
    w.password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(w.auth.account.check_reset_link(&token).await.is_err());
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w);
    w.mem.clock.advance(Duration::days(3));
    assert!(matches!(
        w.auth.account.check_reset_link(&token).await,
        Err(ServiceError::Link(
            modal2fa_core::tokens::LinkError::Expired
        ))
    ));
}

#[tokio::test]
async fn a_reset_request_for_an_unknown_address_answers_the_same_and_sends_nothing() {
    let w = world();
    w.auth
        .account
        .request_password_reset("nobody@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    assert!(w.mem.notifier.sent().is_empty());
}

#[tokio::test]
async fn reset_requests_are_rate_limited_per_address() {
    let w = world();
    w.user("alice").await;
    for _ in 0..15 {
        w.auth
            .account
            .request_password_reset(
                "alice@example.com",
                "https://x/reset/",
                &ctx_from("192.0.2.1"),
            )
            .await
            .unwrap();
    }
    let mails = w
        .mem
        .notifier
        .sent()
        .iter()
        .filter(|n| matches!(n, Notification::PasswordReset { .. }))
        .count();
    assert_eq!(
        mails, 10,
        "the 10th request locks the address; later ones send nothing"
    );
}

#[tokio::test]
async fn an_invitation_link_sets_the_first_password_once_and_signs_in() {
    let w = world();
    let admin = w.admin().await;
    let u = w
        .auth
        .account
        .invite(
            &admin,
            InviteRequest {
                email: "new@example.com".into(),
                first_name: "New".into(),
                last_name: "Person".into(),
            },
            "https://x/invite/",
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(u.username.as_str(), "new@example.com");
    let token = w
        .mem
        .notifier
        .sent()
        .iter()
        .find_map(|n| match n {
            Notification::Invitation { link, .. } => Some(
                link.expose()
                    .trim_start_matches("https://x/invite/")
                    .to_owned(),
            ),
            _ => None,
        })
        .unwrap();
    let r = w
        .auth
        .account
        .accept_invitation(
            &LoginState::Anonymous,
            &token,
            &"my first password".into(),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    assert!(
        w.auth
            .account
            .accept_invitation(
                &LoginState::Anonymous,
                &token,
                &"a second password".into(),
                &ctx()
            )
            .await
            .is_err()
    );
}

#[tokio::test]
async fn only_permitted_users_can_invite_or_administer() {
    let w = world();
    w.user("alice").await;
    let plain = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await
        .state;
    let invite = InviteRequest {
        email: "x@example.com".into(),
        first_name: String::new(),
        last_name: String::new(),
    };
    assert!(matches!(
        w.auth
            .account
            .invite(&plain, invite, "https://x/", &ctx())
            .await,
        Err(ServiceError::NotAllowed(_))
    ));
    assert!(matches!(
        w.auth.admin.list_sessions(&plain, Page::first(10)).await,
        Err(ServiceError::NotAllowed(_))
    ));
    assert!(matches!(
        w.auth.admin.list_users(&plain, Page::first(10)).await,
        Err(ServiceError::NotAllowed(_))
    ));
    assert!(matches!(
        w.auth
            .admin
            .list_sessions(&LoginState::Anonymous, Page::first(10))
            .await,
        Err(ServiceError::NotSignedIn)
    ));
}

#[tokio::test]
async fn an_admin_reset_of_2fa_strips_factors_ends_sessions_clears_lockout_and_mails_the_user() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    w.auth.sessions.create(&r.state, &ctx()).await.unwrap();
    w.try_password(
        &LoginState::Anonymous,
        "alice",
        "wrong wrong",
        None,
        &ctx_from("192.0.2.5"),
    )
    .await
    .unwrap();
    let admin = w.admin().await;
    let rows = w
        .auth
        .admin
        .list_users(&admin, Page::first(10))
        .await
        .unwrap();
    assert!(
        rows.iter()
            .any(|r| r.user.username.as_str() == "alice" && r.totp && r.trusted_devices == Some(0))
    );
    w.auth
        .admin
        .reset_two_factor(&admin, UserId(1), &ctx())
        .await
        .unwrap();
    assert_eq!(w.mem.sessions.list_active_count(), 0);
    assert_eq!(w.notified(SecurityEventKind::TwoFactorResetByAdmin), 1);
    assert_eq!(w.audited(AuditKind::TwoFactorReset), 1);
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
async fn admins_list_and_clear_lockouts_with_an_audit_event() {
    let w = world();
    w.password(&LoginState::Anonymous, "ghost", "wrong wrong", None)
        .await;
    let admin = w.admin().await;
    let rows = w
        .auth
        .admin
        .list_lockouts(&admin, Page::first(10))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    w.auth
        .admin
        .clear_lockout(&admin, &LockoutKey::User("ghost".into()), &ctx())
        .await
        .unwrap();
    assert_eq!(w.audited(AuditKind::LockoutCleared), 1);
    assert!(matches!(
        w.auth
            .admin
            .clear_lockout(&admin, &LockoutKey::User("ghost".into()), &ctx())
            .await,
        Err(ServiceError::NotFound)
    ));
}

#[tokio::test]
async fn clear_failed_logins_removes_a_key_or_only_stale_rows() {
    let w = world();
    w.user("alice").await;
    for _ in 0..10 {
        w.password(&LoginState::Anonymous, "alice", "wrong wrong", None)
            .await;
    }
    assert_eq!(
        w.auth.admin.clear_failed_logins(None).await.unwrap(),
        0,
        "nothing is stale yet"
    );
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("ALICE"))
            .await
            .unwrap(),
        1
    );
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        },
        "clearing the username lifts its lock"
    );
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("203.0.113.10"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        w.auth
            .admin
            .clear_failed_logins(Some("203.0.113.10"))
            .await
            .unwrap(),
        0
    );
    w.password(&LoginState::Anonymous, "bob", "wrong wrong", None)
        .await;
    w.mem.clock.advance(Duration::days(2));
    assert_eq!(w.auth.admin.clear_failed_logins(None).await.unwrap(), 2);
}

#[tokio::test]
async fn a_failing_mailer_never_undoes_a_change() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.notifier.fail_from_now();
    let r = w.sign_in_2fa("alice", &secret).await;
    w.auth.factors.remove_totp(&r.state, &ctx()).await.unwrap();
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
async fn changing_the_password_needs_the_old_one_and_voids_trusted_devices() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let cookie = w
        .auth
        .trusted_devices
        .trust_this_device(&r.state, "Laptop", &ctx())
        .await
        .unwrap();
    assert!(matches!(
        w.auth
            .account
            .change_password(
                &r.state,
                &"not it at all".into(),
                &"new password 123".into(),
                false,
                &ctx()
            )
            .await,
        Err(ServiceError::InvalidCredentials)
    ));
    assert!(matches!(
        w.auth
            .account
            .change_password(&r.state, &PASSWORD.into(), &"short".into(), false, &ctx())
            .await,
        Err(ServiceError::Invalid(_))
    ));
    w.auth
        .account
        .change_password(
            &r.state,
            &PASSWORD.into(),
            &"new password 123".into(),
            false,
            &ctx(),
        )
        .await
        .unwrap();
    let r = w
        .password(
            &LoginState::Anonymous,
            "alice",
            "new password 123",
            Some(&cookie),
        )
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
}

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
        w.auth
            .sessions
            .update(&id, &s.record, &s.state, &ctx())
            .await
            .unwrap();
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
        .unwrap();
    assert_ne!(new, id);
    assert!(w.auth.sessions.load(&id).await.unwrap().is_none());
    assert!(w.auth.sessions.load(&new).await.unwrap().is_some());
}

#[tokio::test]
async fn microsoft_sign_in_is_gated_by_tenant_guest_status_and_account() {
    use modal2fa_core::machine::MicrosoftRefusal;
    use modal2fa_core::ports::{Clock, ExternalClaims};
    let mem = MemoryPorts::new();
    let s = Settings {
        microsoft_tenant_id: Some("tenant-a".into()),
        ..settings()
    };
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        s,
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    let w = World { mem, auth };
    w.user("alice@example.com").await;
    let now = w.mem.clock.now();
    let claims = ExternalClaims {
        tenant_id: "tenant-a".into(),
        object_id: "oid-1".into(),
        issuer: "https://login.microsoftonline.com/tenant-a/v2.0".into(),
        preferred_username: Some("Alice@Example.com".into()),
        amr: vec!["pwd".into(), "mfa".into()],
        auth_time: Some(now - Duration::seconds(10)),
        ..Default::default()
    };
    let ms = |c: ExternalClaims| {
        let auth = w.auth.clone();
        async move {
            auth.login
                .complete_microsoft(&LoginState::Anonymous, &c, &ctx())
                .await
                .unwrap()
                .outcome
        }
    };
    assert_eq!(
        ms(claims.clone()).await,
        Outcome::SignedIn {
            method: AuthMethod::Microsoft
        }
    );
    assert_eq!(
        ms(ExternalClaims {
            tenant_id: "other".into(),
            ..claims.clone()
        })
        .await,
        Outcome::Refused(Refusal::Microsoft(MicrosoftRefusal::WrongTenant))
    );
    assert_eq!(
        ms(ExternalClaims {
            acct: Some(1),
            ..claims.clone()
        })
        .await,
        Outcome::Refused(Refusal::Microsoft(MicrosoftRefusal::Guest))
    );
    assert_eq!(
        ms(ExternalClaims {
            preferred_username: Some("eve@example.com".into()),
            ..claims.clone()
        })
        .await,
        Outcome::Refused(Refusal::Microsoft(MicrosoftRefusal::NoAccount))
    );
    // Without MFA the user, who has no factor and for whom 2FA is optional, signs in.
    assert_eq!(
        ms(ExternalClaims {
            amr: vec!["pwd".into()],
            ..claims
        })
        .await,
        Outcome::SignedIn {
            method: AuthMethod::Microsoft
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_uses_of_one_reset_link_set_the_password_once() {
    let w = world();
    w.user("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w);
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (auth, token) = (w.auth.clone(), token.clone());
            tokio::spawn(async move {
                auth.account
                    .reset_password(&token, &format!("new password number {i}").into(), &ctx())
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}
