//! Lockout arithmetic: pure functions the stores apply atomically.
//!
//! A key (username, client address, an account from one address, or an account's second
//! factor) is locked when its failures reach the threshold. The lock lasts
//! `lockout_seconds`; each further lock before a success doubles it, up to
//! `max_lockout_seconds`. An account's counter also stops for good at
//! `max_consecutive_failures` (100) failed checks since its last success, however they are
//! spread over time and addresses (NIST SP 800-63B 5.2.2; the original package allowed
//! 28 800 guesses a day): only a success through an address the owner signed in from
//! before or a trusted device, an administrator's clear or a password reset goes on from
//! there. After a lock expires the counter starts fresh; after `max_lockout_seconds`
//! without a failure the whole entry is forgotten.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};

use serde::{Deserialize, Serialize};

use crate::client_ip::{IpNet, IpSet, canonical};
use crate::model::Username;
use crate::parse::{ParseError, Problem};

/// What a lockout counter is keyed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockoutKey {
    /// A username in its canonical form (counted whether or not the account exists, so a
    /// lock never reveals an account).
    User(String),
    /// A client address (IPv6 addresses are bucketed by /64).
    Ip(String),
    /// An account tried from one client address (canonical username, address bucket):
    /// while the account is locked by failures from elsewhere, its owner may still try
    /// from an address that signed in before, counted here instead (see
    /// [`LockoutSettings::max_consecutive_failures`]).
    UserAt(String, String),
    /// An account's second factor: wrong codes after a right password (or in a step-up),
    /// counted apart from password guesses and never reset by a sign-in, so holding the
    /// password buys a bounded number of code guesses a day (see [`LockoutSettings`]).
    Factor(crate::model::UserId),
}

impl LockoutKey {
    /// The key for a username.
    pub fn user(username: &Username) -> Self {
        Self::User(username.canonical())
    }

    /// The key for a client address: IPv4 as is, IPv6 by its /64 network.
    pub fn ip(ip: IpAddr) -> Self {
        Self::Ip(bucket(ip))
    }

    /// `user:<name>` or `ip:<addr>`, the form stored and shown to admins.
    pub fn as_storage_string(&self) -> String {
        match self {
            Self::User(u) => format!("user:{u}"),
            Self::Ip(i) => format!("ip:{i}"),
            Self::Factor(u) => format!("factor:{}", u.0),
            Self::UserAt(u, ip) => format!("userat:{ip}|{u}"),
        }
    }

    /// Parses the form produced by [`Self::as_storage_string`].
    pub fn from_storage_string(s: &str) -> Result<Self, ParseError> {
        if let Some(u) = s.strip_prefix("user:") {
            Ok(Self::User(u.to_owned()))
        } else if let Some(i) = s.strip_prefix("ip:") {
            Ok(Self::Ip(i.to_owned()))
        } else if let Some(rest) = s.strip_prefix("userat:") {
            let (ip, user) = rest.split_once('|').ok_or(ParseError::new(
                "lockout key",
                Problem::MissingPrefix {
                    expected: "userat:<address>|<username>",
                },
            ))?;
            Ok(Self::UserAt(user.to_owned(), ip.to_owned()))
        } else if let Some(id) = s.strip_prefix("factor:") {
            id.parse()
                .map(|id| Self::Factor(crate::model::UserId(id)))
                .map_err(|_| ParseError::new("lockout key", Problem::NotWholeNumber))
        } else {
            Err(ParseError::new(
                "lockout key",
                Problem::MissingPrefix {
                    expected: "user:, ip:, userat: or factor:",
                },
            ))
        }
    }
}

