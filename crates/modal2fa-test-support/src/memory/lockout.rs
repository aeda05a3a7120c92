//! Lockout counters in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use modal2fa_core::lockout::{self, LockoutEntry, LockoutKey, LockoutRule};
use modal2fa_core::model::Page;
use modal2fa_core::ports::{LockoutStore, PortResult};
use time::OffsetDateTime;

use super::page;

/// Lockout counters in memory.
#[derive(Debug, Default)]
pub struct MemoryLockout(
    Mutex<HashMap<LockoutKey, LockoutEntry>>,
    Mutex<HashMap<(String, String), OffsetDateTime>>,
);

#[async_trait]
impl LockoutStore for MemoryLockout {
    async fn get(&self, key: &LockoutKey) -> PortResult<Option<LockoutEntry>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn get_many(&self, keys: &[&LockoutKey]) -> PortResult<Vec<LockoutEntry>> {
        let g = self.0.lock().unwrap();
        Ok(keys.iter().filter_map(|k| g.get(*k).cloned()).collect())
    }
    /// Under the mutex the stored entry is always the one `seen` should be; applying the
    /// failure to it is the compare-and-set that never loses.
    async fn record_failure(
        &self,
        key: &LockoutKey,
        _seen: Option<&LockoutEntry>,
        now: OffsetDateTime,
        rule: LockoutRule,
    ) -> PortResult<LockoutEntry> {
        let mut g = self.0.lock().unwrap();
        let previous = g.get(key).cloned();
        let mut next = lockout::apply_failure(previous.as_ref(), key, now, rule);
        next.revision = previous.map_or(1, |p| p.revision + 1);
        g.insert(key.clone(), next.clone());
        Ok(next)
    }
    async fn settle(
        &self,
        key: &LockoutKey,
        reserved: &LockoutEntry,
        before: Option<&LockoutEntry>,
    ) -> PortResult<()> {
        let mut g = self.0.lock().unwrap();
        let Some(current) = g.get(key).cloned() else {
            return Ok(());
        };
        // Restore `before` only when the reservation was written right on top of it (no
        // retry) and nobody wrote since; otherwise take back one failure.
        let direct = before.map_or(1, |b| b.revision + 1) == reserved.revision;
        if direct && current.revision == reserved.revision {
            match before {
                None => {
                    g.remove(key);
                }
                Some(b) => {
                    let mut restored = b.clone();
                    restored.revision = current.revision + 1;
                    g.insert(key.clone(), restored);
                }
            }
        } else {
            let mut one_less = current;
            one_less.failures = one_less.failures.saturating_sub(1);
            one_less.revision += 1;
            g.insert(key.clone(), one_less);
        }
        Ok(())
    }
    async fn clear(&self, key: &LockoutKey) -> PortResult<bool> {
        Ok(self.0.lock().unwrap().remove(key).is_some())
    }
    async fn list(&self, p: Page) -> PortResult<Vec<LockoutEntry>> {
        let mut all: Vec<_> = self.0.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| {
            b.last_failure_at
                .cmp(&a.last_failure_at)
                .then(a.key.cmp(&b.key))
        });
        Ok(page(&all, p))
    }
    async fn purge_expired(&self, cutoff: OffsetDateTime) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|_, e| e.locked_until.is_some_and(|u| u >= cutoff) || e.last_failure_at >= cutoff);
        Ok((before - g.len()) as u64)
    }
    async fn remember_client(
        &self,
        account: &str,
        bucket: &str,
        at: OffsetDateTime,
    ) -> PortResult<()> {
        let mut g = self.1.lock().unwrap();
        let last = g
            .entry((account.to_owned(), bucket.to_owned()))
            .or_insert(at);
        *last = (*last).max(at);
        Ok(())
    }
    async fn knows_client(
        &self,
        account: &str,
        bucket: &str,
        since: OffsetDateTime,
    ) -> PortResult<bool> {
        let g = self.1.lock().unwrap();
        Ok(g.get(&(account.to_owned(), bucket.to_owned()))
            .is_some_and(|last| *last > since))
    }
    async fn forget_clients(&self, before: OffsetDateTime) -> PortResult<u64> {
        let mut g = self.1.lock().unwrap();
        let n = g.len();
        g.retain(|_, last| *last >= before);
        Ok((n - g.len()) as u64)
    }
}
