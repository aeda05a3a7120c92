//! The sign-in flow: password, second factor, step-up, cancel, logout, Microsoft.

use std::sync::Arc;

use super::Context;
use crate::error::{ServiceError, ServiceResult};
use crate::lockout::LockStatus;
use crate::machine::{
    self, FactorVerdict, LoginEvent, LoginState, MicrosoftRefusal, MicrosoftVerdict, Outcome,
    PasswordAttempt, PasswordVerdict, TrustedDeviceVerdict, ValidPassword,
};
use crate::model::{AuditKind, AuthMethod, FactorKind, LockoutKey, RequestContext, User, Username};
use crate::password::PasswordCheck;
use crate::ports::ExternalClaims;
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

/// What to do with the trusted-device cookie.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CookieUpdate {
    /// Leave it.
    #[default]
    Keep,
    /// Set it to this value (after rotation).
    Set(SecretString),
    /// Delete it.
    Clear,
}

/// The result of a login step, for the web layer to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginReport {
    /// The state to keep in the session.
    pub state: LoginState,
    /// What to tell the user.
    pub outcome: Outcome,
    /// Issue a new session id (privilege changed).
    pub renew_session: bool,
    /// Delete the session.
    pub end_session: bool,
    /// The trusted-device cookie.
    pub trusted_device_cookie: CookieUpdate,
    /// Offer "name and trust this device" (after a 2FA sign-in, when policy and cap allow).
    pub offer_trust: bool,
}

/// The sign-in flow.
#[derive(Clone)]
pub struct LoginService(pub(crate) Arc<Context>);

impl LoginService {
    async fn finish(
        &self,
        t: machine::Transition,
        user: Option<&User>,
        username: Option<&str>,
        ctx: &RequestContext,
        detail: Option<String>,
        cookie: CookieUpdate,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let user_id = user.map(|u| u.id).or(t.state.user_id());
        let instructions = c.apply(&t, user_id, username, ctx, detail).await?;
        let offer_trust = match (&t.outcome, user) {
            (
                Outcome::SignedIn {
                    method: AuthMethod::TwoFactor,
                },
                Some(u),
            ) => c.policy.allowed_remember(u) && c.policy.max_trusted_devices(u) > 0,
            _ => false,
        };
        Ok(LoginReport {
            state: t.state,
            outcome: t.outcome,
            renew_session: instructions.renew,
            end_session: instructions.end,
            trusted_device_cookie: cookie,
            offer_trust,
        })
    }

