//! The real clock and the operating system's CSPRNG (the only places core reads either),
//! and the notifier that only logs.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ports::{Clock, Notification, Notifier, PortResult, SecretGenerator};

/// A [`Notifier`] that sends nothing and logs, at `info`, that a notification was due:
/// its kind and the user's id — never the link, the address or any other content. The
/// default of [`crate::Ports::builder`] until a mail transport is wired in, so nothing is
/// lost silently: an operator sees which messages the deployment cannot deliver yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingNotifier;

impl TracingNotifier {
    /// The kind of `n` and its user, as logged.
    pub fn describe(n: &Notification) -> (&'static str, crate::model::UserId) {
        (n.kind_name(), n.recipient().user_id)
    }
}

#[async_trait]
impl Notifier for TracingNotifier {
    async fn send(&self, notification: Notification) -> PortResult<()> {
        let (kind, user) = Self::describe(&notification);
        tracing::info!(kind, user = %user, "notification not sent: no mail transport is configured");
        Ok(())
    }
}

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
