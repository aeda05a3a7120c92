//! Services: async orchestration over the ports. Each loads facts through ports, runs the
//! pure mechanisms and the state machine, and applies the effects.
//!
//! # Password hashing
//!
//! Every password hash and verification (Argon2id, Django's PBKDF2, and the dummy
//! verification that hides unknown accounts) runs on the [`HashPool`] port, never on the
//! task that awaits it: a hash costs tens of milliseconds of CPU, and on an executor thread
//! it would stall every other task there — the host application's routes too — for that
//! long. The pool runs at most as many hashes at once as there are cores and queues a
//! bounded number; beyond that the request fails fast with
//! [`ServiceError::Unavailable`] (503 with `Retry-After` in the web layer) instead of
//! piling up. A sign-in attempt that the pool refused was never checked, so the counters
//! it was reserved on are settled again; a locked attempt reaches no hashing at all. The
//! password travels into the job as a [`SecretString`] clone, zeroed when dropped on the
//! pool's thread.
//!
//! # Timing of a failed sign-in
//!
//! What is equalised is the **wall-clock time of the answer** to a failed password step,
//! not the CPU it costs. Every failure that was checked — a wrong password, an unknown,
//! inactive or passwordless account, an unusable or unparsable stored hash — spends at
//! least the configured scheme's (dummy) verification on the pool, and then the answer is
//! held back until `Settings::password_answer_floor` has passed since the attempt began.
//! The wait is asynchronous, on the [`Delay`] port (a runtime timer, no thread blocked, no
//! CPU spent). A legacy hash slower than the configured scheme (Django's PBKDF2 at
//! 1 000 000 iterations) still costs its own CPU, and only its own: an unknown account
//! never burns a legacy hash's cost, so failures cannot be turned into a CPU amplifier.
//! The floor is measured at start-up ([`crate::password::measure_answer_floor`]) to cover
//! the slowest legacy class the deployment holds. A correct password and a refusal
//! without a check (a lock, which the answer states anyway) answer as soon as they can.

mod account;
mod admin;
mod code_step;
mod factors;
mod hints;
mod login;
mod maintenance;
mod outbox;
mod passkey_list;
mod passkeys;
mod passwordless;
mod report;
mod sessions;
mod trusted_devices;
mod verify;
mod wiring;

use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

pub use account::{AccountService, InviteRequest, NewAccount};
pub use admin::{AdminService, UserSummary};
pub use factors::{ENROLMENT_LIFETIME, FactorService, FactorSummary, TotpEnrolment};
pub use login::{LoginService, PasswordLogin};
pub use maintenance::{MaintenanceService, Purged, UNCONFIRMED_ENROLMENT_TTL};
pub use outbox::{Delivered, OutboxService};
pub use passkey_list::PasskeyRemoval;
pub use passkeys::{Ceremony, MAX_CREDENTIAL_ID_LEN, MAX_NAME_LEN, PasskeyService};
pub use report::{CookieUpdate, LoginReport};
pub use sessions::{LoadedSession, SessionService, session_expiry};
pub use trusted_devices::{TrustedBrowser, TrustedDeviceService};
pub use wiring::{MissingPort, PortsBuilder, Store};

use crate::crypto::SecretBox;
use crate::error::{ServiceError, ServiceResult};
use crate::lockout::{self, LockStatus, LockoutEntry, LockoutKey};
use crate::machine::{Effect, LoginState, SignedIn, Transition};
use crate::model::{AuditEvent, AuditKind, RequestContext, User, UserId};
use crate::password::{PasswordCheck, PasswordHasher};
use crate::policy::AuthPolicy;
use crate::ports::{
    AuditLog, Clock, Delay, FactorStore, HashPool, LockoutStore, Notifier, Outbox, SecretGenerator,
    SessionStore, TrustedDeviceStore, UserStore, run_hashing,
};
use crate::secret::{KeyPurpose, Keys, SecretString, ServerSecret, WebKeys};
use crate::settings::Settings;
use crate::tokens::LinkSigner;

/// Every adapter the services use. Build it with [`Ports::builder`] (one store for every
/// store port, defaults for the rest) or write the fields out.
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
    /// Email: renders and sends one message (called by the outbox's sender only).
    pub notifier: Arc<dyn Notifier>,
    /// The durable outbox every notification is written to.
    pub outbox: Arc<dyn Outbox>,
    /// Audit log.
    pub audit: Arc<dyn AuditLog>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn SecretGenerator>,
    /// Where password hashing runs: a bounded pool off the async executor.
    pub hash_pool: Arc<dyn HashPool>,
    /// Monotonic time and asynchronous waits: the answer floor of a failed sign-in.
    pub delay: Arc<dyn Delay>,
}

