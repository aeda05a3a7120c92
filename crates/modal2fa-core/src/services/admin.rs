//! User and security administration, and the `clear-failed-logins` command.

use std::net::IpAddr;
use std::sync::Arc;

use super::Context;
use crate::error::{Forbidden, ServiceError, ServiceResult};
use crate::lockout::{LockoutEntry, LockoutKey};
use crate::machine::LoginState;
use crate::model::{
    AuditEvent, AuditKind, Page, RequestContext, SecurityEventKind, SessionRecord, User, UserId,
    Username, canonical_form,
};

/// A row of the user admin table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// The account.
    pub user: User,
    /// Has a confirmed authenticator app.
    pub totp: bool,
    /// Passkeys registered.
    pub passkeys: usize,
    /// Trusted devices, or `None` when the policy disables them ("Disabled").
    pub trusted_devices: Option<usize>,
    /// 2FA optional (else required).
    pub two_factor_optional: bool,
    /// A password is set.
    pub password_set: bool,
}

/// Administration.
#[derive(Clone)]
pub struct AdminService(pub(crate) Arc<Context>);

impl AdminService {
    /// A signed-in administrator: permitted by `permitted`, and signed in with a second
    /// factor (a password-only or trusted-device session steps up first), as for managing
    /// one's own factors.
    async fn administrator(
        &self,
        state: &LoginState,
        permitted: impl FnOnce(&User) -> bool,
        refusal: Forbidden,
    ) -> ServiceResult<User> {
        let (me, s) = self.0.signed_in_user(state).await?;
        if !permitted(&me) {
            return Err(refusal.into());
        }
        if matches!(state, LoginState::StepUp(_))
            || !self
                .0
                .policy
                .factor_management_methods()
                .contains(&s.method)
        {
            return Err(ServiceError::StepUpRequired);
        }
        Ok(me)
    }

    async fn security_admin(&self, state: &LoginState) -> ServiceResult<User> {
        let policy = self.0.policy.clone();
        self.administrator(
            state,
            |u| policy.can_manage_security(u),
            Forbidden::ManageSecurity,
        )
        .await
    }

    async fn user_admin(&self, state: &LoginState) -> ServiceResult<User> {
        let policy = self.0.policy.clone();
        self.administrator(
            state,
            |u| policy.can_manage_users(u),
            Forbidden::ManageUsers,
        )
        .await
    }

    /// The user table.
    pub async fn list_users(
        &self,
        state: &LoginState,
        page: Page,
    ) -> ServiceResult<Vec<UserSummary>> {
        let c = &self.0;
        self.user_admin(state).await?;
        let mut rows = Vec::new();
        for user in c.ports.users.list(page).await? {
            let totp = c
                .ports
                .factors
                .totp_devices(user.id)
                .await?
                .iter()
                .any(|d| d.confirmed);
            let passkeys = c.ports.factors.webauthn_credentials(user.id).await?.len();
            let trusted_devices = if c.policy.allowed_remember(&user) {
                Some(c.ports.trusted_devices.list(user.id).await?.len())
            } else {
                None
            };
            rows.push(UserSummary {
                totp,
                passkeys,
                trusted_devices,
                two_factor_optional: c.policy.user_2fa_optional(&user),
                password_set: user.password_hash.is_some(),
                user,
            });
        }
        Ok(rows)
    }

    /// Strips every factor and trusted device, clears the user's lockout, ends their
    /// sessions and emails them. It cannot set a password.
    pub async fn reset_two_factor(
        &self,
        state: &LoginState,
        user: UserId,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let c = &self.0;
        let me = self.user_admin(state).await?;
        let target = c.user(user).await?;
        c.strip_factors(target.id).await?;
        c.ports
            .lockout
            .clear(&LockoutKey::user(&target.username))
            .await?;
        c.ports.sessions.delete_for_user(target.id).await?;
        c.audit(
            AuditKind::TwoFactorReset,
            Some(target.id),
            Some(me.username.as_str()),
            ctx,
            None,
        )
        .await;
        c.notify(&target, SecurityEventKind::TwoFactorResetByAdmin, ctx)
            .await;
        Ok(())
    }

    /// Failed-login counters, newest first.
    pub async fn list_lockouts(
        &self,
        state: &LoginState,
        page: Page,
    ) -> ServiceResult<Vec<LockoutEntry>> {
        self.security_admin(state).await?;
        Ok(self.0.ports.lockout.list(page).await?)
    }

    /// Clears one counter (lifting its lock); audited.
    pub async fn clear_lockout(
        &self,
        state: &LoginState,
        key: &LockoutKey,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let c = &self.0;
        let me = self.security_admin(state).await?;
        if !c.ports.lockout.clear(key).await? {
            return Err(ServiceError::NotFound);
        }
        c.audit(
            AuditKind::LockoutCleared,
            None,
            Some(me.username.as_str()),
            ctx,
            Some(key.as_storage_string()),
        )
        .await;
        Ok(())
    }

    /// Active sessions, newest first.
    pub async fn list_sessions(
        &self,
        state: &LoginState,
        page: Page,
    ) -> ServiceResult<Vec<SessionRecord>> {
        let c = &self.0;
        self.security_admin(state).await?;
        Ok(c.ports.sessions.list_active(c.now(), page).await?)
    }

    /// Ends a session at once; audited.
    pub async fn end_session(
        &self,
        state: &LoginState,
        id_hash: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let c = &self.0;
        let me = self.security_admin(state).await?;
        if !c.ports.sessions.delete(id_hash).await? {
            return Err(ServiceError::NotFound);
        }
        c.audit(
            AuditKind::SessionEnded,
            None,
            Some(me.username.as_str()),
            ctx,
            None,
        )
        .await;
        Ok(())
    }

    /// The `clear-failed-logins` command: with no target removes stale rows; with an IP
    /// or a username removes that key's row, lifting its lock. Returns rows removed. Each
    /// run that removes something is audited (as done from the command line).
    pub async fn clear_failed_logins(&self, target: Option<&str>) -> ServiceResult<u64> {
        let c = &self.0;
        let now = c.now();
        let (removed, detail) = match target.map(str::trim).filter(|t| !t.is_empty()) {
            None => {
                let cutoff = c.settings.lockout.purge_cutoff(now);
                let n = c.ports.lockout.purge_expired(cutoff).await?;
                (n, format!("command line: {n} stale counter(s)"))
            }
            Some(t) => {
                let key = match t.parse::<IpAddr>() {
                    Ok(ip) => LockoutKey::ip(ip),
                    // The key the sign-in counted on: the name's canonical form.
                    Err(_) => Username::parse(t).map_or_else(
                        |_| LockoutKey::User(canonical_form(t)),
                        |u| LockoutKey::user(&u),
                    ),
                };
                let n = u64::from(c.ports.lockout.clear(&key).await?);
                (n, format!("command line: {}", key.as_storage_string()))
            }
        };
        if removed > 0 {
            let event = AuditEvent {
                at: now,
                kind: AuditKind::LockoutCleared,
                user_id: None,
                username: None,
                ip: None,
                user_agent: None,
                detail: Some(detail),
            };
            if let Err(e) = c.ports.audit.record(event).await {
                tracing::error!(error = %e, "writing the audit event of clear-failed-logins failed");
            }
        }
        Ok(removed)
    }
}
