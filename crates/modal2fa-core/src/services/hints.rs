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
