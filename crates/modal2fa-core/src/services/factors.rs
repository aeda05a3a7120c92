//! Factor management: TOTP enrolment, change and removal; recovery codes; removing 2FA.
//!
//! Enrolling an authenticator app stores nothing until it is confirmed: showing the set-up
//! page seals a fresh secret for the user, with an expiry, into a token the form carries
//! back with the confirming code ([`ENROLMENT_LIFETIME`]). So a GET of the page writes
//! nothing, however often it is opened, and no unconfirmed enrolment piles up. Confirming
//! checks the code against the sealed secret, then re-checks the user's factors: a set-up
//! login (parked at password time, when the user had none) cannot replace a factor the
//! owner enrolled meanwhile.

use std::sync::Arc;

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};

use super::Context;
use crate::crypto::Sealed;
use crate::error::{Forbidden, ServiceError, ServiceResult};
use crate::machine::{LoginState, Refusal};
use crate::model::{AuditKind, RequestContext, SecurityEventKind, TotpCode, User, UserId};
use crate::secret::{SecretBytes, SecretString};
use crate::totp;

/// How long a set-up page's enrolment can be confirmed.
pub const ENROLMENT_LIFETIME: time::Duration = time::Duration::minutes(15);

/// A TOTP enrolment waiting for its confirming code. Nothing is stored yet.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// The enrolment sealed for this user (the secret and an expiry): the set-up form
    /// carries it back with the confirming code.
    pub token: SecretString,
    /// Base32 secret for manual entry.
    pub secret: SecretString,
    /// `otpauth://` URL for the QR code.
    pub otpauth_url: SecretString,
}

/// What second factors a user has, for menus and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FactorSummary {
    /// A confirmed authenticator app the policy allows.
    pub totp: bool,
    /// Passkeys registered (that the policy allows).
    pub passkeys: usize,
}

impl FactorSummary {
    /// Whether any factor counts.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// TOTP and recovery codes.
#[derive(Clone)]
pub struct FactorService(pub(crate) Arc<Context>);

impl Context {
    /// The user of a pending set-up login (one that must enrol a first factor).
    pub(crate) async fn setup_user(&self, state: &LoginState) -> ServiceResult<User> {
        match state {
            LoginState::PendingSecondFactor(p) if p.setup_required => {
                if self.now() - p.since > self.settings.machine.pending_ttl {
                    return Err(Refusal::Expired.into());
                }
                self.ports
                    .users
                    .find_by_id(p.user_id)
                    .await?
                    .filter(|u| u.is_active)
                    .ok_or(ServiceError::NotSignedIn)
            }
            LoginState::PendingSecondFactor(_) => Err(Forbidden::FinishSigningInFirst.into()),
            _ => Err(ServiceError::NotSignedIn),
        }
    }

    /// The user whose factors a state may change: a pending set-up login, a signed-in
    /// session adding a first factor, or one allowed to manage factors.
    pub(super) async fn enrolling_user(&self, state: &LoginState) -> ServiceResult<User> {
        if let LoginState::PendingSecondFactor(_) = state {
            return self.setup_user(state).await;
        }
        let (user, _) = self.signed_in_user(state).await?;
        if !self.has_factor(&user).await? {
            return Ok(user);
        }
        self.managing_user(state).await
    }

    /// Seals a new enrolment's secret for `user`, expiring after [`ENROLMENT_LIFETIME`].
    fn seal_enrolment(&self, user: UserId, secret: &[u8]) -> SecretString {
        let expires = (self.now() + ENROLMENT_LIFETIME).unix_timestamp();
        let mut plain = Vec::with_capacity(8 + secret.len());
        plain.extend_from_slice(&expires.to_be_bytes());
        plain.extend_from_slice(secret);
        let sealed =
            self.secret_box
                .seal_for(Sealed::Enrolment, user, &plain, self.ports.random.as_ref());
        zeroize::Zeroize::zeroize(&mut plain);
        SecretString::new(BASE64URL_NOPAD.encode(&sealed))
    }

