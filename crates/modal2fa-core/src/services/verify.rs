//! Checking a factor during sign-in: TOTP codes, recovery codes, trusted-device cookies,
//! and whether a user has a factor at all. Shared by the sign-in flow and by factor
//! management, so neither has to construct the other.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Context;
use super::report::CookieUpdate;
use crate::error::ServiceResult;
use crate::machine::{FactorVerdict, TrustedDeviceVerdict};
use crate::model::{
    AuditKind, FactorCounts, FactorKind, RequestContext, TotpCode, TrustedDevice, User, UserId,
};
use crate::ports::Rotation;
use crate::secret::SecretString;
use crate::tokens::{TrustedDeviceToken, TrustedTokenMatch};
use crate::totp;
use time::OffsetDateTime;

impl Context {
    /// Whether the user has a confirmed factor the policy lets them use.
    pub(crate) async fn has_factor(&self, user: &User) -> ServiceResult<bool> {
        Ok(self.factors_of(user).await?.0)
    }

    /// Whether the user has a confirmed factor the policy lets them use, and whether one
    /// of them is a passkey (one round trip).
    pub(crate) async fn factors_of(&self, user: &User) -> ServiceResult<(bool, bool)> {
        let (totp, passkeys) = (
            self.policy.allow_totp(user),
            self.policy.allow_passkeys(user),
        );
        if !totp && !passkeys {
            return Ok((false, false));
        }
        let n = self.ports.factors.count_factors(user.id).await?;
        Ok((self.counts_as_factor(user, &n), passkeys && n.webauthn > 0))
    }

    /// Whether stored factor counts give `user` a factor the policy lets them use.
    pub(crate) fn counts_as_factor(&self, user: &User, n: &FactorCounts) -> bool {
        (self.policy.allow_totp(user) && n.confirmed_totp > 0)
            || (self.policy.allow_passkeys(user) && n.webauthn > 0)
    }

    /// Verifies a code against the user's confirmed device, consuming its step.
    pub(crate) async fn verify_totp(
        &self,
        user: &User,
        code: &TotpCode,
    ) -> ServiceResult<FactorVerdict> {
        if !self.policy.allow_totp(user) {
            return Ok(FactorVerdict::Rejected);
        }
        let now = self.now();
        for device in self
            .ports
            .factors
            .totp_devices(user.id)
            .await?
            .into_iter()
            .filter(|d| d.confirmed)
        {
            let secret = match self.secret_box.open(user.id, &device.encrypted_secret) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(user = %user.id, device = device.id, error = %e, "a TOTP secret does not decrypt");
                    continue;
                }
            };
            if let Some(step) = totp::matching_step(secret.expose(), &self.settings.totp, code, now)
            {
                return Ok(
                    if self
                        .ports
                        .factors
                        .advance_totp_step(device.id, step)
                        .await?
                    {
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
    pub(crate) fn recovery_hash(&self, user: UserId, code: &str) -> Vec<u8> {
        let normal: String = code
            .chars()
            .filter(|ch| ch.is_ascii_alphanumeric())
            .map(|ch| ch.to_ascii_uppercase())
            .collect();
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.recovery_key).expect("any key length");
        mac.update(format!("{user}:{normal}").as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `value` is the current cookie of a live trusted device of `user` (read
    /// only: nothing rotates; the sign-in that follows checks it again).
    pub(crate) async fn holds_live_device(
        &self,
        user: &User,
        value: &SecretString,
    ) -> ServiceResult<bool> {
        let Some(token) = TrustedDeviceToken::parse(value.expose()) else {
            return Ok(false);
        };
        let Some(device) = self.ports.trusted_devices.find(token.id()).await? else {
            return Ok(false);
        };
        Ok(device.user_id == user.id
            && !self.device_expired(&device, self.now())
            && token.matches(&device) == TrustedTokenMatch::Current)
    }

    /// Whether a trusted device is past its sliding or its absolute lifetime at `now`.
    fn device_expired(&self, device: &TrustedDevice, now: OffsetDateTime) -> bool {
        now - device.last_used_at > self.settings.trusted_device_lifetime
            || now - device.created_at > self.settings.trusted_device_max_age
    }

    /// Checks a trusted-device cookie for `user`, rotating its key on success and
    /// revoking the device when a superseded key is presented.
    pub(crate) async fn check_trusted_device(
        &self,
        user: &User,
        value: &SecretString,
        ctx: &RequestContext,
    ) -> ServiceResult<(TrustedDeviceVerdict, CookieUpdate)> {
        let Some(token) = TrustedDeviceToken::parse(value.expose()) else {
            return Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear));
        };
        // The common case: the current key of this user's live device, rotated in one
        // statement. Only when that fails is the device read, to say why.
        let now = self.now();
        let next = token.rotated(self.ports.random.as_ref());
        let presented = token.key_hash();
        let rotated = self
            .ports
            .trusted_devices
            .rotate(Rotation {
                id: token.id(),
                user: user.id,
                expected_hash: &presented,
                new_hash: next.key_hash(),
                used_after: now - self.settings.trusted_device_lifetime,
                created_after: now - self.settings.trusted_device_max_age,
                at: now,
                ip: Some(ctx.ip),
                user_agent: &ctx.user_agent,
            })
            .await?;
        if rotated {
            return Ok((
                TrustedDeviceVerdict::Accepted,
                CookieUpdate::Set(next.cookie_value()),
            ));
        }
        let Some(device) = self.ports.trusted_devices.find(token.id()).await? else {
            return Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear));
        };
        if device.user_id != user.id {
            // Another account's device on a shared browser: leave its cookie alone.
            return Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Keep));
        }
        if self.device_expired(&device, now) {
            self.ports
                .trusted_devices
                .delete(user.id, &device.id)
                .await?;
            return Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear));
        }
        match token.matches(&device) {
            // Current now but not when rotating: another request rotated it in between.
            TrustedTokenMatch::Current => Ok((TrustedDeviceVerdict::Rejected, CookieUpdate::Clear)),
            // Any other key of this user's device — the one replaced last or one generations
            // older — means the cookie was copied: a thief who signed in twice pushes the
            // owner's copy two generations back. The device goes, with every session of the
            // user (those it opened among them), and the owner is told by the machine.
            TrustedTokenMatch::Superseded | TrustedTokenMatch::Unknown => {
                self.ports
                    .trusted_devices
                    .delete(user.id, &device.id)
                    .await?;
                let ended = self.ports.sessions.delete_for_user(user.id).await?;
                self.audit(
                    AuditKind::TrustedDeviceRemoved,
                    Some(user.id),
                    None,
                    ctx,
                    Some(format!("copied cookie; {ended} session(s) ended")),
                )
                .await;
                Ok((TrustedDeviceVerdict::Superseded, CookieUpdate::Clear))
            }
        }
    }
}
