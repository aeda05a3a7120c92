//! Passwords, reset links and invitations.

use std::sync::Arc;

use super::Context;
use super::login::PasswordLogin;
use super::report::LoginReport;
use crate::error::{Forbidden, ServiceError, ServiceResult};
use crate::lockout::{LockStatus, LockoutKey};
use crate::machine::{LoginState, Refusal};
use crate::model::{AuditKind, Email, NewUser, RequestContext, SecurityEventKind, User, Username};
use crate::password::{PasswordCheck, validate_new_password};
use crate::ports::ConflictKind;
use crate::ports::{Notification, Recipient};
use crate::secret::SecretString;
use crate::tokens::{LinkPurpose, ParsedLink};

/// An account to create (CLI or admin).
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Login name.
    pub username: String,
    /// Email, optional.
    pub email: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Initial password; `None` leaves it unset (invitation).
    pub password: Option<SecretString>,
    /// Superuser flag.
    pub superuser: bool,
}

/// An invitation to send.
#[derive(Debug, Clone)]
pub struct InviteRequest {
    /// The address; it becomes the username.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
}

/// Passwords, resets and invitations.
#[derive(Clone)]
pub struct AccountService(pub(crate) Arc<Context>);

impl AccountService {
    /// Creates an account (the CLI's `user create`, or an admin). Checks every field
    /// before writing anything.
    pub async fn create_user(&self, account: NewAccount) -> ServiceResult<User> {
        let c = &self.0;
        let rules = c.policy.name_rules();
        let username = Username::parse_with(&account.username, &rules)?;
        let email = account
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .map(|e| Email::parse_with(e, &rules))
            .transpose()?;
        let password_hash = match &account.password {
            Some(p) => {
                validate_new_password(p, None)?;
                if crate::model::canonical_form(p.expose()) == username.canonical() {
                    return Err(crate::model::ParseError::new(
                        "password",
                        crate::model::Problem::SameAsIdentity,
                    )
                    .into());
                }
                Some(c.hash_password(p).await?)
            }
            None => None,
        };
        if c.ports.users.find_by_username(&username).await?.is_some() {
            return Err(ServiceError::Conflict(ConflictKind::Username));
        }
        let now = c.now();
        Ok(c.ports
            .users
            .create(NewUser {
                username,
                email,
                first_name: account.first_name.trim().to_owned(),
                last_name: account.last_name.trim().to_owned(),
                password_changed_at: password_hash.as_ref().map(|_| now),
                password_hash,
                is_superuser: account.superuser,
                created_at: now,
            })
            .await?)
    }

    async fn set_password(
        &self,
        user: &User,
        new: &SecretString,
        ctx: &RequestContext,
    ) -> ServiceResult<User> {
        let c = &self.0;
        validate_new_password(new, Some(user))?;
        let hash = c.hash_password(new).await?;
        let now = c.now();
        // Compare-and-set: of two concurrent uses of one link (or one old password), one wins.
        if !c
            .ports
            .users
            .replace_password(user.id, user.password_hash.as_deref(), &hash, now)
            .await?
        {
            return Err(crate::tokens::LinkError::Invalid.into());
        }
        let mut updated = user.clone();
        updated.password_hash = Some(hash);
        updated.password_changed_at = Some(now);
        // A password change voids every trusted device (a stolen device cookie must not outlive the password).
        c.ports.trusted_devices.delete_all(user.id).await?;
        c.audit(AuditKind::PasswordChanged, Some(user.id), None, ctx, None)
            .await;
        c.notify(&updated, SecurityEventKind::PasswordChanged, ctx)
            .await;
        Ok(updated)
    }

    /// Changes the signed-in user's password; the old one is required (a wrong one counts
    /// as a failed attempt). With `sign_out_other_sessions`, every session of the user is
    /// ended; the caller renews its own (the report asks for it).
    pub async fn change_password(
        &self,
        state: &LoginState,
        old: &SecretString,
        new: &SecretString,
        sign_out_other_sessions: bool,
        ctx: &RequestContext,
    ) -> ServiceResult<u64> {
        let c = &self.0;
        let (user, _) = c.signed_in_user(state).await?;
        let key = LockoutKey::user(&user.username);
        let view = c.lock_check(&[&key]).await?;
        if let LockStatus::Locked { until } = view.status {
            return Err(Refusal::Locked { until }.into());
        }
        let ok = match user.password_hash.as_deref() {
            Some(h) => matches!(
                c.verify_password(old, h).await?,
                PasswordCheck::Valid { .. }
            ),
            None => false,
        };
        if !ok {
            c.record_failure(&key, &view).await?;
            return Err(Refusal::InvalidCredentials.into());
        }
        self.set_password(&user, new, ctx).await?;
        if sign_out_other_sessions {
            Ok(c.ports.sessions.delete_for_user(user.id).await?)
        } else {
            Ok(0)
        }
    }