    /// The secret of an enrolment sealed for `user`; refused when it is expired, or not
    /// one this server sealed for this user.
    fn open_enrolment(&self, user: UserId, token: &str) -> ServiceResult<SecretBytes> {
        let sealed = BASE64URL_NOPAD
            .decode(token.trim().as_bytes())
            .map_err(|_| Refusal::EnrolmentExpired)?;
        let plain = self
            .secret_box
            .open_for(Sealed::Enrolment, user, &sealed)
            .map_err(|_| Refusal::EnrolmentExpired)?;
        let (expires, secret) = plain
            .expose()
            .split_first_chunk::<8>()
            .ok_or(Refusal::EnrolmentExpired)?;
        if i64::from_be_bytes(*expires) <= self.now().unix_timestamp() || secret.is_empty() {
            return Err(Refusal::EnrolmentExpired.into());
        }
        Ok(SecretBytes::new(secret.to_vec()))
    }

    /// Confirms an enrolment of `user` with a code: the code's step is consumed, the device
    /// is stored (replacing earlier ones), every trusted device goes, the owner is told.
    /// With `first_factor`, only while the user still has no factor: a factor enrolled
    /// meanwhile is [`Forbidden::FactorEnrolledMeanwhile`].
    pub(crate) async fn confirm_totp_enrolment(
        &self,
        user: &User,
        token: &str,
        code: &str,
        first_factor: bool,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let code = TotpCode::parse(code)?;
        let secret = self.open_enrolment(user.id, token)?;
        let step = totp::matching_step(secret.expose(), &self.settings.totp, &code, self.now())
            .ok_or(Refusal::InvalidCode)?;
        let counts = self.ports.factors.count_factors(user.id).await?;
        if first_factor && self.counts_as_factor(user, &counts) {
            return Err(Forbidden::FactorEnrolledMeanwhile.into());
        }
        let sealed = self
            .secret_box
            .seal(user.id, secret.expose(), self.ports.random.as_ref());
        let device = self
            .ports
            .factors
            .add_totp(user.id, sealed, self.now())
            .await?;
        // Confirming removes the user's other devices, in the same store transaction.
        if !self.ports.factors.confirm_totp(device.id, step).await? {
            return Err(ServiceError::NotFound);
        }
        self.ports.trusted_devices.delete_all(user.id).await?;
        let detail = if counts.confirmed_totp > 0 {
            "totp changed"
        } else {
            "totp"
        };
        self.audit(
            AuditKind::FactorAdded,
            Some(user.id),
            None,
            ctx,
            Some(detail.into()),
        )
        .await;
        self.notify(user, SecurityEventKind::TotpAdded, ctx).await;
        Ok(())
    }

    /// Deletes every factor and trusted device of a user.
    pub(crate) async fn strip_factors(&self, user: UserId) -> ServiceResult<()> {
        self.ports.factors.delete_totp(user).await?;
        self.ports.factors.delete_all_webauthn(user).await?;
        self.ports
            .factors
            .replace_recovery_codes(user, Vec::new(), self.now())
            .await?;
        self.ports.trusted_devices.delete_all(user).await?;
        Ok(())
    }
}

impl FactorService {
    /// What factors `user` has that the policy lets them use.
    pub async fn summary(&self, user: &User) -> ServiceResult<FactorSummary> {
        let c = &self.0;
        let n = c.ports.factors.count_factors(user.id).await?;
        let totp = c.policy.allow_totp(user) && n.confirmed_totp > 0;
        let passkeys = if c.policy.allow_passkeys(user) {
            usize::try_from(n.webauthn).unwrap_or(usize::MAX)
        } else {
            0
        };
        Ok(FactorSummary { totp, passkeys })
    }

    /// Whether `user` has a confirmed factor the policy lets them use.
    pub async fn has_factor(&self, user: &User) -> ServiceResult<bool> {
        self.0.has_factor(user).await
    }