/// A failure counter and its lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutEntry {
    /// What is counted.
    pub key: LockoutKey,
    /// Failures since the counter last started fresh.
    pub failures: u32,
    /// How many locks were set since the last success or clear (drives escalation).
    pub lock_count: u32,
    /// The most recent failure.
    pub last_failure_at: OffsetDateTime,
    /// Locked until this instant, if locked.
    pub locked_until: Option<OffsetDateTime>,
    /// Opaque to everyone but the store: changes with every write, so a store can apply a
    /// failure by compare-and-set against the entry the caller read (0 for an entry that
    /// was never stored).
    pub revision: u64,
}

/// The lockout bucket of an address: IPv4 as is, IPv6 by its /64 network (a client
/// usually controls a whole /64, so per-address counting would be trivial to evade).
pub fn bucket(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        v6 => format!("{}/64", IpNet::network_of(v6, 64)),
    }
}

/// Lockout configuration; defaults: 10 failures for a user, 20 for an address, 5 wrong
/// second-factor codes for an account, a 30 s first lock doubling up to a day.
///
/// A second factor's counter is never reset by a sign-in (a right code takes back only its
/// own attempt), so at the defaults an attacker who holds the password and waits out
/// every lock gets at most 60 code guesses in the first day and 5 a day after that,
/// whatever the owner does meanwhile (each guess is a 3-in-a-million chance with the
/// default ±1 step window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutSettings {
    /// Failures before a username is locked (default 10).
    pub user_failed_attempts: u32,
    /// Wrong second-factor codes before an account's second factor is locked (default 5).
    pub factor_failed_attempts: u32,
    /// Failures before a client address is locked (default 20).
    pub ip_failed_attempts: u32,
    /// How long the first lock lasts, in seconds (default 30).
    pub lockout_seconds: u32,
    /// Ceiling of the escalating lock and how long an idle entry is remembered (default 86 400).
    pub max_lockout_seconds: u32,
    /// Addresses never locked by the IP counter (the user counter still applies).
    pub excluded: IpSet,
    /// Consecutive failed checks after which an account stays locked until a success from
    /// an address it signed in from before (or with a trusted device), an administrator's
    /// clear or a password reset, however the failures are spread over time and addresses
    /// (default 100, NIST SP 800-63B 5.2.2).
    pub max_consecutive_failures: u32,
    /// How long an address that signed in successfully stays known to let its owner
    /// through a lock caused elsewhere, in days (default 30).
    pub known_client_days: u32,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        Self {
            user_failed_attempts: 10,
            factor_failed_attempts: 5,
            ip_failed_attempts: 20,
            lockout_seconds: 30,
            max_lockout_seconds: 86_400,
            excluded: IpSet::default(),
            max_consecutive_failures: 100,
            known_client_days: 30,
        }
    }
}

impl LockoutSettings {
    /// The rule that applies to `key`.
    pub fn rule_for(&self, key: &LockoutKey) -> LockoutRule {
        LockoutRule {
            threshold: match key {
                LockoutKey::User(_) | LockoutKey::UserAt(..) => self.user_failed_attempts,
                LockoutKey::Ip(_) => self.ip_failed_attempts,
                LockoutKey::Factor(_) => self.factor_failed_attempts,
            }
            .max(1),
            lock_for: Duration::seconds(i64::from(self.lockout_seconds)),
            max_lock: Duration::seconds(i64::from(
                self.max_lockout_seconds.max(self.lockout_seconds),
            )),
            max_consecutive: matches!(key, LockoutKey::User(_) | LockoutKey::UserAt(..))
                .then_some(self.max_consecutive_failures.max(1)),
        }
    }

    /// Whether the configured exclusions cover `ip`.
    pub fn is_excluded(&self, ip: IpAddr) -> bool {
        self.excluded.contains(ip)
    }

    /// Rows whose last failure and lock end are both before this instant may be purged
    /// (they are [`is_stale`] under the longest rule).
    pub fn purge_cutoff(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - Duration::seconds(i64::from(
            self.max_lockout_seconds.max(self.lockout_seconds),
        ))
    }
}

