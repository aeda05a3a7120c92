//! Sessions in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use modal2fa_core::model::{Page, SessionRecord, UserId};
use modal2fa_core::ports::{ConflictKind, PortError, PortResult, SessionStore};
use time::OffsetDateTime;

use super::page;

/// Sessions in memory.
#[derive(Debug, Default)]
pub struct MemorySessions(Mutex<HashMap<String, SessionRecord>>);

impl MemorySessions {
    /// Sessions with a signed-in user, expired or not.
    pub fn list_active_count(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.user_id.is_some())
            .count()
    }

    /// How many sessions are stored, signed in or not.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a row is stored under exactly this key.
    pub fn has_hash(&self, key: &str) -> bool {
        self.0.lock().unwrap().contains_key(key)
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn load(&self, id_hash: &str) -> PortResult<Option<SessionRecord>> {
        Ok(self.0.lock().unwrap().get(id_hash).cloned())
    }
    async fn save(&self, record: &SessionRecord) -> PortResult<()> {
        let mut g = self.0.lock().unwrap();
        if g.contains_key(&record.id_hash) {
            return Err(PortError::Conflict(ConflictKind::Session));
        }
        g.insert(record.id_hash.clone(), record.clone());
        Ok(())
    }
    async fn renew(&self, old_hash: &str, record: &SessionRecord) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        if g.remove(old_hash).is_none() {
            return Ok(false);
        }
        g.insert(record.id_hash.clone(), record.clone());
        Ok(true)
    }
    async fn replace(&self, record: &SessionRecord) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        match g.get_mut(&record.id_hash) {
            Some(stored) => {
                *stored = record.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn touch(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
        idle_expiry: OffsetDateTime,
        absolute_timeout: time::Duration,
    ) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        match g.get_mut(id_hash) {
            Some(r) => {
                r.last_seen_at = now;
                r.expires_at = idle_expiry.min(r.created_at + absolute_timeout);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete(&self, id_hash: &str) -> PortResult<bool> {
        Ok(self.0.lock().unwrap().remove(id_hash).is_some())
    }
    async fn list_active(&self, now: OffsetDateTime, p: Page) -> PortResult<Vec<SessionRecord>> {
        let mut all: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.user_id.is_some() && s.expires_at > now)
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(a.id_hash.cmp(&b.id_hash))
        });
        Ok(page(&all, p))
    }
    async fn delete_for_user(&self, user: UserId) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|_, s| s.user_id != Some(user));
        Ok((before - g.len()) as u64)
    }
    async fn delete_for_passkey(&self, user: UserId, passkey: i64) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|_, s| s.user_id != Some(user) || s.passkey_id != Some(passkey));
        Ok((before - g.len()) as u64)
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|_, s| s.expires_at > now);
        Ok((before - g.len()) as u64)
    }
}
