//! Passkeys and security keys as a second factor (WebAuthn). Every ceremony is done by
//! webauthn-rs; nothing here touches the cryptography.
//!
//! The model: a ceremony is *begun* by the server — options for the browser's
//! `navigator.credentials.create()` / `.get()`, and a [`Ceremony::state`] the web layer
//! keeps in the (server-side) session — and *finished* with the browser's answer and
//! that state, once: the web layer takes the state out of the session to finish it, so a
//! challenge is single use and bound to the session that asked for it. The state names
//! the account and the moment it was begun; an answer for another account, or after the
//! relying party's ceremony timeout, is [`Refusal::CeremonyExpired`]. Each challenge is
//! webauthn-rs's: 32 random bytes.
//!
//! User verification follows the policy hook `passkey_user_verification`:
//! `discouraged` (the default) asks only for presence — a touch — so hardware keys work
//! as in the original; `preferred` asks the authenticator to verify when it can;
//! `required` refuses a registration or an assertion without verification. Credential
//! ids already registered (to anyone) are refused, as are ids over 1023 bytes; the
//! browser is told the user's existing credentials (`excludeCredentials`) and, at sign-in,
//! their transports. The signature counter must grow unless it stays 0 (synced passkeys
//! keep it at 0): a counter at or below the stored one refuses the sign-in and tells the
//! owner (the authenticator may have been cloned).

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use webauthn_rs::prelude::{
    AuthenticationResult, Credential, CredentialID, DiscoverableAuthentication,
    PublicKeyCredential, RegisterPublicKeyCredential, SecurityKey, SecurityKeyAuthentication,
    SecurityKeyRegistration, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::Context;
use crate::error::{Forbidden, ServiceError, ServiceResult};
use crate::machine::{FactorVerdict, LoginState, Outcome, Refusal};
use crate::model::{
    AuditKind, FactorKind, NewWebAuthnCredential, RequestContext, SecurityEventKind, User, UserId,
    WebAuthnCredential,
};
use crate::policy::{ResidentKey, UserVerification};
use crate::services::LoginReport;
use crate::settings::RelyingParty;
use webauthn_rs_proto::{ResidentKeyRequirement, UserVerificationPolicy};

/// The longest credential id accepted, in bytes (WebAuthn's limit).
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;

/// The longest name of a passkey, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// The relying party's two webauthn-rs instances: touch-only (the `discouraged` policy)
/// and verifying (`preferred`, `required`).
pub(crate) struct Ceremonies {
    touch_only: Webauthn,
    verifying: Webauthn,
    timeout: time::Duration,
}

impl Ceremonies {
    /// The instances for `rp`, which [`RelyingParty::new`] has checked.
    pub(crate) fn new(rp: &RelyingParty) -> Self {
        let origin = Url::parse(rp.origin()).expect("RelyingParty::new checked the origin");
        let timeout = std::time::Duration::try_from(rp.ceremony_timeout())
            .unwrap_or(webauthn_rs::DEFAULT_AUTHENTICATOR_TIMEOUT);
        let build = |touch_only: bool| {
            WebauthnBuilder::new(rp.id(), &origin)
                .map(|b| {
                    b.rp_name(rp.name())
                        .timeout(timeout)
                        .danger_set_user_presence_only_security_keys(touch_only)
                })
                .and_then(WebauthnBuilder::build)
                .expect("RelyingParty::new checked the RP ID against the origin")
        };
        Self {
            touch_only: build(true),
            verifying: build(false),
            timeout: rp.ceremony_timeout(),
        }
    }

    pub(super) fn for_policy(&self, uv: UserVerification) -> &Webauthn {
        match uv {
            UserVerification::Discouraged => &self.touch_only,
            UserVerification::Preferred | UserVerification::Required => &self.verifying,
        }
    }
}

/// A ceremony begun: the options for the browser and the state to keep until its answer.
#[derive(Debug)]
pub struct Ceremony {
    /// JSON for the browser (`PublicKeyCredentialCreationOptions` or
    /// `…RequestOptions`, as `@simplewebauthn/browser` takes them).
    pub options: String,
    /// What the server keeps in the session until the answer comes back, and then drops:
    /// opaque, never shown to the browser.
    pub state: String,
}

impl Ceremony {
    pub(super) fn new(options: &impl Serialize, kept: &Kept) -> ServiceResult<Self> {
        Ok(Self {
            options: serde_json::to_string(options).map_err(unexpected)?,
            state: serde_json::to_string(kept).map_err(unexpected)?,
        })
    }
}

/// What a [`Ceremony::state`] holds.
#[derive(Serialize, Deserialize)]
#[serde(tag = "ceremony", rename_all = "snake_case")]
pub(super) enum Kept {
    Registration {
        user: UserId,
        begun: i64,
        uv: Uv,
        state: SecurityKeyRegistration,
    },
    Authentication {
        user: UserId,
        begun: i64,
        uv: Uv,
        state: SecurityKeyAuthentication,
    },
    /// A passwordless sign-in: for no one yet (the passkey will say whom).
    Discoverable {
        begun: i64,
        state: DiscoverableAuthentication,
    },
}

/// The policy a ceremony was begun under.
#[derive(Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum Uv {
    Discouraged,
    Preferred,
    Required,
}

