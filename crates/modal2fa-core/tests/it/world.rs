//! The world every test starts from: in-memory ports, a fixed clock, cheap hashing,
//! and helpers that drive the services as a browser would.

use std::sync::Arc;

use modal2fa_core::machine::{LoginState, Outcome};
use modal2fa_core::model::{AuditKind, AuthMethod, RequestContext, SecurityEventKind, UserId};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::Notification;
use modal2fa_core::services::{LoginReport, NewAccount, PasswordLogin};
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{
    AuthPolicy, DefaultPolicy, Modal2fa, SecretString, ServerSecret, ServiceError, Settings,
};
use modal2fa_test_support::MemoryPorts;
use time::Duration;

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) struct World {
    pub(crate) mem: MemoryPorts,
    pub(crate) auth: Modal2fa,
}

pub(crate) fn settings() -> Settings {
    Settings {
        password_hashing: PasswordHashing::FOR_TESTS,
        ..Settings::default()
    }
}

pub(crate) fn world_with(policy: Arc<dyn AuthPolicy>) -> World {
    let mem = MemoryPorts::new();
    let auth = Modal2fa::new(
        mem.ports.clone(),
        policy,
        settings(),
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    World { mem, auth }
}

pub(crate) fn world() -> World {
    world_with(Arc::new(DefaultPolicy))
}

pub(crate) fn ctx() -> RequestContext {
    RequestContext::new(
        "203.0.113.10".parse().unwrap(),
        "Firefox/140",
        "/auth/login/",
    )
}

pub(crate) fn ctx_from(ip: &str) -> RequestContext {
    RequestContext::new(ip.parse().unwrap(), "Firefox/140", "/auth/login/")
}

impl World {
    pub(crate) async fn user(&self, name: &str) -> UserId {
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

    pub(crate) async fn admin(&self) -> LoginState {
        // Administration needs a second-factor session: root enrols an app and signs in with it.
        let password_only = self.admin_without_second_factor().await;
        let e = self.auth.factors.begin_totp(&password_only).await.unwrap();
        let secret = totp::decode_secret(e.secret.expose()).unwrap();
        self.auth
            .factors
            .confirm_totp(
                &password_only,
                e.token.expose(),
                &self.code(&secret),
                &ctx(),
            )
            .await
            .unwrap();
        self.sign_in_2fa("root", &secret).await.state
    }

    /// root signed in with the password only (root has no factor).
    pub(crate) async fn admin_without_second_factor(&self) -> LoginState {
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

    pub(crate) async fn try_password(
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

    pub(crate) async fn password(
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
    pub(crate) async fn enrolled(&self, name: &str) -> (LoginState, Vec<u8>) {
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
        self.auth
            .factors
            .confirm_totp(&r.state, e.token.expose(), &code, &ctx())
            .await
            .unwrap();
        (r.state, secret)
    }

    pub(crate) fn code(&self, secret: &[u8]) -> String {
        use modal2fa_core::ports::Clock;
        totp::code_at(secret, &TotpParams::default(), self.mem.clock.now())
    }

    /// Signs in with password + TOTP from a fresh time step.
    pub(crate) async fn sign_in_2fa(&self, name: &str, secret: &[u8]) -> LoginReport {
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

    pub(crate) fn audited(&self, kind: AuditKind) -> usize {
        self.mem
            .audit
            .events()
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    /// Trusts this browser right after a second factor; the cookie to present.
    pub(crate) async fn trust(&self, state: &LoginState, name: &str) -> SecretString {
        self.auth
            .trusted_devices
            .trust_this_device(state, name, None, &ctx())
            .await
            .unwrap()
            .cookie
    }

    /// Delivers the outbox (as the server's sender would), then returns everything sent.
    pub(crate) async fn sent(&self) -> Vec<Notification> {
        self.auth.outbox.deliver_all_due().await.unwrap();
        self.mem.notifier.sent()
    }

    pub(crate) async fn notified(&self, kind: SecurityEventKind) -> usize {
        self.sent()
            .await
            .iter()
            .filter(|n| matches!(n, Notification::SecurityChange { kind: k, .. } if *k == kind))
            .count()
    }
}
