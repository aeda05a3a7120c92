//! The user's passkeys after registration: renaming and removing one, and a set-up login
//! that enrols a passkey as its first factor.
//!
//! Removal is effective at once: the credential row goes, and with it every session that
//! was established with it (its store id is kept in the session, [`SignedIn::passkey`])
//! in every server process, since sessions live in the store. Removing a passkey voids
//! the trusted devices, as removing the authenticator app does. Removing the user's
//! *last* second factor is removing 2FA, and is guarded exactly as "Remove 2FA" is: it
//! needs a session that may manage factors and an explicit confirmation
//! ([`PasskeyRemoval::ConfirmLastFactor`] until then), and it voids the recovery codes
//! too; a user whose policy requires 2FA sets up a factor again at the next sign-in.
//!
//! [`SignedIn::passkey`]: crate::machine::SignedIn::passkey

use super::passkeys::MAX_NAME_LEN;
use super::{LoginReport, PasskeyService};
use crate::error::{Forbidden, ServiceError, ServiceResult};
use crate::machine::{self, LoginEvent, LoginState, Refusal};
use crate::model::{AuditKind, FactorKind, RequestContext, SecurityEventKind};
use crate::parse::{ParseError, Problem};
use crate::services::login::StepFacts;

/// What [`PasskeyService::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    /// Removed.
    Removed {
        /// The session that asked was established with this passkey, and has ended.
        ended_this_session: bool,
        /// It was the user's last second factor: 2FA is off, the recovery codes void.
        two_factor_removed: bool,
    },
    /// Nothing was done: this is the user's last second factor, and removing it removes
    /// 2FA; ask again with the confirmation.
    ConfirmLastFactor,
}

/// A passkey's name as the user typed it: trimmed, not empty, at most [`MAX_NAME_LEN`]
/// characters, no control characters.
fn passkey_name(name: &str) -> Result<&str, ParseError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ParseError::new("name", Problem::Required));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(ParseError::new(
            "name",
            Problem::TooLong { max: MAX_NAME_LEN },
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ParseError::new("name", Problem::ControlCharacter));
    }
    Ok(name)
}

impl PasskeyService {
    /// Renames one of the signed-in user's passkeys (a session that may manage factors).
    /// Another user's passkey, or none, is [`ServiceError::NotFound`].
    pub async fn rename(
        &self,
        state: &LoginState,
        id: i64,
        name: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let c = &self.0;
        let user = c.managing_user(state).await?;
        let name = passkey_name(name).map_err(Refusal::Invalid)?;
        if !c.ports.factors.rename_webauthn(user.id, id, name).await? {
            return Err(ServiceError::NotFound);
        }
        c.audit(
            AuditKind::FactorRenamed,
            Some(user.id),
            None,
            ctx,
            Some(format!("passkey: {name}")),
        )
        .await;
        Ok(())
    }

    /// Removes one of the signed-in user's passkeys (a session that may manage factors),
    /// ending the sessions established with it and voiding the trusted devices. The last
    /// second factor goes only `confirmed` (see the module documentation).
    pub async fn remove(
        &self,
        state: &LoginState,
        id: i64,
        confirmed: bool,
        ctx: &RequestContext,
    ) -> ServiceResult<PasskeyRemoval> {
        let c = &self.0;
        let user = c.managing_user(state).await?;
        let keys = c.ports.factors.webauthn_credentials(user.id).await?;
        if !keys.iter().any(|k| k.id == id) {
            return Err(ServiceError::NotFound);
        }
        let mut left = c.ports.factors.count_factors(user.id).await?;
        left.webauthn = left.webauthn.saturating_sub(1);
        let last = !c.counts_as_factor(&user, &left);
        if last && !confirmed {
            return Ok(PasskeyRemoval::ConfirmLastFactor);
        }
        if !c.ports.factors.delete_webauthn(user.id, id).await? {
            return Err(ServiceError::NotFound);
        }
        c.ports.sessions.delete_for_passkey(user.id, id).await?;
        c.ports.trusted_devices.delete_all(user.id).await?;
        if last {
            c.strip_factors(user.id).await?;
        }
        c.audit(
            AuditKind::FactorRemoved,
            Some(user.id),
            None,
            ctx,
            Some(
                if last {
                    "passkey, the last factor"
                } else {
                    "passkey"
                }
                .into(),
            ),
        )
        .await;
        let event = if last {
            SecurityEventKind::TwoFactorRemoved
        } else {
            SecurityEventKind::PasskeyRemoved
        };
        c.notify(&user, event, ctx).await;
        Ok(PasskeyRemoval::Removed {
            ended_this_session: state.signed_in().and_then(|s| s.passkey) == Some(id),
            two_factor_removed: last,
        })
    }

    /// Finishes a set-up login (a user who had to enrol a first factor) with a passkey:
    /// the registration begun by [`Self::begin_registration`] is verified and stored, and
    /// the user is signed in with it (a session established with that passkey). A refused
    /// registration is a refusal in the report; a user who has enrolled a factor since
    /// the password was checked ends the set-up login ([`Refusal::Expired`]), as with an
    /// authenticator app.
    pub async fn complete_setup(
        &self,
        state: &LoginState,
        kept: &str,
        answer: &str,
        name: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let user = match c.setup_user(state).await {
            Ok(user) => user,
            Err(ServiceError::Refused(r)) => return Ok(LoginReport::refused(state, r)),
            Err(e) => return Err(e),
        };
        if !c.policy.allow_passkeys(&user) {
            return Err(Forbidden::PasskeysDisabled.into());
        }
        let stored = match c
            .register_passkey(&user, kept, answer, name, true, ctx)
            .await
        {
            Ok(stored) => stored,
            Err(ServiceError::Refused(r)) => return Ok(LoginReport::refused(state, r)),
            Err(ServiceError::Forbidden(Forbidden::FactorEnrolledMeanwhile)) => {
                return Ok(LoginReport::ended(Refusal::Expired));
            }
            Err(other) => return Err(other),
        };
        let t = machine::step(
            state,
            LoginEvent::FactorEnrolled(FactorKind::WebAuthn),
            c.now(),
            &c.settings.machine,
        );
        let facts = StepFacts {
            user: Some(&user),
            ..StepFacts::default()
        };
        let mut report = c.finish(t, facts, ctx).await?.first_factor_set_up();
        report.state = report.state.established_with(stored.id);
        Ok(report)
    }
}
