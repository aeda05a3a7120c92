//! The real clock and the operating system's CSPRNG: the only places core reads either.

use time::OffsetDateTime;

use crate::ports::{Clock, SecretGenerator};

/// The system clock, in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place the core reads the system clock"
    )]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl SecretGenerator for OsRandom {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place the core reads the OS random source"
    )]
    fn fill(&self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system's random source failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_random_source_fills_buffers_differently() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        OsRandom.fill(&mut a);
        OsRandom.fill(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn the_system_clock_is_in_utc() {
        assert!(SystemClock.now().offset().is_utc());
    }
}