    /// Step 1–9 of SPEC §1: checks the lock, then the password, then decides.
    pub async fn submit_password(
        &self,
        state: &LoginState,
        form: PasswordLogin,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        if form.username.trim().is_empty() {
            return Err(crate::model::ParseError::new("username", "is required").into());
        }
        if form.password.expose().is_empty() {
            return Err(crate::model::ParseError::new("password", "is required").into());
        }
        let username = Username::parse(&form.username).ok();
        let user_key = username.as_ref().map(LockoutKey::user);
        let ip_key = c.ip_key(ctx.ip);
        let keys: Vec<&LockoutKey> = user_key.iter().chain(ip_key.iter()).collect();
        let (lock, counted) = c.lock_check(&keys).await?;

        let user = match (&username, lock) {
            (Some(name), LockStatus::Open) => c.ports.users.find_by_username(name).await?,
            _ => None,
        };
        let rng = c.ports.random.as_ref();
        let mut verdict = PasswordVerdict::Invalid;
        let mut cookie = CookieUpdate::Keep;
        let mut concerned = None;
        match user
            .as_ref()
            .filter(|u| u.is_active)
            .and_then(|u| u.password_hash.as_deref().map(|h| (u, h)))
        {
            Some((u, hash)) => match c.hasher.verify(&form.password, hash) {
                PasswordCheck::Invalid => {}
                PasswordCheck::Valid { needs_upgrade } => {
                    if needs_upgrade {
                        self.upgrade_hash(u, &form.password).await;
                    }
                    let two_factor_applies = c.policy.two_factor_enabled(ctx);
                    let password_login_allowed = c.policy.password_login_allowed(u);
                    let trusted = match &form.trusted_device_cookie {
                        Some(value)
                            if two_factor_applies
                                && password_login_allowed
                                && c.policy.allowed_remember(u) =>
                        {
                            let (v, update) =
                                super::factors::check_trusted_device(c, u, value, ctx).await?;
                            cookie = update;
                            v
                        }
                        _ => TrustedDeviceVerdict::Absent,
                    };
                    verdict = PasswordVerdict::Valid(ValidPassword {
                        user_id: u.id,
                        password_login_allowed,
                        two_factor_applies,
                        trusted_device: trusted,
                        has_factor: self.has_factor(u).await?,
                        factor_optional: c.policy.user_2fa_optional(u),
                    });
                    concerned = Some(u.clone());
                }
            },
            // Unknown, inactive, passwordless or locked: spend the same time.
            None => c.hasher.dummy_verify(&form.password, rng),
        }
        let attempt = PasswordAttempt {
            user_key,
            ip_key,
            lock,
            verdict,
        };
        let mut t = machine::step(
            state,
            LoginEvent::Password(attempt),
            c.now(),
            &c.settings.machine,
        );
        c.spare_absent_counters(&mut t, &counted).await?;
        let typed = username.as_ref().map(|u| u.as_str().to_owned());
        let user_ref = concerned.as_ref().or(user.as_ref());
        self.finish(t, user_ref, typed.as_deref(), ctx, None, cookie)
            .await
    }

