//! Trusted devices: "trust this browser" after a second factor, the list, removal.

use std::sync::Arc;

use super::Context;
use crate::error::{Forbidden, ServiceError, ServiceResult};
use crate::machine::LoginState;
use crate::model::{
    AuditKind, AuthMethod, ParseError, Problem, RequestContext, SecurityEventKind, TrustedDevice,
};
use crate::secret::SecretString;
use crate::tokens::TrustedDeviceToken;

/// A browser just trusted: the cookie to set and the state to keep.
#[derive(Debug, Clone)]
pub struct TrustedBrowser {
    /// The trusted-device cookie's value.
    pub cookie: SecretString,
    /// The session's state, the offer taken.
    pub state: LoginState,
}

/// Trusted devices.
#[derive(Clone)]
pub struct TrustedDeviceService(pub(crate) Arc<Context>);

impl TrustedDeviceService {
    /// Names and trusts this browser, answering the "trust this device?" offer made right
    /// after a second-factor sign-in: once, and never after a step-up. A browser that
    /// presents a device cookie of this user renews that device (its record is replaced,
    /// so no record is left whose key no browser holds); otherwise the least recently used
    /// device is evicted at the cap. Returns the cookie value to set and the state to keep
    /// (the offer taken).
    pub async fn trust_this_device(
        &self,
        state: &LoginState,
        name: &str,
        presented: Option<&str>,
        ctx: &RequestContext,
    ) -> ServiceResult<TrustedBrowser> {
        let c = &self.0;
        let (user, s) = c.signed_in_user(state).await?;
        if s.method != AuthMethod::TwoFactor || !s.trust_offer {
            return Err(Forbidden::TrustOnlyAfterSecondFactor.into());
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(ParseError::new("name", Problem::Required).into());
        }
        if name.chars().count() > 64 {
            return Err(ParseError::new("name", Problem::TooLong { max: 64 }).into());
        }
        let max = c.policy.max_trusted_devices(&user);
        if !c.policy.allowed_remember(&user) || max == 0 {
            return Err(Forbidden::TrustedDevicesDisabled.into());
        }
        let mut existing = c.ports.trusted_devices.list(user.id).await?;
        let held = presented
            .and_then(TrustedDeviceToken::parse)
            .and_then(|t| existing.iter().position(|d| d.id == t.id()));
        if let Some(i) = held {
            let renewed = existing.remove(i);
            c.ports.trusted_devices.delete(user.id, &renewed.id).await?;
        }
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
            held.map(|_| "renewed".to_owned()),
        )
        .await;
        if held.is_none() {
            c.notify(&user, SecurityEventKind::TrustedDeviceAdded, ctx)
                .await;
        }
        Ok(TrustedBrowser {
            cookie: token.cookie_value(),
            state: state.without_trust_offer(),
        })
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
