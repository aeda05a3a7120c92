//! Which lockout keys this process has recently seen with a counter: a hint that only
//! chooses the cheaper way to count an attempt, never what is counted. A key with a
//! counter is read first (a locked key is then refused without being counted); a key
//! without one is counted straight away by an insert, saving the read on the path every
//! legitimate sign-in takes. A wrong hint costs a round trip, nothing else: the store's
//! compare-and-set counts exactly either way, and other processes' counters are found
//! when the insert meets them.

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use crate::lockout::LockoutKey;

/// Slots in the hint table (a direct-mapped set of key fingerprints; collisions and
/// evictions only make the hint wrong, which is allowed).
const SLOTS: usize = 4096;

/// Keys recently seen with a counter.
pub(crate) struct CounterHints(Mutex<Vec<u64>>);

impl Default for CounterHints {
    fn default() -> Self {
        Self(Mutex::new(vec![0; SLOTS]))
    }
}

fn fingerprint(key: &LockoutKey) -> (usize, u64) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let f = h.finish() | 1; // never 0, the empty slot
    ((f as usize) % SLOTS, f)
}

impl CounterHints {
    /// Whether `key` may have a counter (then read it before counting).
    pub fn may_exist(&self, key: &LockoutKey) -> bool {
        let (slot, f) = fingerprint(key);
        self.0.lock().is_ok_and(|s| s[slot] == f)
    }

    /// `key` has a counter now.
    pub fn exists(&self, key: &LockoutKey) {
        self.set(key, true);
    }

    /// `key`'s counter is gone (cleared, or settled back to nothing).
    pub fn gone(&self, key: &LockoutKey) {
        self.set(key, false);
    }

    fn set(&self, key: &LockoutKey, present: bool) {
        let (slot, f) = fingerprint(key);
        if let Ok(mut s) = self.0.lock() {
            if present {
                s[slot] = f;
            } else if s[slot] == f {
                s[slot] = 0;
            }
        }
    }
}

/// How long a recorded successful sign-in from an address is not written again.
const CLIENT_REFRESH: time::Duration = time::Duration::hours(1);

/// Pairs remembered at most; the table starts afresh beyond (it only saves writes).
const CLIENT_CAP: usize = 10_000;

/// The (account, address bucket) pairs this process recorded a successful sign-in for
/// lately: a sign-in from a pair recorded within the last hour writes nothing, so the
/// everyday sign-in costs no statement for it (the stored time is then at most an hour
/// old, against a memory of `known_client_days`).
#[derive(Default)]
pub(crate) struct RecentClients(
    Mutex<std::collections::HashMap<(String, String), time::OffsetDateTime>>,
);

impl RecentClients {
    /// Whether the pair's success at `now` should be written.
    pub fn stale(&self, account: &str, bucket: &str, now: time::OffsetDateTime) -> bool {
        self.0.lock().map_or(true, |g| {
            g.get(&(account.to_owned(), bucket.to_owned()))
                .is_none_or(|at| now - *at >= CLIENT_REFRESH)
        })
    }

    /// The pair's success at `now` was written.
    pub fn written(&self, account: &str, bucket: &str, now: time::OffsetDateTime) {
        if let Ok(mut g) = self.0.lock() {
            if g.len() >= CLIENT_CAP {
                g.clear();
            }
            g.insert((account.to_owned(), bucket.to_owned()), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_hinted_from_its_first_counter_until_it_is_gone() {
        let h = CounterHints::default();
        let k = LockoutKey::User("alice".into());
        assert!(!h.may_exist(&k));
        h.exists(&k);
        assert!(h.may_exist(&k));
        assert!(!h.may_exist(&LockoutKey::User("bob".into())));
        h.gone(&k);
        assert!(!h.may_exist(&k));
    }
}