    async fn upgrade_hash(&self, user: &User, password: &SecretString) {
        let c = &self.0;
        match c.hasher.hash(password, c.ports.random.as_ref()) {
            Ok(hash) => {
                let mut updated = user.clone();
                updated.password_hash = Some(hash);
                if let Err(e) = c.ports.users.update(&updated).await {
                    tracing::warn!(error = %e, user = %user.id, "upgrading a password hash failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "rehashing a password failed"),
        }
    }

    /// Whether the user has a confirmed factor the policy lets them use.
    pub async fn has_factor(&self, user: &User) -> ServiceResult<bool> {
        let c = &self.0;
        if c.policy.allow_totp(user)
            && c.ports
                .factors
                .totp_devices(user.id)
                .await?
                .iter()
                .any(|d| d.confirmed)
        {
            return Ok(true);
        }
        Ok(c.policy.allow_passkeys(user)
            && !c
                .ports
                .factors
                .webauthn_credentials(user.id)
                .await?
                .is_empty())
    }

    async fn pending_user(&self, state: &LoginState) -> ServiceResult<(User, LockoutKey)> {
        let c = &self.0;
        let (id, key) = match state {
            LoginState::PendingSecondFactor(p) => (p.user_id, p.lockout_key.clone()),
            LoginState::StepUp(s) => (s.signed_in.user_id, s.lockout_key.clone()),
            _ => {
                return Err(ServiceError::NotAllowed(
                    "no login is waiting for a second factor",
                ));
            }
        };
        let user = c
            .ports
            .users
            .find_by_id(id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(ServiceError::NotSignedIn)?;
        Ok((user, key))
    }

    /// The user whose second factor may be checked now, or the verdict that stands
    /// without a check: locked, or no login waiting for a factor (the machine refuses it).
    async fn checkable_user(
        &self,
        state: &LoginState,
    ) -> ServiceResult<Result<User, FactorVerdict>> {
        let c = &self.0;
        match self.pending_user(state).await {
            Ok((user, key)) => Ok(match c.lock_status(&[&key]).await? {
                LockStatus::Locked { until } => Err(FactorVerdict::Locked { until }),
                LockStatus::Open => Ok(user),
            }),
            Err(ServiceError::NotAllowed(_)) => Ok(Err(FactorVerdict::Rejected)),
            Err(e) => Err(e),
        }
    }

    /// Step 10: an authenticator-app code for the pending login or step-up.
    pub async fn submit_totp(
        &self,
        state: &LoginState,
        code: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let code = crate::model::TotpCode::parse(code)?;
        let (verdict, user) = match self.checkable_user(state).await? {
            Err(verdict) => (verdict, None),
            Ok(user) => (
                super::factors::verify_totp(&self.0, &user, &code).await?,
                Some(user),
            ),
        };
        self.factor_step(state, verdict, ctx, "totp", user).await
    }

    /// Step 10: a recovery code for the pending login or step-up.
    pub async fn submit_recovery_code(
        &self,
        state: &LoginState,
        code: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let (verdict, checked) = match self.checkable_user(state).await? {
            Err(verdict) => (verdict, None),
            Ok(user) => {
                let hash = super::factors::recovery_hash(c, user.id, code);
                if c.ports
                    .factors
                    .consume_recovery_code(user.id, &hash)
                    .await?
                {
                    c.audit(AuditKind::RecoveryCodeUsed, Some(user.id), None, ctx, None)
                        .await;
                    c.notify(
                        &user,
                        crate::model::SecurityEventKind::RecoveryCodeUsed,
                        ctx,
                    )
                    .await;
                    (
                        FactorVerdict::Accepted(FactorKind::RecoveryCode),
                        Some(user),
                    )
                } else {
                    (FactorVerdict::Rejected, Some(user))
                }
            }
        };
        self.factor_step(state, verdict, ctx, "recovery_code", checked)
            .await
    }

    async fn factor_step(
        &self,
        state: &LoginState,
        verdict: FactorVerdict,
        ctx: &RequestContext,
        factor: &str,
        checked: Option<User>,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let t = machine::step(
            state,
            LoginEvent::SecondFactor(verdict),
            c.now(),
            &c.settings.machine,
        );
        // The user was loaded to check the factor; load it only when it was not.
        let user = match (checked, t.state.user_id().or(state.user_id())) {
            (Some(u), _) => Some(u),
            (None, Some(id)) => c.ports.users.find_by_id(id).await?,
            (None, None) => None,
        };
        self.finish(
            t,
            user.as_ref(),
            None,
            ctx,
            Some(factor.to_owned()),
            CookieUpdate::Keep,
        )
        .await
    }

    /// Completes a pending setup login after a first factor was enrolled (used by
    /// [`super::FactorService`]).
    pub(crate) async fn enrolled(
        &self,
        state: &LoginState,
        kind: FactorKind,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let t = machine::step(
            state,
            LoginEvent::FactorEnrolled(kind),
            c.now(),
            &c.settings.machine,
        );
        let user = match state.user_id() {
            Some(id) => c.ports.users.find_by_id(id).await?,
            None => None,
        };
        self.finish(t, user.as_ref(), None, ctx, None, CookieUpdate::Keep)
            .await
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
        self.finish(t, Some(&user), None, ctx, None, CookieUpdate::Keep)
            .await
    }

    /// Closes the 2FA modal: abandons a pending login or a step-up.
    pub async fn cancel(
        &self,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let t = machine::step(state, LoginEvent::Cancel, c.now(), &c.settings.machine);
        self.finish(t, None, None, ctx, None, CookieUpdate::Keep)
            .await
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
        let instructions = c.apply(&t, user_id, None, ctx, None).await?;
        Ok(LoginReport {
            state: t.state,
            outcome: t.outcome,
            renew_session: instructions.renew,
            end_session: instructions.end,
            trusted_device_cookie: CookieUpdate::Keep,
            offer_trust: false,
        })
    }

    /// SPEC §6: decides on validated Microsoft claims (tenant gate, guests, account match,
    /// MFA freshness) and signs in or continues to the 2FA modal.
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
                            has_factor: self.has_factor(&u).await?,
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
        self.finish(
            t,
            matched.as_ref(),
            claims.preferred_username.as_deref(),
            ctx,
            Some(detail),
            CookieUpdate::Keep,
        )
        .await
    }
}