    /// Starts enrolling an authenticator app: a new 32-byte secret, sealed into the
    /// enrolment's token. Nothing is stored until [`confirm_totp`](Self::confirm_totp).
    pub async fn begin_totp(&self, state: &LoginState) -> ServiceResult<TotpEnrolment> {
        let c = &self.0;
        let user = c.enrolling_user(state).await?;
        if !c.policy.allow_totp(&user) {
            return Err(Forbidden::TotpDisabled.into());
        }
        let mut secret = vec![0u8; totp::SECRET_LEN];
        c.ports.random.fill(&mut secret);
        let account = user
            .email
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| user.username.to_string());
        let enrolment = TotpEnrolment {
            token: c.seal_enrolment(user.id, &secret),
            secret: SecretString::new(totp::encode_secret(&secret)),
            otpauth_url: SecretString::new(totp::otpauth_url(
                &c.settings.totp_issuer,
                &account,
                &secret,
                &c.settings.totp,
            )),
        };
        zeroize::Zeroize::zeroize(&mut secret);
        Ok(enrolment)
    }

    /// Confirms an enrolment of a signed-in user with a code (a first factor, or a change
    /// of authenticator app). The confirming code's step is consumed, so it cannot sign
    /// in afterwards. Replaces any earlier device, voids trusted devices and notifies the
    /// owner. A set-up login is finished by
    /// [`LoginService::complete_setup_with_totp`](super::LoginService::complete_setup_with_totp).
    pub async fn confirm_totp(
        &self,
        state: &LoginState,
        token: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let c = &self.0;
        if let LoginState::PendingSecondFactor(_) = state {
            return Err(Forbidden::FinishSigningInFirst.into());
        }
        let user = c.enrolling_user(state).await?;
        c.confirm_totp_enrolment(&user, token, code, false, ctx)
            .await
    }

    /// Removes the authenticator app (needs a session allowed to manage factors).
    pub async fn remove_totp(&self, state: &LoginState, ctx: &RequestContext) -> ServiceResult<()> {
        let c = &self.0;
        let user = c.managing_user(state).await?;
        if c.ports.factors.delete_totp(user.id).await? == 0 {
            return Err(ServiceError::NotFound);
        }
        c.ports.trusted_devices.delete_all(user.id).await?;
        c.audit(
            AuditKind::FactorRemoved,
            Some(user.id),
            None,
            ctx,
            Some("totp".into()),
        )
        .await;
        c.notify(&user, SecurityEventKind::TotpRemoved, ctx).await;
        Ok(())
    }

    /// "Remove 2FA": deletes TOTP, passkeys, recovery codes and trusted devices.
    pub async fn remove_all(&self, state: &LoginState, ctx: &RequestContext) -> ServiceResult<()> {
        let c = &self.0;
        let user = c.managing_user(state).await?;
        c.strip_factors(user.id).await?;
        c.audit(
            AuditKind::FactorRemoved,
            Some(user.id),
            None,
            ctx,
            Some("all".into()),
        )
        .await;
        c.notify(&user, SecurityEventKind::TwoFactorRemoved, ctx)
            .await;
        Ok(())
    }

    /// A new set of recovery codes (shown once; only keyed hashes are stored). Each code
    /// has 120 bits, written as six groups of four base32 characters.
    pub async fn generate_recovery_codes(
        &self,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<Vec<SecretString>> {
        let c = &self.0;
        let user = c.managing_user(state).await?;
        let mut codes = Vec::with_capacity(c.settings.recovery_code_count);
        let mut hashes = Vec::with_capacity(c.settings.recovery_code_count);
        for _ in 0..c.settings.recovery_code_count {
            let mut raw = [0u8; 15];
            c.ports.random.fill(&mut raw);
            let text = BASE32_NOPAD.encode(&raw);
            let grouped = text
                .as_bytes()
                .chunks(4)
                .map(|g| String::from_utf8_lossy(g).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            hashes.push(c.recovery_hash(user.id, &grouped));
            codes.push(SecretString::new(grouped));
        }
        c.ports
            .factors
            .replace_recovery_codes(user.id, hashes, c.now())
            .await?;
        c.audit(
            AuditKind::FactorAdded,
            Some(user.id),
            None,
            ctx,
            Some("recovery codes".into()),
        )
        .await;
        c.notify(&user, SecurityEventKind::RecoveryCodesGenerated, ctx)
            .await;
        Ok(codes)
    }

    /// Unused recovery codes left.
    pub async fn recovery_codes_left(&self, state: &LoginState) -> ServiceResult<u64> {
        let c = &self.0;
        let (user, _) = c.signed_in_user(state).await?;
        Ok(c.ports.factors.count_recovery_codes(user.id).await?)
    }
}
