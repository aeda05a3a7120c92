//! The sign-in flow: password, second factor (code or recovery code), finishing a set-up
//! login with its first factor, step-up, cancel, logout, Microsoft.

use std::sync::Arc;

use super::report::{CookieUpdate, LoginReport};
use super::{Context, LockView};
use crate::error::{Forbidden, ServiceError, ServiceResult};
use crate::lockout::{self, LockStatus, LockoutKey};
use crate::machine::{
    self, Effect, FactorVerdict, LoginEvent, LoginState, MicrosoftRefusal, MicrosoftVerdict,
    Outcome, PasswordAttempt, PasswordVerdict, Refusal, SignedIn, TrustedDeviceVerdict,
    ValidPassword,
};
use crate::model::{
    AuditKind, AuthMethod, FactorKind, ParseError, Problem, RequestContext, SecurityEventKind,
    TotpCode, User, Username,
};
use crate::password::PasswordCheck;
use crate::ports::{ExternalClaims, PortError};
use crate::secret::SecretString;

/// A password submission from the login form.
#[derive(Debug, Clone)]
pub struct PasswordLogin {
    /// As typed.
    pub username: String,
    /// As typed.
    pub password: SecretString,
    /// The trusted-device cookie the browser sent, if any.
    pub trusted_device_cookie: Option<SecretString>,
}

/// The sign-in flow.
#[derive(Clone)]
pub struct LoginService(pub(crate) Arc<Context>);

/// What a sign-in step learned besides the transition: what the lock check read, the
/// account concerned, what the audit log should say, and the trusted-device cookie.
#[derive(Default)]
pub(super) struct StepFacts<'a> {
    pub(super) view: LockView,
    pub(super) user: Option<&'a User>,
    pub(super) typed_username: Option<&'a str>,
    pub(super) detail: Option<String>,
    pub(super) cookie: CookieUpdate,
}