pub(crate) struct Context {
    pub ports: Ports,
    pub policy: Arc<dyn AuthPolicy>,
    pub settings: Settings,
    pub secret_box: SecretBox,
    pub links: LinkSigner,
    pub recovery_key: [u8; 32],
    pub hasher: Arc<PasswordHasher>,
    /// Which lockout keys probably have a counter (chooses how to count, not what).
    pub hints: hints::CounterHints,
    /// Successful sign-ins from an address recorded lately.
    pub recent_clients: hints::RecentClients,
    /// The web layer's keys, derived from the same secret as the others.
    pub web_keys: WebKeys,
    /// The WebAuthn ceremonies, when a relying party is configured.
    pub ceremonies: Option<passkeys::Ceremonies>,
    /// The key of the accounts' WebAuthn user handles.
    pub user_handle_key: [u8; 32],
    /// Run after each outbox write (the sender's wake-up).
    pub outbox_wake: outbox::WakeSlot,
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
    /// Background housekeeping.
    pub maintenance: MaintenanceService,
    /// Passkeys and security keys.
    pub passkeys: PasskeyService,
    /// The notification outbox's sender side.
    pub outbox: OutboxService,
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
            hasher: Arc::new(PasswordHasher::new(settings.password_hashing)),
            secret_box: SecretBox::new(&keys),
            links: LinkSigner::new(&keys),
            recovery_key: *keys.get(KeyPurpose::RecoveryCode),
            web_keys: keys.web(),
            ceremonies: settings
                .relying_party
                .as_ref()
                .map(passkeys::Ceremonies::new),
            user_handle_key: *keys.get(KeyPurpose::WebAuthnUserHandle),
            ports,
            policy,
            settings,
            hints: hints::CounterHints::default(),
            recent_clients: hints::RecentClients::default(),
            outbox_wake: outbox::WakeSlot::new(),
        });
        Self {
            login: LoginService(ctx.clone()),
            factors: FactorService(ctx.clone()),
            trusted_devices: TrustedDeviceService(ctx.clone()),
            account: AccountService(ctx.clone()),
            admin: AdminService(ctx.clone()),
            sessions: SessionService(ctx.clone()),
            passkeys: PasskeyService(ctx.clone()),
            outbox: OutboxService(ctx.clone()),
            maintenance: MaintenanceService(ctx),
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

    /// Now, by the configured clock.
    pub fn now(&self) -> OffsetDateTime {
        self.login.0.now()
    }

    /// The keys of the web layer (CSRF, cookie signing), derived from the server secret
    /// these services were built with: a web layer takes them from here, so the secret is
    /// given once.
    pub fn web_keys(&self) -> &WebKeys {
        &self.login.0.web_keys
    }
}

/// What a lock check read: the combined status of the keys, and the entries that exist
/// (a failure is then counted by compare-and-set against them). The default is "nothing
/// read": failures are then counted from scratch and clears are unconditional.
#[derive(Debug, Clone, Default)]
pub(crate) struct LockView {
    pub status: LockStatus,
    /// The keys whose counters this view knows: read, counted, or known to be absent.
    covered: Vec<LockoutKey>,
    entries: Vec<LockoutEntry>,
    /// Attempts counted before their check: the key's entry before and after counting.
    reserved: Vec<(Option<LockoutEntry>, LockoutEntry)>,
}

impl LockView {
    /// The entry the check saw for `key`, if any.
    pub fn seen(&self, key: &LockoutKey) -> Option<&LockoutEntry> {
        self.entries.iter().find(|e| &e.key == key)
    }

    /// Whether clearing `key` can change anything: not when the view knows the key had
    /// no counter and nothing was counted on it since.
    pub fn may_have(&self, key: &LockoutKey) -> bool {
        !self.covered.contains(key) || self.seen(key).is_some() || self.reservation(key).is_some()
    }

    /// Adds what an earlier step left on `key` (an entry the caller kept, or none).
    pub fn knowing(mut self, key: &LockoutKey, entry: Option<LockoutEntry>) -> Self {
        if !self.covered.contains(key) {
            self.covered.push(key.clone());
            self.entries.extend(entry);
        }
        self
    }

