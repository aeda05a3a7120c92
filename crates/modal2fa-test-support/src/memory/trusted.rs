//! Trusted devices in memory.

use std::sync::Mutex;

use async_trait::async_trait;
use modal2fa_core::model::{TrustedDevice, UserId};
use modal2fa_core::ports::{ConflictKind, PortError, PortResult, Rotation, TrustedDeviceStore};

/// Trusted devices in memory.
#[derive(Debug, Default)]
pub struct MemoryTrustedDevices(Mutex<Vec<TrustedDevice>>);

#[async_trait]
impl TrustedDeviceStore for MemoryTrustedDevices {
    async fn list(&self, user: UserId) -> PortResult<Vec<TrustedDevice>> {
        let mut v: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.user_id == user)
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            b.last_used_at
                .cmp(&a.last_used_at)
                .then(b.created_at.cmp(&a.created_at))
        });
        Ok(v)
    }
    async fn find(&self, id: &str) -> PortResult<Option<TrustedDevice>> {
        Ok(self.0.lock().unwrap().iter().find(|d| d.id == id).cloned())
    }
    async fn insert(&self, device: TrustedDevice) -> PortResult<()> {
        let mut g = self.0.lock().unwrap();
        if g.iter().any(|d| d.id == device.id) {
            return Err(PortError::Conflict(ConflictKind::TrustedDevice));
        }
        g.push(device);
        Ok(())
    }
    async fn rotate(&self, r: Rotation<'_>) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        match g.iter_mut().find(|d| {
            d.id == r.id
                && d.user_id == r.user
                && d.last_used_at > r.used_after
                && d.created_at > r.created_after
                && d.key_hash == r.expected_hash
        }) {
            Some(d) => {
                d.previous_key_hash = Some(std::mem::replace(&mut d.key_hash, r.new_hash));
                d.last_used_at = r.at;
                d.last_ip = r.ip;
                d.user_agent = r.user_agent.to_owned();
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete(&self, user: UserId, id: &str) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|d| !(d.id == id && d.user_id == user));
        Ok(before != g.len())
    }
    async fn delete_all(&self, user: UserId) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|d| d.user_id != user);
        Ok((before - g.len()) as u64)
    }
}
