//! Passwordless sign-in: a discoverable passkey alone signs a user in (method `passkey`).
//!
//! The model: the login modal begins a ceremony for no one ([`PasskeyService::begin_passwordless`]:
//! no `allowCredentials`, user verification required, offered to the browser's autofill
//! or behind a button); the authenticator picks a credential and answers with its id and
//! the user handle it was registered with. The answer is admitted only when all of these
//! hold, and is otherwise one refusal ([`Refusal::PasskeyRejected`]) that names nothing:
//!
//! - the ceremony was begun in this session, is a passwordless one, and is still open;
//! - the credential is registered, and the user handle is the one this server gives its
//!   owner (an HMAC of the account id: a handle of another account, or a credential moved
//!   between accounts, is refused);
//! - the owner is active, may use passkeys, and the policy hook `allow_passwordless`
//!   admits them;
//! - the credential was registered *with* user verification (a key enrolled as a
//!   touch-only second factor never signs in alone), and this assertion verified the
//!   user again (UV = 1), which webauthn-rs checks with the rest of the assertion
//!   (origin, RP ID hash, challenge, signature, counter).
//!
//! Nothing names an account before the check, so the attempt counts on the client
//! address only: a locked address is refused before the assertion is checked, and a
//! refused assertion counts a failure on it. A password lock of the account does not
//! stop its owner's passkey: it guards against guessed passwords, and an assertion cannot
//! be guessed. A counter that went backwards is refused and the owner told, as for the
//! second factor.

use webauthn_rs::prelude::{PublicKeyCredential, WebauthnError};

use super::passkeys::{Kept, security_key, unexpected};
use super::{Ceremony, LoginReport, PasskeyService};
use crate::error::{Forbidden, ServiceResult};
use crate::lockout::{LockStatus, LockoutKey};
use crate::machine::{self, Effect, LoginEvent, LoginState, PasswordlessVerdict, Refusal};
use crate::model::{RequestContext, SecurityEventKind, User, WebAuthnCredential};
use crate::policy::UserVerification;
use crate::services::login::StepFacts;
use crate::services::passkeys::Ceremonies;

/// What the check of an admitted answer found.
struct Admitted {
    user: User,
    passkey: WebAuthnCredential,
}

impl PasskeyService {
    /// Whether the login modal offers a passkey alone (passkeys configured, and the
    /// policy hook `allow_passwordless` with no user says yes).
    pub fn passwordless_offered(&self) -> bool {
        self.enabled() && self.0.policy.allow_passwordless(None)
    }

    /// Begins a passwordless ceremony: request options with no credentials listed and
    /// user verification required (`mediation: "conditional"` for the browser's autofill;
    /// a button drops it).
    pub fn begin_passwordless(&self) -> ServiceResult<Ceremony> {
        let c = &self.0;
        let ceremonies = c.ceremonies()?;
        if !c.policy.allow_passwordless(None) {
            return Err(Forbidden::PasswordlessDisabled.into());
        }
        let (options, state) = ceremonies
            .for_policy(UserVerification::Required)
            .start_discoverable_authentication()
            .map_err(unexpected)?;
        let begun = c.now().unix_timestamp();
        Ceremony::new(&options, &Kept::Discoverable { begun, state })
    }

    /// Finishes a passwordless ceremony with the browser's answer: signs in the user the
    /// passkey names, or refuses (see the module documentation).
    pub async fn submit_passwordless(
        &self,
        state: &LoginState,
        kept: &str,
        answer: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let ceremonies = c.ceremonies()?;
        let Ok(Kept::Discoverable { state: auth, .. }) = c.open_kept(kept, None) else {
            return Ok(LoginReport::refused(state, Refusal::CeremonyExpired));
        };
        let ip = c.ip_key(ctx.ip);
        let view = c
            .reserve_attempt_checking(&[], &ip.iter().collect::<Vec<_>>())
            .await?;
        let (verdict, admitted) = match view.status {
            LockStatus::Locked { until } => (PasswordlessVerdict::Locked { until }, None),
            LockStatus::Open => match self.admit(ceremonies, auth, answer, ctx).await? {
                Some(a) => (
                    PasswordlessVerdict::Accepted {
                        user_id: a.user.id,
                        lockout_key: LockoutKey::user(&a.user.username),
                    },
                    Some(a),
                ),
                None => (PasswordlessVerdict::Rejected, None),
            },
        };
        let mut t = machine::step(
            state,
            LoginEvent::Passwordless(verdict.clone()),
            c.now(),
            &c.settings.machine,
        );
        if verdict == PasswordlessVerdict::Rejected
            && let Some(ip) = ip
        {
            t.effects.push(Effect::RecordFailure(ip));
        }
        let facts = StepFacts {
            view,
            user: admitted.as_ref().map(|a| &a.user),
            typed_username: None,
            detail: Some("passkey".into()),
            ..StepFacts::default()
        };
        let mut report = c.finish(t, facts, ctx).await?;
        if let Some(a) = admitted {
            report.state = report.state.established_with(a.passkey.id);
        }
        Ok(report)
    }

    /// The user and passkey an answer admits, after webauthn-rs verified it; `None` for
    /// every refusal.
    async fn admit(
        &self,
        ceremonies: &Ceremonies,
        auth: webauthn_rs::prelude::DiscoverableAuthentication,
        answer: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<Option<Admitted>> {
        let c = &self.0;
        let webauthn = ceremonies.for_policy(UserVerification::Required);
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(answer) else {
            return Ok(None);
        };
        let Ok((handle, cred_id)) = webauthn.identify_discoverable_authentication(&answer) else {
            return Ok(None);
        };
        let Some(passkey) = c.ports.factors.find_webauthn(cred_id).await? else {
            return Ok(None);
        };
        if c.user_handle(passkey.user_id) != handle {
            tracing::info!(user = %passkey.user_id, "a passkey answered with another account's user handle");
            return Ok(None);
        }
        let Some(user) = c
            .ports
            .users
            .find_by_id(passkey.user_id)
            .await?
            .filter(|u| u.is_active)
        else {
            return Ok(None);
        };
        if !c.policy.allow_passkeys(&user) || !c.policy.allow_passwordless(Some(&user)) {
            return Ok(None);
        }
        let key = security_key(&passkey)?;
        let credential: webauthn_rs::prelude::Credential = key.into();
        // Enrolled touch-only: a second factor, never a sign-in alone.
        if !credential.user_verified {
            return Ok(None);
        }
        let result = match webauthn.finish_discoverable_authentication_v2(
            &answer,
            auth,
            &credential,
        ) {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tracing::warn!(user = %user.id, "a passkey's signature counter went backwards");
                c.notify(&user, SecurityEventKind::PasskeyCounterRegressed, ctx)
                    .await;
                return Ok(None);
            }
            Err(e) => {
                tracing::info!(error = %e, user = %user.id, "a passwordless assertion did not verify");
                return Ok(None);
            }
        };
        if !result.user_verified() {
            return Ok(None);
        }
        c.record_passkey_use(&passkey, &result).await?;
        Ok(Some(Admitted { user, passkey }))
    }
}