impl Context {
    /// Applies a transition and turns it into the report for the web layer.
    pub(super) async fn finish(
        &self,
        t: machine::Transition,
        facts: StepFacts<'_>,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let StepFacts {
            view,
            user,
            typed_username,
            detail,
            cookie,
        } = facts;
        let user_id = user.map(|u| u.id).or(t.state.user_id());
        let instructions = self
            .apply(&t, &view, user_id, typed_username, ctx, detail)
            .await?;
        // A sign-in makes this address one its owner may come through a lock from.
        if let Some(u) = user
            && t.effects
                .iter()
                .any(|e| matches!(e, Effect::RecordLogin(_)))
        {
            self.remember_client(&u.username.canonical(), ctx).await?;
        }
        // Offered once, right after a second factor (the state says so), if policy allows.
        let offered = t.state.signed_in().is_some_and(|s| s.trust_offer);
        let offer_trust = match (&t.outcome, user) {
            (
                Outcome::SignedIn {
                    method: AuthMethod::TwoFactor,
                },
                Some(u),
            ) if offered => {
                self.policy.allowed_remember(u) && self.policy.max_trusted_devices(u) > 0
            }
            _ => false,
        };
        Ok(LoginReport {
            state: t.state,
            outcome: t.outcome,
            renew_session: instructions.renew,
            end_session: instructions.end,
            trusted_device_cookie: cookie,
            offer_trust,
            offer_recovery_codes: false,
        })
    }

    /// Steps 1–9 of the sign-in flow: checks the lock, then the password, then decides.
    /// (Also used to sign in right after an invitation sets the first password.)
    pub(crate) async fn password_step(
        &self,
        state: &LoginState,
        form: PasswordLogin,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        if form.username.trim().is_empty() {
            let e = ParseError::new("username", Problem::Required);
            return Ok(LoginReport::refused(state, Refusal::Invalid(e)));
        }
        if form.password.expose().is_empty() {
            let e = ParseError::new("password", Problem::Required);
            return Ok(LoginReport::refused(state, Refusal::Invalid(e)));
        }
        let started = self.ports.delay.now();
        let username = Username::for_lookup(&form.username).ok();
        let mut user_key = username.as_ref().map(LockoutKey::user);
        let ip_key = self.ip_key(ctx.ip);
        let keys: Vec<&LockoutKey> = user_key.iter().chain(ip_key.iter()).collect();
        let mut view = self.reserve_attempt(&keys).await?;

        let mut user = match (&username, view.status) {
            (Some(name), LockStatus::Open) => self.account_named(name).await?,
            _ => None,
        };
        // The account is locked by failures from elsewhere, not this address: its owner may
        // still try from an address that signed in before, or with a trusted device,
        // counted on the account-at-this-address key instead.
        if let (Some(name), Some(account)) = (&username, &user_key)
            && view.locked_by(account, self.now())
            && !ip_key
                .as_ref()
                .is_some_and(|k| view.locked_by(k, self.now()))
            && let Some((owner, through)) = self.owner_through_lock(name, &form, &view, ctx).await?
        {
            user = Some(owner);
            user_key = through.0;
            view = through.1;
        }
        let mut verdict = PasswordVerdict::Invalid;
        let mut cookie = CookieUpdate::Keep;
        let mut concerned = None;
        match user
            .as_ref()
            .filter(|u| u.is_active)
            .and_then(|u| u.password_hash.as_deref().map(|h| (u, h)))
        {
            Some((u, hash)) => match self.verify_password(&form.password, hash).await {
                Err(e) => return Err(self.unchecked(&view, e).await),
                Ok(PasswordCheck::Invalid) => {}
                Ok(PasswordCheck::Valid { needs_upgrade }) => {
                    if needs_upgrade {
                        self.upgrade_hash(u, &form.password).await;
                    }
                    let account = user_key
                        .clone()
                        .unwrap_or_else(|| LockoutKey::user(&u.username));
                    let (v, update) = self.valid_password(u, account, &form, ctx).await?;
                    verdict = PasswordVerdict::Valid(v);
                    cookie = update;
                    concerned = Some(u.clone());
                }
            },
            // Beyond a budget: refused without any hashing.
            None if view.status.is_locked() => {}
            // Unknown, inactive or passwordless: spend the same time.
            None => {
                if let Err(e) = self.dummy_verify(&form.password).await {
                    return Err(self.unchecked(&view, e).await);
                }
            }
        }
        // A checked failure answers no sooner than the floor, whatever the stored hash.
        let held = matches!(verdict, PasswordVerdict::Invalid) && !view.status.is_locked();
        let locked_now = matches!(verdict, PasswordVerdict::Invalid)
            && user_key
                .as_ref()
                .is_some_and(|k| view.newly_locked(k, self.now()));
        let user_counted = user_key.as_ref().and_then(|k| view.counted(k)).cloned();
        let attempt = PasswordAttempt {
            user_key,
            ip_key,
            lock: view.status,
            user_counted,
            verdict,
        };
        let t = machine::step(
            state,
            LoginEvent::Password(attempt),
            self.now(),
            &self.settings.machine,
        );
        let typed = username.as_ref().map(|u| u.as_str().to_owned());
        let user_ref = concerned.as_ref().or(user.as_ref());
        let facts = StepFacts {
            view,
            user: user_ref,
            typed_username: typed.as_deref(),
            detail: None,
            cookie,
        };
        let report = self.finish(t, facts, ctx).await?;
        if let Some(u) = concerned.as_ref() {
            self.schedule_second_factor_alert(&report.state, u, ctx)
                .await;
        }
        if locked_now {
            self.alert_locked(user.as_ref(), username.as_ref(), ctx)
                .await?;
        }
        if held {
            self.hold_failed_answer(started).await;
        }
        Ok(report)
    }

    /// The facts about a correct password that the machine decides on.
    /// `account` is the key the attempt counts on as the account's: the username's, or the
    /// account-at-this-address key of an owner let through a lock.
    async fn valid_password(
        &self,
        u: &User,
        account: LockoutKey,
        form: &PasswordLogin,
        ctx: &RequestContext,
    ) -> ServiceResult<(ValidPassword, CookieUpdate)> {
        let two_factor_applies = self.policy.two_factor_enabled(ctx);
        let password_login_allowed = self.policy.password_login_allowed(u);
        let (trusted, cookie) = match &form.trusted_device_cookie {
            Some(value)
                if two_factor_applies
                    && password_login_allowed
                    && self.policy.allowed_remember(u) =>
            {
                self.check_trusted_device(u, value, ctx).await?
            }
            _ => (TrustedDeviceVerdict::Absent, CookieUpdate::Keep),
        };
        // Whether the user has a factor matters only when 2FA applies and no trusted device
        // signed them in: the factor lookups are skipped otherwise.
        let (has_factor, has_passkey) = if two_factor_applies
            && password_login_allowed
            && trusted != TrustedDeviceVerdict::Accepted
        {
            self.factors_of(u).await?
        } else {
            (true, false)
        };
        let valid = ValidPassword {
            user_id: u.id,
            user_key: account,
            password_login_allowed,
            two_factor_applies,
            trusted_device: trusted,
            has_factor,
            has_passkey,
            factor_optional: self.policy.user_2fa_optional(u),
        };
        Ok((valid, cookie))
    }

    /// A password check that could not run (the hash pool refused it): the attempt was
    /// never checked, so what was counted for it is taken back, and the error stands.
    async fn unchecked(&self, view: &LockView, e: ServiceError) -> ServiceError {
        self.settle_reserved(view).await;
        e
    }

    /// The owner of a locked account, if this attempt may go through the lock: the active
    /// account of `name`, tried from an address bucket it signed in from within
    /// `known_client_days`, or with a live trusted-device cookie of that account. Such an
    /// attempt is counted before its check on the account-at-this-address key (and on the
    /// address, if the first count did not reach it), which is returned with the new view;
    /// a success clears that key only, so the lock stays for everyone else.
    /// The account a sign-in names. A row the store cannot read (a host's row outside the
    /// model's rules) is an account that cannot sign in: the attempt fails as for an
    /// unknown name — same answer, same counters — and the log names the row, so the
    /// operator can mend it; the request does not fail.
    pub(super) async fn account_named(&self, name: &Username) -> ServiceResult<Option<User>> {
        match self.ports.users.find_by_username(name).await {
            Ok(user) => Ok(user),
            Err(PortError::Unreadable { row, problem }) => {
                tracing::warn!(%row, %problem, "a stored account cannot be read; its sign-in is refused");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn owner_through_lock(
        &self,
        name: &Username,
        form: &PasswordLogin,
        first: &LockView,
        ctx: &RequestContext,
    ) -> ServiceResult<Option<(User, (Option<LockoutKey>, LockView))>> {
        let Some(owner) = self.account_named(name).await?.filter(|u| u.is_active) else {
            return Ok(None);
        };
        let account = owner.username.canonical();
        let bucket = lockout::bucket(ctx.ip);
        let since =
            self.now() - time::Duration::days(i64::from(self.settings.lockout.known_client_days));
        let known = self
            .ports
            .lockout
            .knows_client(&account, &bucket, since)
            .await?;
        let holds_device = match &form.trusted_device_cookie {
            Some(cookie) if !known => self.holds_live_device(&owner, cookie).await?,
            _ => false,
        };
        if !known && !holds_device {
            return Ok(None);
        }
        let through = LockoutKey::UserAt(account, bucket);
        let ip_key = self.ip_key(ctx.ip).filter(|k| first.counted(k).is_none());
        let keys: Vec<&LockoutKey> = std::iter::once(&through).chain(ip_key.iter()).collect();
        let view = self.reserve_attempt(&keys).await?;
        Ok(Some((owner, (Some(through), view))))
    }

    /// Rehashes a verified legacy password; a failure (the pool is full, say) leaves the
    /// old hash for the next sign-in.
    async fn upgrade_hash(&self, user: &User, password: &SecretString) {
        match self.hash_password(password).await {
            // Only the hash, and only if it is still the one just verified: a change made
            // meanwhile (a deactivation, a reset, a host's edit) is never reverted, and a
            // password changed meanwhile is left as it is.
            Ok(hash) => {
                let changed = user.password_changed_at.unwrap_or(user.created_at);
                let swap = self.ports.users.replace_password(
                    user.id,
                    user.password_hash.as_deref(),
                    &hash,
                    changed,
                );
                if let Err(e) = swap.await {
                    tracing::warn!(error = %e, user = %user.id, "upgrading a password hash failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "rehashing a password failed"),
        }
    }
}

impl LoginService {
    /// Steps 1–9 of the sign-in flow: checks the lock, then the password, then decides.
    pub async fn submit_password(
        &self,
        state: &LoginState,
        form: PasswordLogin,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        self.0.password_step(state, form, ctx).await
    }

    /// The signed-in user of a session (`NotSignedIn` for a pending login, an anonymous
    /// session or a deactivated account), with how the session signed in.
    pub async fn signed_in_user(&self, state: &LoginState) -> ServiceResult<(User, SignedIn)> {
        self.0.signed_in_user(state).await
    }

    /// Step 10: an authenticator-app code for the pending login or step-up.
    pub async fn submit_totp(
        &self,
        state: &LoginState,
        code: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let code = match TotpCode::parse(code) {
            Ok(code) => code,
            Err(e) => return Ok(LoginReport::refused(state, Refusal::Invalid(e))),
        };
        let (verdict, user, view) = match c.checkable_user(state, ctx).await? {
            (Err(verdict), view) => (verdict, None, view),
            (Ok(user), view) => (c.verify_totp(&user, &code).await?, Some(user), view),
        };
        c.factor_step(state, verdict, view, ctx, "totp", user).await
    }

    /// Step 10: a recovery code for the pending login or step-up.
    pub async fn submit_recovery_code(
        &self,
        state: &LoginState,
        code: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let (verdict, checked, view) = match c.checkable_user(state, ctx).await? {
            (Err(verdict), view) => (verdict, None, view),
            (Ok(user), view) => {
                let hash = c.recovery_hash(user.id, code);
                if c.ports
                    .factors
                    .consume_recovery_code(user.id, &hash)
                    .await?
                {
                    c.audit(AuditKind::RecoveryCodeUsed, Some(user.id), None, ctx, None)
                        .await;
                    c.notify(&user, SecurityEventKind::RecoveryCodeUsed, ctx)
                        .await;
                    (
                        FactorVerdict::Accepted(FactorKind::RecoveryCode),
                        Some(user),
                        view,
                    )
                } else {
                    (FactorVerdict::Rejected, Some(user), view)
                }
            }
        };
        c.factor_step(state, verdict, view, ctx, "recovery_code", checked)
            .await
    }

    /// Finishes a set-up login (a user who had to enrol a first factor) with the code that
    /// confirms the authenticator app of the enrolment `token`. A wrong code, or an
    /// expired enrolment, is a refusal in the report. A user who has enrolled a factor
    /// since the password was checked ends the set-up login: the report is anonymous,
    /// ends the session, and refuses with [`Refusal::Expired`]; they sign in again with
    /// that factor.
    pub async fn complete_setup_with_totp(
        &self,
        state: &LoginState,
        token: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let user = match c.setup_user(state).await {
            Ok(user) => user,
            Err(ServiceError::Refused(r)) => return Ok(LoginReport::refused(state, r)),
            Err(e) => return Err(e),
        };
        match c
            .confirm_totp_enrolment(&user, token, code, true, ctx)
            .await
        {
            Ok(()) => {}
            Err(ServiceError::Refused(r)) => return Ok(LoginReport::refused(state, r)),
            Err(ServiceError::Forbidden(Forbidden::FactorEnrolledMeanwhile)) => {
                return Ok(LoginReport::ended(Refusal::Expired));
            }
            Err(other) => return Err(other),
        }
        let t = machine::step(
            state,
            LoginEvent::FactorEnrolled(FactorKind::Totp),
            c.now(),
            &c.settings.machine,
        );
        let facts = StepFacts {
            user: Some(&user),
            ..StepFacts::default()
        };
        Ok(c.finish(t, facts, ctx).await?.first_factor_set_up())
    }

    /// Sends a signed-in session that may not manage factors through the 2FA modal.
    pub async fn begin_step_up(
        &self,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let (user, _) = c.signed_in_user(state).await?;
        let t = machine::step(
            state,
            LoginEvent::BeginStepUp {
                allowed_methods: c.policy.factor_management_methods(),
                lockout_key: LockoutKey::user(&user.username),
            },
            c.now(),
            &c.settings.machine,
        );
        let facts = StepFacts {
            user: Some(&user),
            ..StepFacts::default()
        };
        let mut report = c.finish(t, facts, ctx).await?;
        // Offer the user's passkeys at once, as a pending login does.
        if let LoginState::StepUp(s) = &mut report.state
            && c.ceremonies.is_some()
            && c.policy.allow_passkeys(&user)
        {
            s.passkey = c.ports.factors.count_factors(user.id).await?.webauthn > 0;
        }
        Ok(report)
    }

    /// Closes the 2FA modal: abandons a pending login or a step-up.
    pub async fn cancel(
        &self,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let t = machine::step(state, LoginEvent::Cancel, c.now(), &c.settings.machine);
        c.finish(t, StepFacts::default(), ctx).await
    }

    /// Signs out.
    pub async fn logout(
        &self,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let t = machine::step(state, LoginEvent::Logout, c.now(), &c.settings.machine);
        let user_id = state.user_id();
        let instructions = c
            .apply(&t, &LockView::default(), user_id, None, ctx, None)
            .await?;
        Ok(LoginReport {
            state: t.state,
            outcome: t.outcome,
            renew_session: instructions.renew,
            end_session: instructions.end,
            trusted_device_cookie: CookieUpdate::Keep,
            offer_trust: false,
            offer_recovery_codes: false,
        })
    }

    /// Decides on validated Microsoft claims (tenant gate, guests, account match, MFA
    /// freshness) and signs in or continues to the 2FA modal.
    pub async fn complete_microsoft(
        &self,
        state: &LoginState,
        claims: &ExternalClaims,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let now = c.now();
        let refuse = |r| MicrosoftVerdict::Refused(r);
        let mut matched = None;
        let verdict = match c.settings.microsoft_tenant_id.as_deref() {
            None => refuse(MicrosoftRefusal::NotAllowed),
            Some(tenant) if tenant != claims.tenant_id => refuse(MicrosoftRefusal::WrongTenant),
            Some(_)
                if c.policy.microsoft_is_guest(claims) && !c.policy.microsoft_allow_guests() =>
            {
                refuse(MicrosoftRefusal::Guest)
            }
            Some(_) => {
                let user = match c
                    .policy
                    .microsoft_username(claims)
                    .and_then(|n| Username::parse(&n).ok())
                {
                    Some(name) => c.ports.users.find_by_username(&name).await?,
                    None => None,
                };
                match user {
                    None => refuse(MicrosoftRefusal::NoAccount),
                    Some(u) if !u.is_active || !c.policy.microsoft_allowed(&u) => {
                        refuse(MicrosoftRefusal::NotAllowed)
                    }
                    Some(u) => {
                        let v = MicrosoftVerdict::Accepted {
                            user_id: u.id,
                            lockout_key: LockoutKey::user(&u.username),
                            satisfies_2fa: c.policy.microsoft_satisfies_2fa(claims, now),
                            two_factor_applies: c.policy.two_factor_enabled(ctx),
                            has_factor: c.has_factor(&u).await?,
                            factor_optional: c.policy.user_2fa_optional(&u),
                        };
                        matched = Some(u);
                        v
                    }
                }
            }
        };
        let t = machine::step(
            state,
            LoginEvent::Microsoft(verdict),
            now,
            &c.settings.machine,
        );
        let detail = format!("tid={} oid={}", claims.tenant_id, claims.object_id);
        let facts = StepFacts {
            user: matched.as_ref(),
            typed_username: claims.preferred_username.as_deref(),
            detail: Some(detail),
            ..StepFacts::default()
        };
        c.finish(t, facts, ctx).await
    }
}