impl From<UserVerification> for Uv {
    fn from(u: UserVerification) -> Self {
        match u {
            UserVerification::Discouraged => Self::Discouraged,
            UserVerification::Preferred => Self::Preferred,
            UserVerification::Required => Self::Required,
        }
    }
}

impl From<Uv> for UserVerification {
    fn from(u: Uv) -> Self {
        match u {
            Uv::Discouraged => Self::Discouraged,
            Uv::Preferred => Self::Preferred,
            Uv::Required => Self::Required,
        }
    }
}

pub(super) fn unexpected(e: impl std::error::Error + Send + Sync + 'static) -> ServiceError {
    ServiceError::Unexpected(Box::new(e))
}

/// Passkeys and security keys: registration, the second-factor ceremony, passwordless
/// sign-in, and the user's list (rename, remove).
#[derive(Clone)]
pub struct PasskeyService(pub(crate) Arc<Context>);

impl Context {
    pub(super) fn ceremonies(&self) -> ServiceResult<&Ceremonies> {
        self.ceremonies
            .as_ref()
            .ok_or(ServiceError::Forbidden(Forbidden::PasskeysNotConfigured))
    }

    /// The account's WebAuthn user handle: an HMAC of its id under a key of its own, so
    /// it is stable, names no one, and differs between deployments.
    pub(super) fn user_handle(&self, user: UserId) -> Uuid {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.user_handle_key)
            .expect("any key length");
        mac.update(format!("webauthn-user|{user}").as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    }

    /// The kept state of a ceremony, if it is `user`'s (`None`: a passwordless one, for no
    /// one yet) and still open.
    pub(super) fn open_kept(&self, kept: &str, user: Option<UserId>) -> Result<Kept, Refusal> {
        let kept: Kept = serde_json::from_str(kept).map_err(|_| Refusal::CeremonyExpired)?;
        let (owner, begun) = match &kept {
            Kept::Registration { user, begun, .. } | Kept::Authentication { user, begun, .. } => {
                (Some(*user), *begun)
            }
            Kept::Discoverable { begun, .. } => (None, *begun),
        };
        let timeout = self
            .ceremonies
            .as_ref()
            .map_or(time::Duration::ZERO, |c| c.timeout);
        let expired = self.now().unix_timestamp() - begun > timeout.whole_seconds();
        if owner != user || expired {
            return Err(Refusal::CeremonyExpired);
        }
        Ok(kept)
    }

