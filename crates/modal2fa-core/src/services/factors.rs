//! Second factors: TOTP enrolment, change and removal; recovery codes; trusted devices.

use std::sync::Arc;

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::login::{CookieUpdate, LoginReport};
use super::{Context, LoginService};
use crate::error::{ServiceError, ServiceResult};
use crate::machine::{FactorVerdict, LoginState, TrustedDeviceVerdict};
use crate::model::{
    AuditKind, FactorKind, ParseError, RequestContext, SecurityEventKind, TotpCode, TrustedDevice,
    User, UserId,
};
use crate::secret::SecretString;
use crate::tokens::{TrustedDeviceToken, TrustedTokenMatch};
use crate::totp;

/// A TOTP enrolment waiting for its confirming code.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// The unconfirmed device.
    pub device_id: i64,
    /// Base32 secret for manual entry.
    pub secret: SecretString,
    /// `otpauth://` URL for the QR code.
    pub otpauth_url: SecretString,
}

/// TOTP and recovery codes.
#[derive(Clone)]
pub struct FactorService(pub(crate) Arc<Context>);

/// Trusted devices.
#[derive(Clone)]
pub struct TrustedDeviceService(pub(crate) Arc<Context>);

/// Verifies a code against the user's confirmed device, consuming its step.
pub(crate) async fn verify_totp(
    c: &Context,
    user: &User,
    code: &TotpCode,
) -> ServiceResult<FactorVerdict> {
    if !c.policy.allow_totp(user) {
        return Ok(FactorVerdict::Rejected);
    }
    let now = c.now();
    for device in c
        .ports
        .factors
        .totp_devices(user.id)
        .await?
        .into_iter()
        .filter(|d| d.confirmed)
    {
        let secret = match c.secret_box.open(user.id, &device.encrypted_secret) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(user = %user.id, device = device.id, error = %e, "a TOTP secret does not decrypt");
                continue;
            }
        };
        if let Some(step) = totp::matching_step(secret.expose(), &c.settings.totp, code, now) {
            return Ok(
                if c.ports.factors.advance_totp_step(device.id, step).await? {
                    FactorVerdict::Accepted(FactorKind::Totp)
                } else {
                    FactorVerdict::Replayed
                },
            );
        }
    }
    Ok(FactorVerdict::Rejected)
}

/// Keyed SHA-256 of a normalised recovery code, bound to the user.
pub(crate) fn recovery_hash(c: &Context, user: UserId, code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric())
        .map(|ch| ch.to_ascii_uppercase())
        .collect();
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&c.recovery_key).expect("any key length");
    mac.update(format!("{user}:{normal}").as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Checks a trusted-device cookie for `user`, rotating its key on success and revoking the
/// device when a superseded key is presented.
pub(crate) async fn check_trusted_device(
    c: &Context,
    user: &User,
    value: &SecretString,
    ctx: &RequestContext,
) -> ServiceResult<(TrustedDeviceVerdict, CookieUpdate)> {
    let Some(token) = TrustedDeviceToken::parse(value.expose()) else {
        return Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear));
    };
    let Some(device) = c.ports.trusted_devices.find(token.id()).await? else {
        return Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear));
    };
    if device.user_id != user.id {
        // Another account's device on a shared browser: leave its cookie alone.
        return Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Keep));
    }
    let now = c.now();
    if now - device.last_used_at > c.settings.trusted_device_lifetime {
        c.ports.trusted_devices.delete(user.id, &device.id).await?;
        return Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear));
    }
    match token.matches(&device) {
        TrustedTokenMatch::Current => {
            let next = token.rotated(c.ports.random.as_ref());
            let rotated = c
                .ports
                .trusted_devices
                .rotate(
                    &device.id,
                    &device.key_hash,
                    next.key_hash(),
                    now,
                    Some(ctx.ip),
                    &ctx.user_agent,
                )
                .await?;
            if rotated {
                Ok((
                    TrustedDeviceVerdict::Accepted,
                    CookieUpdate::Set(next.cookie_value()),
                ))
            } else {
                // Another request rotated it first: this value is now superseded.
                Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear))
            }
        }
        TrustedTokenMatch::Superseded => {
            c.ports.trusted_devices.delete(user.id, &device.id).await?;
            c.audit(
                AuditKind::TrustedDeviceRemoved,
                Some(user.id),
                None,
                ctx,
                Some("superseded cookie".into()),
            )
            .await;
            Ok((TrustedDeviceVerdict::Superseded, CookieUpdate::Clear))
        }
        TrustedTokenMatch::Unknown => Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear)),
    }
}

