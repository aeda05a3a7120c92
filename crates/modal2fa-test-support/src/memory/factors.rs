//! TOTP devices, WebAuthn credentials and recovery codes in memory.

use std::sync::Mutex;

use async_trait::async_trait;
use modal2fa_core::model::{
    FactorCounts, NewWebAuthnCredential, TotpDevice, UserId, WebAuthnCredential,
};
use modal2fa_core::ports::{ConflictKind, FactorStore, PortError, PortResult};
use time::OffsetDateTime;

#[derive(Debug, Default)]
struct FactorData {
    next_id: i64,
    totp: Vec<TotpDevice>,
    webauthn: Vec<WebAuthnCredential>,
    recovery: Vec<(UserId, Vec<u8>)>,
}

/// Factors in memory.
#[derive(Debug, Default)]
pub struct MemoryFactors(Mutex<FactorData>);

#[async_trait]
impl FactorStore for MemoryFactors {
    async fn totp_devices(&self, user: UserId) -> PortResult<Vec<TotpDevice>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .totp
            .iter()
            .filter(|d| d.user_id == user)
            .cloned()
            .collect())
    }
    async fn add_totp(
        &self,
        user: UserId,
        encrypted_secret: Vec<u8>,
        at: OffsetDateTime,
    ) -> PortResult<TotpDevice> {
        let mut g = self.0.lock().unwrap();
        g.next_id += 1;
        let d = TotpDevice {
            id: g.next_id,
            user_id: user,
            encrypted_secret,
            confirmed: false,
            last_used_step: None,
            created_at: at,
        };
        g.totp.push(d.clone());
        Ok(d)
    }
    async fn confirm_totp(&self, device: i64, step: i64) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let Some(d) = g.totp.iter_mut().find(|d| d.id == device && !d.confirmed) else {
            return Ok(false);
        };
        d.confirmed = true;
        d.last_used_step = Some(step);
        let user = d.user_id;
        g.totp.retain(|d| d.user_id != user || d.id == device);
        Ok(true)
    }
    async fn advance_totp_step(&self, device: i64, step: i64) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        match g.totp.iter_mut().find(|d| d.id == device) {
            Some(d) if d.last_used_step.is_none_or(|s| s < step) => {
                d.last_used_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn delete_totp(&self, user: UserId) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.totp.len();
        g.totp.retain(|d| d.user_id != user);
        Ok((before - g.totp.len()) as u64)
    }
    async fn purge_unconfirmed_totp(&self, before: OffsetDateTime) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let n = g.totp.len();
        g.totp.retain(|d| d.confirmed || d.created_at >= before);
        Ok((n - g.totp.len()) as u64)
    }
    async fn webauthn_credentials(&self, user: UserId) -> PortResult<Vec<WebAuthnCredential>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .webauthn
            .iter()
            .filter(|c| c.user_id == user)
            .cloned()
            .collect())
    }
    async fn find_webauthn(&self, credential_id: &[u8]) -> PortResult<Option<WebAuthnCredential>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .webauthn
            .iter()
            .find(|c| c.credential_id == credential_id)
            .cloned())
    }
    async fn add_webauthn(&self, c: NewWebAuthnCredential) -> PortResult<WebAuthnCredential> {
        let mut g = self.0.lock().unwrap();
        if g.webauthn
            .iter()
            .any(|x| x.credential_id == c.credential_id)
        {
            return Err(PortError::Conflict(ConflictKind::WebAuthnCredential));
        }
        g.next_id += 1;
        let stored = WebAuthnCredential {
            id: g.next_id,
            user_id: c.user_id,
            name: c.name,
            credential_id: c.credential_id,
            credential: c.credential,
            sign_count: c.sign_count,
            transports: c.transports,
            backup_eligible: c.backup_eligible,
            backup_state: c.backup_state,
            created_at: c.created_at,
            last_used_at: None,
        };
        g.webauthn.push(stored.clone());
        Ok(stored)
    }
    async fn update_webauthn_use(
        &self,
        id: i64,
        sign_count: u32,
        backup_state: bool,
        credential: String,
        at: OffsetDateTime,
    ) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let Some(c) = g.webauthn.iter_mut().find(|c| c.id == id) else {
            return Ok(false);
        };
        c.sign_count = sign_count;
        c.backup_state = backup_state;
        c.credential = credential;
        c.last_used_at = Some(at);
        Ok(true)
    }
    async fn rename_webauthn(&self, user: UserId, id: i64, name: &str) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        match g
            .webauthn
            .iter_mut()
            .find(|c| c.id == id && c.user_id == user)
        {
            Some(c) => {
                c.name = name.to_owned();
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete_webauthn(&self, user: UserId, id: i64) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let before = g.webauthn.len();
        g.webauthn.retain(|c| !(c.id == id && c.user_id == user));
        Ok(before != g.webauthn.len())
    }
    async fn delete_all_webauthn(&self, user: UserId) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.webauthn.len();
        g.webauthn.retain(|c| c.user_id != user);
        Ok((before - g.webauthn.len()) as u64)
    }
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: Vec<Vec<u8>>,
        _at: OffsetDateTime,
    ) -> PortResult<()> {
        let mut g = self.0.lock().unwrap();
        g.recovery.retain(|(u, _)| *u != user);
        g.recovery.extend(hashes.into_iter().map(|h| (user, h)));
        Ok(())
    }
    async fn consume_recovery_code(&self, user: UserId, hash: &[u8]) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let before = g.recovery.len();
        let mut removed = false;
        g.recovery.retain(|(u, h)| {
            if !removed && *u == user && h == hash {
                removed = true;
                false
            } else {
                true
            }
        });
        Ok(before != g.recovery.len())
    }
    async fn count_factors(&self, user: UserId) -> PortResult<FactorCounts> {
        let g = self.0.lock().unwrap();
        Ok(FactorCounts {
            confirmed_totp: g
                .totp
                .iter()
                .filter(|d| d.user_id == user && d.confirmed)
                .count() as u64,
            webauthn: g.webauthn.iter().filter(|c| c.user_id == user).count() as u64,
        })
    }
    async fn count_recovery_codes(&self, user: UserId) -> PortResult<u64> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .recovery
            .iter()
            .filter(|(u, _)| *u == user)
            .count() as u64)
    }
}