    /// Stores what a verified assertion changed: the counter, the backup state, the
    /// credential's own state, the time of use.
    pub(super) async fn record_passkey_use(
        &self,
        stored: &WebAuthnCredential,
        result: &AuthenticationResult,
    ) -> ServiceResult<()> {
        let mut key = security_key(stored)?;
        key.update_credential(result);
        let serialized = serde_json::to_string(&key).map_err(unexpected)?;
        self.ports
            .factors
            .update_webauthn_use(
                stored.id,
                result.counter(),
                result.backup_state(),
                serialized,
                self.now(),
            )
            .await?;
        Ok(())
    }

    /// Verifies a registration begun for `user` and stores the credential under `name`
    /// (trimmed; "Security key" when empty), voids the trusted devices and tells the
    /// owner. Refused: a ceremony of another account or past its timeout, an answer that
    /// does not verify, a credential id over [`MAX_CREDENTIAL_ID_LEN`] bytes, no user
    /// verification where the policy required it; a credential id registered already (to
    /// anyone) is a conflict. With `first_factor`, a user who has enrolled a factor since
    /// is [`Forbidden::FactorEnrolledMeanwhile`].
    pub(super) async fn register_passkey(
        &self,
        user: &User,
        kept: &str,
        answer: &str,
        name: &str,
        first_factor: bool,
        ctx: &RequestContext,
    ) -> ServiceResult<WebAuthnCredential> {
        let ceremonies = self.ceremonies()?;
        let Kept::Registration { uv, state: reg, .. } = self.open_kept(kept, Some(user.id))? else {
            return Err(Refusal::CeremonyExpired.into());
        };
        let answer: RegisterPublicKeyCredential =
            serde_json::from_str(answer).map_err(|_| Refusal::PasskeyRejected)?;
        let key = ceremonies
            .for_policy(uv.into())
            .finish_securitykey_registration(&answer, &reg)
            .map_err(|e| {
                tracing::info!(error = %e, user = %user.id, "a passkey registration did not verify");
                Refusal::PasskeyRejected
            })?;
        let cred: Credential = key.clone().into();
        if cred.cred_id.len() > MAX_CREDENTIAL_ID_LEN || (uv == Uv::Required && !cred.user_verified)
        {
            return Err(Refusal::PasskeyRejected.into());
        }
        if first_factor {
            let counts = self.ports.factors.count_factors(user.id).await?;
            if self.counts_as_factor(user, &counts) {
                return Err(Forbidden::FactorEnrolledMeanwhile.into());
            }
        }
        let name: String = name.trim().chars().take(MAX_NAME_LEN).collect();
        let stored = self
            .ports
            .factors
            .add_webauthn(NewWebAuthnCredential {
                user_id: user.id,
                name: if name.is_empty() {
                    "Security key".to_owned()
                } else {
                    name
                },
                credential_id: cred.cred_id.to_vec(),
                credential: serde_json::to_string(&key).map_err(unexpected)?,
                sign_count: cred.counter,
                transports: transport_names(&cred),
                backup_eligible: cred.backup_eligible,
                backup_state: cred.backup_state,
                created_at: self.now(),
            })
            .await?;
        self.ports.trusted_devices.delete_all(user.id).await?;
        self.audit(
            AuditKind::FactorAdded,
            Some(user.id),
            None,
            ctx,
            Some("passkey".into()),
        )
        .await;
        self.notify(user, SecurityEventKind::PasskeyAdded, ctx)
            .await;
        Ok(stored)
    }
}

/// A stored credential as webauthn-rs's security key.
pub(super) fn security_key(stored: &WebAuthnCredential) -> ServiceResult<SecurityKey> {
    serde_json::from_str(&stored.credential).map_err(unexpected)
}

