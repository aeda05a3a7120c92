//! Deterministic randomness for unit tests.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ports::SecretGenerator;

/// Bytes from a counter-seeded xorshift: deterministic, different on every call.
pub struct SequenceRandom(AtomicU64);

impl SequenceRandom {
    pub fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed.max(1)))
    }
}

impl SecretGenerator for SequenceRandom {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            let mut x = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
    }
}
