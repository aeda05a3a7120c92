//! Test support for modal2fa: in-memory implementations of every port, a fixed clock, a
//! deterministic secret generator, and one contract suite per port that any adapter can
//! run against itself (see [`contracts`]).

pub mod contracts;
mod memory;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use modal2fa_core::Ports;
use modal2fa_core::ports::{
    Clock, Delay, HashJob, HashOutput, HashPool, PortError, PortResult, SecretGenerator,
};
use time::{Duration, OffsetDateTime};

pub use memory::{
    HookedUsers, MemoryAudit, MemoryFactors, MemoryLockout, MemoryNotifier, MemoryOutbox,
    MemoryOutboxRow, MemoryOutboxState, MemorySessions, MemoryTrustedDevices, MemoryUsers,
    UsernameHook,
};

/// A clock that stands still until moved.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    /// A clock showing `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    /// A clock at 2026-01-01 00:00 UTC.
    pub fn default_start() -> Self {
        Self::new(time::macros::datetime!(2026-01-01 00:00 UTC))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    /// Sets the clock.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap() = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// A [`Delay`] whose monotonic clock stands still and whose sleeps return at once, each
/// recorded: a test reads which waits the core asked for with [`RecordingDelay::sleeps`].
#[derive(Debug)]
pub struct RecordingDelay {
    at: std::time::Instant,
    sleeps: Mutex<Vec<std::time::Duration>>,
}

impl RecordingDelay {
    /// A delay standing at one instant, with no sleep recorded.
    pub fn new() -> Self {
        Self {
            at: std::time::Instant::now(),
            sleeps: Mutex::new(Vec::new()),
        }
    }

    /// The sleeps asked for, in order.
    pub fn sleeps(&self) -> Vec<std::time::Duration> {
        self.sleeps.lock().unwrap().clone()
    }

    /// Forgets the sleeps recorded so far.
    pub fn clear(&self) {
        self.sleeps.lock().unwrap().clear();
    }
}

impl Default for RecordingDelay {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Delay for RecordingDelay {
    fn now(&self) -> std::time::Instant {
        self.at
    }

    async fn sleep(&self, duration: std::time::Duration) {
        self.sleeps.lock().unwrap().push(duration);
    }
}

/// Deterministic bytes (xorshift over a counter): reproducible, different on every call.
/// Never use outside tests.
#[derive(Debug)]
pub struct SequenceRandom(AtomicU64);

impl SequenceRandom {
    /// A generator seeded with `seed`.
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

/// A [`HashPool`] that runs every job inline, on the calling thread: for tests and the
/// in-memory adapters, never for a server (it blocks the executor for a hash's time).
/// [`InlineHashPool::set_full`] makes it refuse every job, as a saturated pool does.
#[derive(Debug, Default)]
pub struct InlineHashPool {
    full: AtomicBool,
    ran: AtomicU64,
}

impl InlineHashPool {
    /// Refuses every job with [`PortError::Unavailable`] while `full` is set.
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    /// How many jobs have run.
    pub fn jobs_run(&self) -> u64 {
        self.ran.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl HashPool for InlineHashPool {
    async fn run(&self, job: HashJob) -> PortResult<HashOutput> {
        if self.full.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable(
                "the hash pool is full (test)".into(),
            ));
        }
        self.ran.fetch_add(1, Ordering::SeqCst);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
            .map_err(|_| PortError::Unexpected("a hashing job panicked".into()))
    }
}

/// A full set of in-memory ports, with handles to the pieces tests inspect.
pub struct MemoryPorts {
    /// The ports, ready for [`modal2fa_core::Modal2fa::new`].
    pub ports: Ports,
    /// The clock.
    pub clock: Arc<FixedClock>,
    /// Sent notifications.
    pub notifier: Arc<MemoryNotifier>,
    /// The audit log.
    pub audit: Arc<MemoryAudit>,
    /// The notification outbox (deliver it with `Modal2fa::outbox`).
    pub outbox: Arc<MemoryOutbox>,
    /// Users (to seed).
    pub users: Arc<MemoryUsers>,
    /// Factors.
    pub factors: Arc<MemoryFactors>,
    /// Trusted devices.
    pub trusted_devices: Arc<MemoryTrustedDevices>,
    /// Lockout.
    pub lockout: Arc<MemoryLockout>,
    /// Sessions.
    pub sessions: Arc<MemorySessions>,
    /// The inline hash pool.
    pub hash_pool: Arc<InlineHashPool>,
    /// The delay: stands still and records the answer floors asked for.
    pub delay: Arc<RecordingDelay>,
}

impl MemoryPorts {
    /// Fresh, empty stores; the clock at 2026-01-01; deterministic randomness.
    pub fn new() -> Self {
        let clock = Arc::new(FixedClock::default_start());
        let notifier = Arc::new(MemoryNotifier::default());
        let audit = Arc::new(MemoryAudit::default());
        let outbox = Arc::new(MemoryOutbox::default());
        let users = Arc::new(MemoryUsers::default());
        let factors = Arc::new(MemoryFactors::default());
        let trusted_devices = Arc::new(MemoryTrustedDevices::default());
        let lockout = Arc::new(MemoryLockout::default());
        let sessions = Arc::new(MemorySessions::default());
        let hash_pool = Arc::new(InlineHashPool::default());
        let delay = Arc::new(RecordingDelay::new());
        let ports = Ports {
            users: users.clone(),
            factors: factors.clone(),
            trusted_devices: trusted_devices.clone(),
            lockout: lockout.clone(),
            sessions: sessions.clone(),
            notifier: notifier.clone(),
            audit: audit.clone(),
            outbox: outbox.clone(),
            clock: clock.clone(),
            random: Arc::new(SequenceRandom::new(42)),
            hash_pool: hash_pool.clone(),
            delay: delay.clone(),
        };
        Self {
            ports,
            clock,
            notifier,
            audit,
            outbox,
            users,
            factors,
            trusted_devices,
            lockout,
            sessions,
            hash_pool,
            delay,
        }
    }
}

impl Default for MemoryPorts {
    fn default() -> Self {
        Self::new()
    }
}