/// The numbers that govern one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    /// Failures that set a lock.
    pub threshold: u32,
    /// First lock's length.
    pub lock_for: Duration,
    /// Longest lock, and how long an idle entry is remembered.
    pub max_lock: Duration,
    /// Consecutive failed checks after which the lock is [`PERMANENT_LOCK`] long (accounts
    /// only).
    pub max_consecutive: Option<u32>,
}

/// The length of a lock that only a success through a known address or device, an
/// administrator or a password reset lifts (a century, so it never expires by itself).
pub const PERMANENT_LOCK: Duration = Duration::days(36_525);

/// Whether a key may try now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockStatus {
    /// Not locked.
    #[default]
    Open,
    /// Locked until the instant given.
    Locked {
        /// When the lock ends.
        until: OffsetDateTime,
    },
}

impl LockStatus {
    /// The later of two statuses' locks (for checking user and IP together).
    pub fn combine(self, other: LockStatus) -> LockStatus {
        match (self, other) {
            (LockStatus::Locked { until: a }, LockStatus::Locked { until: b }) => {
                LockStatus::Locked { until: a.max(b) }
            }
            (l @ LockStatus::Locked { .. }, _) | (_, l @ LockStatus::Locked { .. }) => l,
            _ => LockStatus::Open,
        }
    }

    /// Whether locked.
    pub fn is_locked(self) -> bool {
        matches!(self, LockStatus::Locked { .. })
    }
}

/// The status of an entry at `now`.
pub fn status(entry: Option<&LockoutEntry>, now: OffsetDateTime) -> LockStatus {
    match entry.and_then(|e| e.locked_until) {
        Some(until) if until > now => LockStatus::Locked { until },
        _ => LockStatus::Open,
    }
}

/// The entry after one more failure at `now`. Stores must apply this atomically
/// (read, compute, compare-and-set or lock the row) so concurrent failures are all counted.
pub fn apply_failure(
    previous: Option<&LockoutEntry>,
    key: &LockoutKey,
    now: OffsetDateTime,
    rule: LockoutRule,
) -> LockoutEntry {
    let mut entry = match previous {
        Some(p) if !is_stale(p, now, rule) => p.clone(),
        _ => LockoutEntry {
            key: key.clone(),
            failures: 0,
            lock_count: 0,
            last_failure_at: now,
            locked_until: None,
            revision: 0,
        },
    };
    match entry.locked_until {
        Some(until) if until > now => {
            // Still locked: count, but do not extend (a locked key is refused before any
            // check, so this only happens in a race).
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure_at = now;
            return entry;
        }
        Some(_) => {
            // The lock expired: the counter starts fresh, the escalation is remembered.
            entry.failures = 0;
            entry.locked_until = None;
        }
        None => {}
    }
    entry.failures = entry.failures.saturating_add(1);
    entry.last_failure_at = now;
    // Every lock before this round was set by `threshold` failed checks: with this round's,
    // the failures since the last success.
    let consecutive = entry
        .lock_count
        .saturating_mul(rule.threshold)
        .saturating_add(entry.failures);
    if rule.max_consecutive.is_some_and(|max| consecutive >= max) {
        entry.lock_count = entry.lock_count.saturating_add(1);
        entry.locked_until = Some(now + PERMANENT_LOCK);
    } else if entry.failures >= rule.threshold {
        entry.lock_count = entry.lock_count.saturating_add(1);
        entry.locked_until = Some(now + lock_length(rule, entry.lock_count));
    }
    entry
}

/// Whether an entry has been quiet for `max_lock` since its last failure and since its
/// lock ended: it is then forgotten (and may be purged).
pub fn is_stale(entry: &LockoutEntry, now: OffsetDateTime, rule: LockoutRule) -> bool {
    let last = entry
        .locked_until
        .map_or(entry.last_failure_at, |u| u.max(entry.last_failure_at));
    now - last >= rule.max_lock
}