/// The transports an authenticator reported, by their WebAuthn names (`usb`, `internal`, …).
fn transport_names(cred: &Credential) -> Vec<String> {
    cred.transports
        .iter()
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

impl PasskeyService {
    /// Whether passkeys are configured on this server.
    pub fn enabled(&self) -> bool {
        self.0.ceremonies.is_some()
    }

    /// The signed-in user's passkeys, oldest first.
    pub async fn list(&self, state: &LoginState) -> ServiceResult<Vec<WebAuthnCredential>> {
        let c = &self.0;
        let (user, _) = c.signed_in_user(state).await?;
        Ok(c.ports.factors.webauthn_credentials(user.id).await?)
    }

    /// Begins registering a passkey: a first factor (a set-up login, or a signed-in user
    /// without one), or one more for a session that may manage factors (others step up
    /// first). The browser is told the user's credentials (`excludeCredentials`), the
    /// user verification and the resident-key requirement the policy asks for this user.
    pub async fn begin_registration(&self, state: &LoginState) -> ServiceResult<Ceremony> {
        let c = &self.0;
        let ceremonies = c.ceremonies()?;
        let user = c.enrolling_user(state).await?;
        if !c.policy.allow_passkeys(&user) {
            return Err(Forbidden::PasskeysDisabled.into());
        }
        let exclude: Vec<CredentialID> = c
            .ports
            .factors
            .webauthn_credentials(user.id)
            .await?
            .into_iter()
            .map(|k| CredentialID::from(k.credential_id))
            .collect();
        let uv = c.policy.passkey_user_verification(&user);
        let (mut options, state) = ceremonies
            .for_policy(uv)
            .start_securitykey_registration(
                c.user_handle(user.id),
                user.username.as_str(),
                &user.display_name(),
                Some(exclude),
                None,
                None,
            )
            .map_err(unexpected)?;
        // A hint to the authenticator only: whether it keeps the credential discoverable
        // (what passwordless sign-in needs) is not part of what the server verifies.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            let resident = c.policy.passkey_resident_key(&user);
            selection.resident_key = Some(match resident {
                ResidentKey::Discouraged => ResidentKeyRequirement::Discouraged,
                ResidentKey::Preferred => ResidentKeyRequirement::Preferred,
                ResidentKey::Required => ResidentKeyRequirement::Required,
            });
            selection.require_resident_key = resident == ResidentKey::Required;
            // webauthn-rs asks a verifying key for `preferred`; `required` is enforced
            // here when the answer comes, and the browser is told so it verifies.
            if uv == UserVerification::Required {
                selection.user_verification = UserVerificationPolicy::Required;
            }
        }
        // webauthn-rs hints `security-key` (its security-key flow); a verifying policy
        // is for passkeys too (a phone, the platform's own), so no hint steers the
        // browser away from them.
        if uv != UserVerification::Discouraged {
            options.public_key.hints = None;
        }
        // webauthn-rs asks a verifying key to protect the credential with "user
        // verification required" (credProtect level 3, not enforced). Under `preferred`
        // that contradicts the policy: a key without a PIN would create a credential it
        // can never use again, and browsers refuse the request outright where the
        // authenticator lacks the extension. Only `required` keeps it: there every use
        // verifies anyway.
        if uv == UserVerification::Preferred
            && let Some(extensions) = options.public_key.extensions.as_mut()
        {
            extensions.cred_protect = None;
        }
        let begun = c.now().unix_timestamp();
        let (user, uv) = (user.id, uv.into());
        Ceremony::new(
            &options,
            &Kept::Registration {
                user,
                begun,
                uv,
                state,
            },
        )
    }

    /// Finishes a registration of a signed-in user with the browser's answer (see
    /// [`Context::register_passkey`]). A set-up login finishes with
    /// [`Self::complete_setup`] instead.
    pub async fn finish_registration(
        &self,
        state: &LoginState,
        kept: &str,
        answer: &str,
        name: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<WebAuthnCredential> {
        let c = &self.0;
        if let LoginState::PendingSecondFactor(_) = state {
            return Err(Forbidden::FinishSigningInFirst.into());
        }
        let user = c.enrolling_user(state).await?;
        c.register_passkey(&user, kept, answer, name, false, ctx)
            .await
    }

    /// Begins the second-factor ceremony of a pending login or a step-up: the user's
    /// credentials (with their transports) are offered.
    pub async fn begin_authentication(&self, state: &LoginState) -> ServiceResult<Ceremony> {
        let c = &self.0;
        let ceremonies = c.ceremonies()?;
        let Some((user, _)) = c.pending_user(state).await? else {
            return Err(Refusal::NoPendingLogin.into());
        };
        let keys = c
            .ports
            .factors
            .webauthn_credentials(user.id)
            .await?
            .iter()
            .map(security_key)
            .collect::<ServiceResult<Vec<_>>>()?;
        if keys.is_empty() {
            return Err(Refusal::NotAllowed.into());
        }
        let uv = c.policy.passkey_user_verification(&user);
        let (mut options, state) = ceremonies
            .for_policy(uv)
            .start_securitykey_authentication(&keys)
            .map_err(unexpected)?;
        if uv == UserVerification::Required {
            options.public_key.user_verification = UserVerificationPolicy::Required;
        }
        let begun = c.now().unix_timestamp();
        let (user, uv) = (user.id, uv.into());
        Ceremony::new(
            &options,
            &Kept::Authentication {
                user,
                begun,
                uv,
                state,
            },
        )
    }

    /// Finishes the second-factor ceremony with the browser's answer: counted before it
    /// is checked on the second factor's own budget, as a code is.
    pub async fn submit_passkey(
        &self,
        state: &LoginState,
        kept: &str,
        answer: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<LoginReport> {
        let c = &self.0;
        let ceremonies = c.ceremonies()?;
        let Some((pending, _)) = c.pending_user(state).await? else {
            return Ok(LoginReport::refused(state, Refusal::NoPendingLogin));
        };
        let kept = match c.open_kept(kept, Some(pending.id)) {
            Ok(Kept::Authentication { uv, state, .. }) => (uv, state),
            Ok(Kept::Registration { .. } | Kept::Discoverable { .. }) | Err(_) => {
                return Ok(LoginReport::refused(state, Refusal::CeremonyExpired));
            }
        };
        let (verdict, checked, view, used) = match c.checkable_user(state, ctx).await? {
            (Err(verdict), view) => (verdict, None, view, None),
            (Ok(user), view) => {
                let (verdict, used) = self.verify(ceremonies, &user, kept, answer, ctx).await?;
                (verdict, Some(user), view, used)
            }
        };
        let mut report = c
            .factor_step(state, verdict, view, ctx, "webauthn", checked)
            .await?;
        // A sign-in (not a step-up: what established the session still did) records the
        // passkey, so removing it ends the session.
        if let (LoginState::PendingSecondFactor(_), Some(id)) = (state, used) {
            report.state = report.state.established_with(id);
        }
        // The machine words a rejected factor as a wrong code; this one was a passkey.
        if report.outcome == Outcome::Refused(Refusal::InvalidCode) {
            report.outcome = Outcome::Refused(Refusal::PasskeyRejected);
        }
        Ok(report)
    }

    async fn verify(
        &self,
        ceremonies: &Ceremonies,
        user: &User,
        (uv, auth): (Uv, SecurityKeyAuthentication),
        answer: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<(FactorVerdict, Option<i64>)> {
        let c = &self.0;
        let rejected = Ok((FactorVerdict::Rejected, None));
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(answer) else {
            return rejected;
        };
        let result = match ceremonies
            .for_policy(uv.into())
            .finish_securitykey_authentication(&answer, &auth)
        {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tracing::warn!(user = %user.id, "a passkey's signature counter went backwards");
                c.notify(user, SecurityEventKind::PasskeyCounterRegressed, ctx)
                    .await;
                return rejected;
            }
            Err(e) => {
                tracing::info!(error = %e, user = %user.id, "a passkey assertion did not verify");
                return rejected;
            }
        };
        if uv == Uv::Required && !result.user_verified() {
            return rejected;
        }
        let Some(stored) = c
            .ports
            .factors
            .find_webauthn(result.cred_id().as_ref())
            .await?
            .filter(|k| k.user_id == user.id)
        else {
            return rejected;
        };
        c.record_passkey_use(&stored, &result).await?;
        Ok((
            FactorVerdict::Accepted(FactorKind::WebAuthn),
            Some(stored.id),
        ))
    }
}
