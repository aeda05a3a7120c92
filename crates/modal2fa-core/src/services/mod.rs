//! Services: async orchestration over the ports. Each loads facts through ports, runs the
//! pure mechanisms and the state machine, and applies the effects.

mod account;
mod admin;
mod factors;
mod login;
mod sessions;

use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

pub use account::{AccountService, InviteRequest, NewAccount};
pub use admin::{AdminService, UserSummary};
pub use factors::{FactorService, TotpEnrolment, TrustedDeviceService};
pub use login::{CookieUpdate, LoginReport, LoginService, PasswordLogin};
pub use sessions::{LoadedSession, SessionService};

use crate::crypto::SecretBox;
use crate::error::{ServiceError, ServiceResult};
use crate::lockout::{self, LockStatus};
use crate::machine::{Effect, LoginState, Transition};
use crate::model::{
    AuditEvent, AuditKind, LockoutKey, RequestContext, SecurityEventKind, User, UserId,
};
use crate::password::PasswordHasher;
use crate::policy::AuthPolicy;
use crate::ports::{
    AuditLog, Clock, FactorStore, LockoutStore, Notification, Notifier, SecretGenerator,
    SessionStore, TrustedDeviceStore, UserStore,
};
use crate::secret::{KeyPurpose, Keys, ServerSecret};
use crate::settings::Settings;
use crate::tokens::LinkSigner;

/// Every adapter the services use.
#[derive(Clone)]
pub struct Ports {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// TOTP, WebAuthn, recovery codes.
    pub factors: Arc<dyn FactorStore>,
    /// Trusted devices.
    pub trusted_devices: Arc<dyn TrustedDeviceStore>,
    /// Lockout counters.
    pub lockout: Arc<dyn LockoutStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Email.
    pub notifier: Arc<dyn Notifier>,
    /// Audit log.
    pub audit: Arc<dyn AuditLog>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn SecretGenerator>,
}

pub(crate) struct Context {
    pub ports: Ports,
    pub policy: Arc<dyn AuthPolicy>,
    pub settings: Settings,
    pub secret_box: SecretBox,
    pub links: LinkSigner,
    pub recovery_key: [u8; 32],
    pub hasher: PasswordHasher,
}

/// The services, wired to one set of ports, one policy and one server secret. Cheap to
/// clone; share it across requests.
#[derive(Clone)]
pub struct Modal2fa {
    /// Password, second factor, step-up, logout.
    pub login: LoginService,
    /// TOTP enrolment and removal, recovery codes.
    pub factors: FactorService,
    /// Trusted devices.
    pub trusted_devices: TrustedDeviceService,
    /// Passwords, resets, invitations.
    pub account: AccountService,
    /// User and security administration.
    pub admin: AdminService,
    /// Server-side sessions.
    pub sessions: SessionService,
}

impl Modal2fa {
    /// Wires the services.
    pub fn new(
        ports: Ports,
        policy: Arc<dyn AuthPolicy>,
        settings: Settings,
        secret: &ServerSecret,
    ) -> Self {
        let keys = Keys::derive(secret);
        let ctx = Arc::new(Context {
            hasher: PasswordHasher::new(settings.password_hashing),
            secret_box: SecretBox::new(&keys),
            links: LinkSigner::new(&keys),
            recovery_key: *keys.get(KeyPurpose::RecoveryCode),
            ports,
            policy,
            settings,
        });
        Self {
            login: LoginService(ctx.clone()),
            factors: FactorService(ctx.clone()),
            trusted_devices: TrustedDeviceService(ctx.clone()),
            account: AccountService(ctx.clone()),
            admin: AdminService(ctx.clone()),
            sessions: SessionService(ctx),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.login.0.settings
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<dyn AuthPolicy> {
        &self.login.0.policy
    }

    /// The adapters in use.
    pub fn ports(&self) -> &Ports {
        &self.login.0.ports
    }
}

/// What applying a transition asks of the session layer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionInstructions {
    pub renew: bool,
    pub end: bool,
}

impl Context {
    pub fn now(&self) -> OffsetDateTime {
        self.ports.clock.now()
    }