/// The length of the `n`-th consecutive lock (1-based): doubling, capped.
pub fn lock_length(rule: LockoutRule, n: u32) -> Duration {
    let shift = n.saturating_sub(1).min(30);
    let secs = rule.lock_for.whole_seconds().saturating_mul(1i64 << shift);
    Duration::seconds(secs.min(rule.max_lock.whole_seconds()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn key() -> LockoutKey {
        LockoutKey::User("alice".into())
    }

    fn rule() -> LockoutRule {
        LockoutSettings::default().rule_for(&key())
    }

    fn fail_n(mut e: Option<LockoutEntry>, n: u32, at: OffsetDateTime) -> LockoutEntry {
        for _ in 0..n {
            e = Some(apply_failure(e.as_ref(), &key(), at, rule()));
        }
        e.unwrap()
    }

    #[test]
    fn a_user_is_locked_at_the_tenth_failure_and_not_before() {
        let nine = fail_n(None, 9, T0);
        assert_eq!(status(Some(&nine), T0), LockStatus::Open);
        let ten = fail_n(Some(nine), 1, T0);
        assert_eq!(
            status(Some(&ten), T0),
            LockStatus::Locked {
                until: T0 + Duration::seconds(30)
            }
        );
    }

    #[test]
    fn ip_keys_use_their_own_threshold() {
        let s = LockoutSettings::default();
        assert_eq!(s.rule_for(&LockoutKey::Ip("1.2.3.4".into())).threshold, 20);
        assert_eq!(s.rule_for(&key()).threshold, 10);
    }

    #[test]
    fn a_lock_expires_after_its_window_and_the_counter_starts_fresh() {
        let locked = fail_n(None, 10, T0);
        let after = T0 + Duration::seconds(30);
        assert_eq!(status(Some(&locked), after), LockStatus::Open);
        let next = apply_failure(Some(&locked), &key(), after, rule());
        assert_eq!(next.failures, 1);
        assert_eq!(status(Some(&next), after), LockStatus::Open);
    }

    #[test]
    fn repeated_locks_double_up_to_the_ceiling() {
        let r = rule();
        assert_eq!(lock_length(r, 1), Duration::seconds(30));
        assert_eq!(lock_length(r, 2), Duration::seconds(60));
        assert_eq!(lock_length(r, 5), Duration::seconds(480));
        assert_eq!(lock_length(r, 40), Duration::seconds(86_400));
    }

    #[test]
    fn an_attacker_waiting_out_every_lock_gets_100_guesses_in_all() {
        let mut e: Option<LockoutEntry> = None;
        let mut now = T0;
        let mut guesses = 0;
        let mut day_one = 0;
        while now < T0 + Duration::days(4) {
            if now >= T0 + Duration::days(1) && day_one == 0 {
                day_one = guesses;
            }
            if let LockStatus::Locked { until } = status(e.as_ref(), now) {
                now = until;
                continue;
            }
            e = Some(apply_failure(e.as_ref(), &key(), now, rule()));
            guesses += 1;
            now += Duration::seconds(1);
        }
        assert_eq!(
            guesses, 100,
            "{day_one} guesses on day one, {guesses} in four days"
        );
        // and the 101st consecutive attempt is refused, however long one waits
        let last = e.unwrap();
        assert_eq!(last.lock_count, 10, "nine ordinary locks, then the last");
        assert!(status(Some(&last), T0 + Duration::days(365)).is_locked());
    }

    #[test]
    fn a_key_that_is_not_an_account_never_locks_for_good() {
        let ip = LockoutKey::Ip("192.0.2.1".into());
        let rule = LockoutSettings::default().rule_for(&ip);
        let mut e = None;
        for _ in 0..500 {
            e = Some(apply_failure(e.as_ref(), &ip, T0, rule));
        }
        let until = e.unwrap().locked_until.unwrap();
        assert!(until <= T0 + Duration::days(1), "{until}");
    }

    #[test]
    fn an_idle_entry_is_forgotten_after_the_ceiling() {
        let some = fail_n(None, 9, T0);
        let later = T0 + Duration::seconds(86_400);
        let next = apply_failure(Some(&some), &key(), later, rule());
        assert_eq!(next.failures, 1);
        assert_eq!(next.lock_count, 0);
    }

    #[test]
    fn escalation_is_remembered_across_locks_at_the_ceiling() {
        let r = LockoutRule {
            threshold: 1,
            lock_for: Duration::seconds(30),
            max_lock: Duration::seconds(60),
            max_consecutive: None,
        };
        let mut e = apply_failure(None, &key(), T0, r);
        let mut now = T0;
        for _ in 0..5 {
            now = e.locked_until.unwrap();
            e = apply_failure(Some(&e), &key(), now, r);
        }
        assert_eq!(e.lock_count, 6);
        assert_eq!(e.locked_until, Some(now + Duration::seconds(60)));
        assert!(!is_stale(&e, now + Duration::seconds(119), r));
        assert!(is_stale(&e, now + Duration::seconds(120), r));
    }

    #[test]
    fn a_failure_during_a_lock_does_not_extend_it() {
        let locked = fail_n(None, 10, T0);
        let again = apply_failure(Some(&locked), &key(), T0 + Duration::seconds(5), rule());
        assert_eq!(again.locked_until, locked.locked_until);
        assert_eq!(again.failures, 11);
    }

    #[test]
    fn ipv6_clients_are_bucketed_by_their_64_bit_network() {
        assert_eq!(
            bucket(addr("2001:db8:1:2:aaaa::1")),
            bucket(addr("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            bucket(addr("2001:db8:1:2::1")),
            bucket(addr("2001:db8:1:3::1"))
        );
        assert_eq!(bucket(addr("1.2.3.4")), "1.2.3.4");
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lockout_keys_round_trip_through_their_storage_form() {
        for k in [
            LockoutKey::User("alice".into()),
            LockoutKey::Ip("10.0.0.1".into()),
        ] {
            assert_eq!(
                LockoutKey::from_storage_string(&k.as_storage_string()).unwrap(),
                k
            );
        }
        assert!(LockoutKey::from_storage_string("x").is_err());
    }

    #[test]
    fn combining_statuses_keeps_the_later_lock() {
        let a = LockStatus::Locked { until: T0 };
        let b = LockStatus::Locked {
            until: T0 + Duration::seconds(1),
        };
        assert_eq!(a.combine(b), b);
        assert_eq!(LockStatus::Open.combine(a), a);
        assert_eq!(LockStatus::Open.combine(LockStatus::Open), LockStatus::Open);
    }

    #[test]
    fn excluded_networks_are_recognised() {
        let s = LockoutSettings {
            excluded: IpSet::parse(&["10.0.0.0/8"]).unwrap(),
            ..Default::default()
        };
        assert!(s.is_excluded("10.1.2.3".parse().unwrap()));
        assert!(!s.is_excluded("11.1.2.3".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn the_counter_never_locks_before_the_threshold(n in 1u32..10) {
            let e = fail_n(None, n, T0);
            prop_assert!(!status(Some(&e), T0).is_locked());
            prop_assert_eq!(e.failures, n);
        }

        #[test]
        fn a_lock_never_exceeds_the_ceiling_before_the_hundredth_failed_check(
            n in 1u32..400,
            step in 0i64..100,
        ) {
            let mut e = None;
            let mut now = T0;
            for _ in 0..n {
                e = Some(apply_failure(e.as_ref(), &key(), now, rule()));
                now += Duration::seconds(step);
            }
            let e = e.unwrap();
            let checked = e.lock_count.saturating_sub(1) * 10 + e.failures.min(10);
            if let Some(until) = e.locked_until
                && checked < 100
            {
                prop_assert!(until - e.last_failure_at <= Duration::seconds(86_400));
            }
        }
    }
}