    /// Whether `key` is locked at `now` by what this view read or counted.
    pub fn locked_by(&self, key: &LockoutKey, now: OffsetDateTime) -> bool {
        let entry = self.counted(key).or_else(|| self.seen(key));
        lockout::status(entry, now).is_locked()
    }

    /// The keys this attempt was counted on before its check.
    pub fn reserved_keys(&self) -> impl Iterator<Item = &LockoutKey> {
        self.reserved.iter().map(|(_, after)| &after.key)
    }

    /// The entry of `key` after this attempt was counted on it.
    pub fn counted(&self, key: &LockoutKey) -> Option<&LockoutEntry> {
        self.reservation(key).map(|(_, after)| after)
    }

    /// Whether the attempt this view counted on `key` set a new lock (of many concurrent
    /// attempts, exactly one does: each counts by compare-and-set).
    pub fn newly_locked(&self, key: &LockoutKey, now: OffsetDateTime) -> bool {
        self.reservation(key).is_some_and(|(before, after)| {
            after.lock_count > before.as_ref().map_or(0, |b| b.lock_count)
                && crate::lockout::status(Some(after), now).is_locked()
        })
    }

    fn reservation(&self, key: &LockoutKey) -> Option<&(Option<LockoutEntry>, LockoutEntry)> {
        self.reserved.iter().find(|(_, after)| &after.key == key)
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

    /// The signed-in user of a state, or `NotSignedIn` (also for a deactivated account).
    pub async fn signed_in_user(&self, state: &LoginState) -> ServiceResult<(User, SignedIn)> {
        let s = state.signed_in().ok_or(ServiceError::NotSignedIn)?.clone();
        let user = self
            .ports
            .users
            .find_by_id(s.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(ServiceError::NotSignedIn)?;
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

    /// Verifies `password` against `stored` on the hash pool.
    pub async fn verify_password(
        &self,
        password: &SecretString,
        stored: &str,
    ) -> ServiceResult<PasswordCheck> {
        let (hasher, password, stored) = (self.hasher.clone(), password.clone(), stored.to_owned());
        let check = move || hasher.verify(&password, &stored);
        Ok(run_hashing(self.ports.hash_pool.as_ref(), check).await?)
    }

    /// Hashes `password` with the configured scheme on the hash pool.
    pub async fn hash_password(&self, password: &SecretString) -> ServiceResult<String> {
        let (hasher, password) = (self.hasher.clone(), password.clone());
        let random = self.ports.random.clone();
        let hash = move || hasher.hash(&password, random.as_ref());
        run_hashing(self.ports.hash_pool.as_ref(), hash)
            .await?
            .map_err(|e| ServiceError::Unexpected(Box::new(e)))
    }

    /// Spends a verification's time on the hash pool, for an unknown or inactive account.
    pub async fn dummy_verify(&self, password: &SecretString) -> ServiceResult<()> {
        let (hasher, password) = (self.hasher.clone(), password.clone());
        let spend = move || hasher.dummy_verify(&password);
        Ok(run_hashing(self.ports.hash_pool.as_ref(), spend).await?)
    }

    /// Waits, without blocking, until `Settings::password_answer_floor` has passed since
    /// `started` (on the [`Delay`] port's clock); at once when it has.
    pub async fn hold_failed_answer(&self, started: std::time::Instant) {
        let elapsed = self.ports.delay.now().saturating_duration_since(started);
        let rest = self.settings.password_answer_floor.saturating_sub(elapsed);
        if !rest.is_zero() {
            self.ports.delay.sleep(rest).await;
        }
    }

    /// Takes back every attempt `view` counted before its check, for a check that never
    /// happened (the hash pool was full). Failures are logged: the answer is an error
    /// already.
    pub async fn settle_reserved(&self, view: &LockView) {
        for (before, after) in &view.reserved {
            let settled = self
                .ports
                .lockout
                .settle(&after.key, after, before.as_ref())
                .await;
            if let Err(e) = settled {
                tracing::warn!(error = %e, "taking back an unchecked attempt failed");
            }
        }
    }

    pub fn ip_key(&self, ip: IpAddr) -> Option<LockoutKey> {
        (!self
            .policy
            .is_ip_excluded(ip, &self.settings.lockout.excluded))
        .then(|| LockoutKey::ip(ip))
    }

    /// Reads the counters of `keys` in one round trip.
    pub async fn lock_check(&self, keys: &[&LockoutKey]) -> ServiceResult<LockView> {
        let mut view = LockView {
            covered: keys.iter().map(|k| (*k).clone()).collect(),
            ..LockView::default()
        };
        if keys.is_empty() {
            return Ok(view);
        }
        let now = self.now();
        for entry in self.ports.lockout.get_many(keys).await? {
            // A store whose comparison is looser than ours (a collation) may return rows
            // of other keys: only exact keys count.
            if keys.contains(&&entry.key) {
                self.hints.exists(&entry.key);
                view.status = view.status.combine(lockout::status(Some(&entry), now));
                view.entries.push(entry);
            }
        }
        Ok(view)
    }

    /// Counts this attempt on every key before it is checked: only an attempt inside every
    /// budget may be checked at all. Reads the counters (one round trip), then counts on
    /// each by compare-and-set. The view's status is locked when a key was locked already
    /// or this attempt went beyond its budget (a burst that passed the read together).
    ///
    /// Keys this process has not seen with a counter lately are not read first: they are
    /// counted straight away (an insert; the store falls back to a read and a
    /// compare-and-set when a counter exists after all).
    pub async fn reserve_attempt(&self, keys: &[&LockoutKey]) -> ServiceResult<LockView> {
        self.reserve_attempt_checking(keys, &[]).await
    }

    /// [`Self::reserve_attempt`] on `keys`, refused also when one of `checked` is locked
    /// (read in the same round trip, not counted).
    pub async fn reserve_attempt_checking(
        &self,
        keys: &[&LockoutKey],
        checked: &[&LockoutKey],
    ) -> ServiceResult<LockView> {
        let hinted: Vec<&LockoutKey> = keys
            .iter()
            .chain(checked)
            .copied()
            .filter(|k| self.hints.may_exist(k))
            .collect();
        let mut view = if hinted.is_empty() {
            LockView::default()
        } else {
            self.lock_check(&hinted).await?
        };
        // Keys not hinted have no counter as far as this process knows: they are counted
        // by an insert that finds out otherwise.
        view.covered = keys.iter().chain(checked).map(|k| (*k).clone()).collect();
        if view.status.is_locked() {
            return Ok(view);
        }
        for key in keys {
            let before = view.seen(key).cloned();
            self.count_on(&mut view, key, before).await?;
        }
        Ok(view)
    }

    async fn count_on(
        &self,
        view: &mut LockView,
        key: &LockoutKey,
        before: Option<LockoutEntry>,
    ) -> ServiceResult<()> {
        let rule = self.settings.lockout.rule_for(key);
        let after = self
            .ports
            .lockout
            .record_failure(key, before.as_ref(), self.now(), rule)
            .await?;
        if after.failures > rule.threshold
            && let Some(until) = after.locked_until
        {
            view.status = view.status.combine(LockStatus::Locked { until });
        }
        self.hints.exists(key);
        view.reserved.push((before, after));
        Ok(())
    }

    /// Counts a failure on `key`, on top of what the lock check saw.
    pub async fn record_failure(&self, key: &LockoutKey, view: &LockView) -> ServiceResult<()> {
        let rule = self.settings.lockout.rule_for(key);
        self.ports
            .lockout
            .record_failure(key, view.seen(key), self.now(), rule)
            .await?;
        self.hints.exists(key);
        Ok(())
    }

    /// Records a successful sign-in of `account` (canonical username) from the request's
    /// address bucket, unless this process did so within the last hour.
    pub async fn remember_client(&self, account: &str, ctx: &RequestContext) -> ServiceResult<()> {
        let (bucket, now) = (lockout::bucket(ctx.ip), self.now());
        if self.recent_clients.stale(account, &bucket, now) {
            self.ports
                .lockout
                .remember_client(account, &bucket, now)
                .await?;
            self.recent_clients.written(account, &bucket, now);
        }
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

    /// Applies a transition's effects, in order, as emitted. `view` is what the lock check
    /// read: failures are counted on top of it, and clearing a counter it read as absent
    /// is a no-op (there was nothing to clear).
    pub async fn apply(
        &self,
        t: &Transition,
        view: &LockView,
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
                Effect::RecordFailure(key) => self.record_failure(key, view).await?,
                Effect::ClearFailures(key) => {
                    if view.may_have(key) {
                        self.ports.lockout.clear(key).await?;
                        self.hints.gone(key);
                    }
                }
                Effect::Settle(key) => {
                    if let Some((before, after)) = view.reservation(key) {
                        self.ports
                            .lockout
                            .settle(key, after, before.as_ref())
                            .await?;
                        if before.is_none() {
                            self.hints.gone(key);
                        }
                    }
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