impl FactorService {
    /// The user whose factors a state may change: a pending setup login, or a signed-in
    /// session adding a first factor, or one allowed to manage factors.
    async fn enrolling_user(&self, state: &LoginState) -> ServiceResult<User> {
        let c = &self.0;
        match state {
            LoginState::PendingSecondFactor(p) if p.setup_required => {
                if c.now() - p.since > c.settings.machine.pending_ttl {
                    return Err(ServiceError::Expired);
                }
                c.ports
                    .users
                    .find_by_id(p.user_id)
                    .await?
                    .filter(|u| u.is_active)
                    .ok_or(ServiceError::NotSignedIn)
            }
            LoginState::PendingSecondFactor(_) => {
                Err(ServiceError::NotAllowed("finish signing in first"))
            }
            _ => {
                let (user, _) = c.signed_in_user(state).await?;
                let login = LoginService(self.0.clone());
                if !login.has_factor(&user).await? {
                    return Ok(user);
                }
                c.managing_user(state).await
            }
        }
    }

    /// Starts enrolling an authenticator app: a new 32-byte secret, stored encrypted and
    /// unconfirmed. It counts as a factor only once confirmed.
    pub async fn begin_totp(&self, state: &LoginState) -> ServiceResult<TotpEnrolment> {
        let c = &self.0;
        let user = self.enrolling_user(state).await?;
        if !c.policy.allow_totp(&user) {
            return Err(ServiceError::NotAllowed(
                "authenticator apps are not enabled for this account",
            ));
        }
        let mut secret = vec![0u8; totp::SECRET_LEN];
        c.ports.random.fill(&mut secret);
        let sealed = c.secret_box.seal(user.id, &secret, c.ports.random.as_ref());
        let device = c.ports.factors.add_totp(user.id, sealed, c.now()).await?;
        let account = user
            .email
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| user.username.to_string());
        let enrolment = TotpEnrolment {
            device_id: device.id,
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

    /// Confirms an enrolment with a code. The confirming code's step is consumed, so it
    /// cannot sign in afterwards. Replaces any earlier device, voids trusted devices and
    /// notifies the owner. During a pending setup login, completes the login (the report).
    pub async fn confirm_totp(
        &self,
        state: &LoginState,
        device_id: i64,
        code: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<Option<LoginReport>> {
        let c = &self.0;
        let code = TotpCode::parse(code)?;
        let user = self.enrolling_user(state).await?;
        let devices = c.ports.factors.totp_devices(user.id).await?;
        let had_confirmed = devices.iter().any(|d| d.confirmed);
        let device = devices
            .into_iter()
            .find(|d| d.id == device_id && !d.confirmed)
            .ok_or(ServiceError::NotFound)?;
        let secret = c
            .secret_box
            .open(user.id, &device.encrypted_secret)
            .map_err(|e| ServiceError::Unexpected(Box::new(e)))?;
        let step = totp::matching_step(secret.expose(), &c.settings.totp, &code, c.now())
            .ok_or(ServiceError::InvalidCode)?;
        if !c.ports.factors.confirm_totp(device.id, step).await? {
            return Err(ServiceError::NotFound);
        }
        c.ports.trusted_devices.delete_all(user.id).await?;
        c.audit(
            AuditKind::FactorAdded,
            Some(user.id),
            None,
            ctx,
            Some(
                if had_confirmed {
                    "totp changed"
                } else {
                    "totp"
                }
                .into(),
            ),
        )
        .await;
        c.notify(&user, SecurityEventKind::TotpAdded, ctx).await;
        match state {
            LoginState::PendingSecondFactor(_) => Ok(Some(
                LoginService(self.0.clone())
                    .enrolled(state, FactorKind::Totp, ctx)
                    .await?,
            )),
            _ => Ok(None),
        }
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
        strip_factors(c, user.id).await?;
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
            hashes.push(recovery_hash(c, user.id, &grouped));
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
        Ok(codes)
    }

    /// Unused recovery codes left.
    pub async fn recovery_codes_left(&self, state: &LoginState) -> ServiceResult<u64> {
        let c = &self.0;
        let (user, _) = c.signed_in_user(state).await?;
        Ok(c.ports.factors.count_recovery_codes(user.id).await?)
    }
}

/// Deletes every factor and trusted device of a user.
pub(crate) async fn strip_factors(c: &Context, user: UserId) -> ServiceResult<()> {
    c.ports.factors.delete_totp(user).await?;
    c.ports.factors.delete_all_webauthn(user).await?;
    c.ports
        .factors
        .replace_recovery_codes(user, Vec::new(), c.now())
        .await?;
    c.ports.trusted_devices.delete_all(user).await?;
    Ok(())
}

impl TrustedDeviceService {
    /// Step 11: names and trusts this browser after a 2FA sign-in. Evicts the least
    /// recently used device when the cap is reached. Returns the cookie value to set.
    pub async fn trust_this_device(
        &self,
        state: &LoginState,
        name: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<SecretString> {
        let c = &self.0;
        let (user, s) = c.signed_in_user(state).await?;
        if s.method != crate::model::AuthMethod::TwoFactor || matches!(state, LoginState::StepUp(_))
        {
            return Err(ServiceError::NotAllowed(
                "a device can be trusted only right after a second factor",
            ));
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(ParseError::new("name", "is required").into());
        }
        if name.chars().count() > 64 {
            return Err(ParseError::new("name", "is longer than 64 characters").into());
        }
        let max = c.policy.max_trusted_devices(&user);
        if !c.policy.allowed_remember(&user) || max == 0 {
            return Err(ServiceError::NotAllowed(
                "trusted devices are disabled for this account",
            ));
        }
        let mut existing = c.ports.trusted_devices.list(user.id).await?;
        while existing.len() >= max {
            let oldest = existing.pop().expect("non-empty");
            c.ports.trusted_devices.delete(user.id, &oldest.id).await?;
        }
        let token = TrustedDeviceToken::generate(c.ports.random.as_ref());
        let now = c.now();
        c.ports
            .trusted_devices
            .insert(TrustedDevice {
                id: token.id().to_owned(),
                user_id: user.id,
                name: name.to_owned(),
                key_hash: token.key_hash(),
                previous_key_hash: None,
                created_at: now,
                last_used_at: now,
                last_ip: Some(ctx.ip),
                user_agent: ctx.user_agent.clone(),
            })
            .await?;
        c.audit(
            AuditKind::TrustedDeviceAdded,
            Some(user.id),
            None,
            ctx,
            None,
        )
        .await;
        c.notify(&user, SecurityEventKind::TrustedDeviceAdded, ctx)
            .await;
        Ok(token.cookie_value())
    }

    /// The signed-in user's trusted devices, most recently used first.
    pub async fn list(&self, state: &LoginState) -> ServiceResult<Vec<TrustedDevice>> {
        let c = &self.0;
        let (user, _) = c.signed_in_user(state).await?;
        Ok(c.ports.trusted_devices.list(user.id).await?)
    }

    /// Removes one of the user's devices (needs a session allowed to manage factors).
    pub async fn remove(
        &self,
        state: &LoginState,
        id: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let c = &self.0;
        let user = c.managing_user(state).await?;
        if !c.ports.trusted_devices.delete(user.id, id).await? {
            return Err(ServiceError::NotFound);
        }
        c.audit(
            AuditKind::TrustedDeviceRemoved,
            Some(user.id),
            None,
            ctx,
            None,
        )
        .await;
        c.notify(&user, SecurityEventKind::TrustedDeviceRemoved, ctx)
            .await;
        Ok(())
    }
}