    pub async fn user(&self, id: UserId) -> ServiceResult<User> {
        self.ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// The signed-in user of a state, or `NotSignedIn`.
    pub async fn signed_in_user(
        &self,
        state: &LoginState,
    ) -> ServiceResult<(User, crate::machine::SignedIn)> {
        let s = state.signed_in().ok_or(ServiceError::NotSignedIn)?.clone();
        let user = self
            .ports
            .users
            .find_by_id(s.user_id)
            .await?
            .ok_or(ServiceError::NotSignedIn)?;
        if !user.is_active {
            return Err(ServiceError::NotSignedIn);
        }
        Ok((user, s))
    }

    /// The signed-in user, provided the session may manage second factors.
    pub async fn managing_user(&self, state: &LoginState) -> ServiceResult<User> {
        let (user, s) = self.signed_in_user(state).await?;
        if matches!(state, LoginState::StepUp(_))
            || !self.policy.factor_management_methods().contains(&s.method)
        {
            return Err(ServiceError::StepUpRequired);
        }
        Ok(user)
    }

    pub fn ip_key(&self, ip: IpAddr) -> Option<LockoutKey> {
        (!self
            .policy
            .is_ip_excluded(ip, &self.settings.lockout.excluded))
        .then(|| LockoutKey::ip(ip))
    }

    pub async fn lock_status(&self, keys: &[&LockoutKey]) -> ServiceResult<LockStatus> {
        Ok(self.lock_check(keys).await?.0)
    }

    /// The combined lock status of `keys`, and which of them have a counter at all.
    pub async fn lock_check(
        &self,
        keys: &[&LockoutKey],
    ) -> ServiceResult<(LockStatus, Vec<LockoutKey>)> {
        let now = self.now();
        let mut status = LockStatus::Open;
        let mut present = Vec::new();
        if keys.is_empty() {
            return Ok((status, present));
        }
        for entry in self.ports.lockout.get_many(keys).await? {
            if keys.contains(&&entry.key) {
                status = status.combine(lockout::status(Some(&entry), now));
                present.push(entry.key);
            }
        }
        Ok((status, present))
    }

    /// Uses what the lock check saw (`counted`: the keys that have a counter) to save
    /// store work on `t`'s effects: clearing a counter that does not exist is dropped, and
    /// the first failure of a key without one is stored by a single insert (when the store
    /// offers it) instead of a read and a write.
    pub async fn spare_absent_counters(
        &self,
        t: &mut Transition,
        counted: &[LockoutKey],
    ) -> ServiceResult<()> {
        let mut kept = Vec::with_capacity(t.effects.len());
        for effect in std::mem::take(&mut t.effects) {
            let spared = match &effect {
                Effect::ClearFailures(key) => !counted.contains(key),
                Effect::RecordFailure(key) if !counted.contains(key) => self
                    .ports
                    .lockout
                    .record_first_failure(key, self.now(), self.settings.lockout.rule_for(key))
                    .await?
                    .is_some(),
                _ => false,
            };
            if !spared {
                kept.push(effect);
            }
        }
        t.effects = kept;
        Ok(())
    }

    pub async fn record_failure(&self, key: &LockoutKey) -> ServiceResult<()> {
        let rule = self.settings.lockout.rule_for(key);
        self.ports
            .lockout
            .record_failure(key, self.now(), rule)
            .await?;
        Ok(())
    }

    pub async fn audit(
        &self,
        kind: AuditKind,
        user_id: Option<UserId>,
        username: Option<&str>,
        ctx: &RequestContext,
        detail: Option<String>,
    ) {
        let event = AuditEvent {
            at: self.now(),
            kind,
            user_id,
            username: username.map(str::to_owned),
            ip: Some(ctx.ip),
            user_agent: Some(ctx.user_agent.clone()),
            detail,
        };
        if let Err(e) = self.ports.audit.record(event).await {
            tracing::error!(error = %e, ?kind, "writing an audit event failed");
        }
    }

    /// Tells the owner; a failure is logged and never undoes the change.
    pub async fn notify(&self, user: &User, kind: SecurityEventKind, ctx: &RequestContext) {
        if !self.policy.notify_security_change(user, kind) {
            return;
        }
        let n = Notification::SecurityChange {
            user: user.clone(),
            kind,
            at: self.now(),
            ip: Some(ctx.ip),
            user_agent: ctx.user_agent.clone(),
        };
        if let Err(e) = self.ports.notifier.send(n).await {
            tracing::warn!(error = %e, user = %user.id, ?kind, "sending a security notification failed");
        }
    }

    /// Applies a transition's effects. `user` is the account concerned, when known.
    pub async fn apply(
        &self,
        t: &Transition,
        user_id: Option<UserId>,
        username: Option<&str>,
        ctx: &RequestContext,
        detail: Option<String>,
    ) -> ServiceResult<SessionInstructions> {
        let mut out = SessionInstructions::default();
        for effect in &t.effects {
            match effect {
                Effect::RenewSession => out.renew = true,
                Effect::EndSession => out.end = true,
                Effect::RecordFailure(key) => self.record_failure(key).await?,
                Effect::ClearFailures(key) => {
                    self.ports.lockout.clear(key).await?;
                }
                Effect::RecordLogin(id) => {
                    self.ports.users.record_login(*id, self.now()).await?;
                }
                Effect::Audit(kind) => {
                    self.audit(*kind, user_id, username, ctx, detail.clone())
                        .await
                }
                Effect::Notify(kind) => {
                    let user = match user_id {
                        Some(id) => self.ports.users.find_by_id(id).await?,
                        None => None,
                    };
                    if let Some(user) = user {
                        self.notify(&user, *kind, ctx).await;
                    }
                }
            }
        }
        Ok(out)
    }
}