    /// Writes a reset link for every active account with this address to the outbox.
    /// The caller answers the same whatever happens, and so does the time: the answer is
    /// held to the failed sign-in's floor, and no mail is sent from the request. Requests
    /// count on the address's and the IP's counters; a locked one is silently dropped.
    /// `link_base` is the URL the token is appended to.
    pub async fn request_password_reset(
        &self,
        email: &str,
        link_base: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let c = &self.0;
        let started = c.ports.delay.now();
        let email = Email::for_lookup(email)?;
        let addr_key = LockoutKey::User(format!("reset:{}", email.canonical()));
        let ip_key = c.ip_key(ctx.ip);
        let keys: Vec<&LockoutKey> = std::iter::once(&addr_key).chain(ip_key.iter()).collect();
        let view = c.lock_check(&keys).await?;
        for key in keys {
            c.record_failure(key, &view).await?;
        }
        if !view.status.is_locked() {
            let now = c.now();
            for user in c
                .ports
                .users
                .find_by_email(&email)
                .await?
                .into_iter()
                .filter(|u| u.is_active)
            {
                let Some(to) = Recipient::of(&user) else {
                    continue;
                };
                let token = c.links.issue(
                    LinkPurpose::PasswordReset,
                    &user,
                    now,
                    c.settings.link_lifetime,
                );
                let link = SecretString::new(format!("{link_base}{}", token.expose()));
                c.enqueue(&Notification::PasswordReset { to, link }, None, None)
                    .await;
            }
        }
        c.hold_failed_answer(started).await;
        Ok(())
    }

    async fn link_user(&self, purpose: LinkPurpose, token: &str) -> ServiceResult<User> {
        let c = &self.0;
        let parsed = ParsedLink::parse(token)?;
        let user = c
            .ports
            .users
            .find_by_id(parsed.user_id())
            .await?
            .filter(|u| u.is_active)
            .ok_or(crate::tokens::LinkError::Invalid)?;
        c.links.verify(purpose, &parsed, &user, c.now())?;
        Ok(user)
    }

    /// What can be told of a link without reading any store: its format, and the expiry it
    /// claims (an anonymous GET of a link's page runs no statement). The link is verified
    /// for real when it is used.
    pub fn check_link_shape(&self, token: &str) -> ServiceResult<()> {
        let parsed = ParsedLink::parse(token)?;
        if parsed.claims_expired(self.0.now()) {
            return Err(crate::tokens::LinkError::Expired.into());
        }
        Ok(())
    }

    /// Checks a reset link without using it (to show the form).
    pub async fn check_reset_link(&self, token: &str) -> ServiceResult<User> {
        self.link_user(LinkPurpose::PasswordReset, token).await
    }

    /// Sets a new password from a reset link. The link dies with the change; every session
    /// of the user ends; the next sign-in still needs the second factor.
    pub async fn reset_password(
        &self,
        token: &str,
        new: &SecretString,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let c = &self.0;
        let user = self.link_user(LinkPurpose::PasswordReset, token).await?;
        self.set_password(&user, new, ctx).await?;
        c.ports.sessions.delete_for_user(user.id).await?;
        c.ports
            .lockout
            .clear(&LockoutKey::user(&user.username))
            .await?;
        Ok(())
    }

    /// Creates a user (username = email) and emails an invitation link. Needs `can_manage_users`.
    pub async fn invite(
        &self,
        admin: &LoginState,
        invite: InviteRequest,
        link_base: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<User> {
        let c = &self.0;
        let (me, _) = c.signed_in_user(admin).await?;
        if !c.policy.can_manage_users(&me) {
            return Err(Forbidden::ManageUsers.into());
        }
        self.send_invitation(invite, link_base, Some(me.username.as_str()), ctx)
            .await
    }

    /// The operator's invitation (the CLI's `user invite`: whoever runs it holds the
    /// database already): creates the user (username = email) unless an account of that
    /// name exists, and writes an invitation link for it to the outbox. An existing
    /// account is invited again only while it has no password and is active (so an
    /// invitation never replaces a password someone chose). `invited_by` is audited.
    pub async fn send_invitation(
        &self,
        invite: InviteRequest,
        link_base: &str,
        invited_by: Option<&str>,
        ctx: &RequestContext,
    ) -> ServiceResult<User> {
        let c = &self.0;
        let email = Email::parse_with(&invite.email, &c.policy.name_rules())?;
        let username = Username::parse_with(email.as_str(), &c.policy.name_rules())?;
        let user = match c.ports.users.find_by_username(&username).await? {
            Some(u) if u.password_hash.is_none() && u.is_active => u,
            Some(_) => return Err(ServiceError::Conflict(ConflictKind::Username)),
            None => {
                self.create_user(NewAccount {
                    username: email.to_string(),
                    email: Some(email.to_string()),
                    first_name: invite.first_name,
                    last_name: invite.last_name,
                    password: None,
                    superuser: false,
                })
                .await?
            }
        };
        let token = c.links.issue(
            LinkPurpose::Invitation,
            &user,
            c.now(),
            c.settings.link_lifetime,
        );
        let link = SecretString::new(format!("{link_base}{}", token.expose()));
        if let Some(to) = Recipient::of(&user) {
            c.enqueue(&Notification::Invitation { to, link }, None, None)
                .await;
        }
        c.audit(AuditKind::UserInvited, Some(user.id), invited_by, ctx, None)
            .await;
        Ok(user)
    }

    /// Sets the first password from an invitation link, then signs in with it, continuing
    /// to 2FA as the policy requires.
    pub async fn accept_invitation(
        &self,
        state: &LoginState,
        token: &str,
        new: &SecretString,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let user = self.link_user(LinkPurpose::Invitation, token).await?;
        self.set_password(&user, new, ctx).await?;
        self.0
            .password_step(
                state,
                PasswordLogin {
                    username: user.username.to_string(),
                    password: new.clone(),
                    trusted_device_cookie: None,
                },
                ctx,
            )
            .await
    }
}
