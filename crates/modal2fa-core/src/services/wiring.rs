//! [`PortsBuilder`]: wiring the ports in a few lines. One store serves every store port
//! (as `modal2fa-sea-orm`'s `SeaOrmStore` does); a host overrides the ports it brings
//! itself — its own users table, say — and keeps the rest. The system clock, the
//! operating system's random source and the [`TracingNotifier`] are the defaults; where
//! hashing runs and how the core waits are the host runtime's to give (`modal2fa-actix`
//! gives both for tokio: `modal2fa_actix::ports(store)`), and building without them
//! names what is missing.

use std::sync::Arc;

use super::Ports;
use crate::ports::{
    AuditLog, Clock, Delay, FactorStore, HashPool, LockoutStore, Notifier, Outbox, SecretGenerator,
    SessionStore, TrustedDeviceStore, UserStore,
};
use crate::system::{OsRandom, SystemClock, TracingNotifier};

/// A store that serves every store port.
pub trait Store:
    UserStore
    + FactorStore
    + TrustedDeviceStore
    + LockoutStore
    + SessionStore
    + AuditLog
    + Outbox
    + 'static
{
}

impl<S> Store for S where
    S: UserStore
        + FactorStore
        + TrustedDeviceStore
        + LockoutStore
        + SessionStore
        + AuditLog
        + Outbox
        + 'static
{
}

/// Building [`Ports`] without a port that has no default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MissingPort {
    /// No [`HashPool`].
    #[error(
        "the ports have no hash pool: give one with `.hash_pool(…)` (modal2fa-actix's \
         `TokioHashPool::for_this_machine()`, or start from `modal2fa_actix::ports(store)`)"
    )]
    HashPool,
    /// No [`Delay`].
    #[error(
        "the ports have no delay: give one with `.delay(…)` (modal2fa-actix's `TokioDelay`, \
         or start from `modal2fa_actix::ports(store)`)"
    )]
    Delay,
}

/// Builds [`Ports`] (see the [module documentation](self)).
#[must_use]
pub struct PortsBuilder {
    users: Arc<dyn UserStore>,
    factors: Arc<dyn FactorStore>,
    trusted_devices: Arc<dyn TrustedDeviceStore>,
    lockout: Arc<dyn LockoutStore>,
    sessions: Arc<dyn SessionStore>,
    audit: Arc<dyn AuditLog>,
    outbox: Arc<dyn Outbox>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn SecretGenerator>,
    hash_pool: Option<Arc<dyn HashPool>>,
    delay: Option<Arc<dyn Delay>>,
}

impl Ports {
    /// Starts from one store for every store port, the system clock, the OS random
    /// source and the [`TracingNotifier`]; give a hash pool and a delay before
    /// [`PortsBuilder::build`].
    pub fn builder<S: Store>(store: Arc<S>) -> PortsBuilder {
        PortsBuilder {
            users: store.clone(),
            factors: store.clone(),
            trusted_devices: store.clone(),
            lockout: store.clone(),
            sessions: store.clone(),
            audit: store.clone(),
            outbox: store,
            notifier: Arc::new(TracingNotifier),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            hash_pool: None,
            delay: None,
        }
    }
}

impl PortsBuilder {
    /// Accounts from another store (a host's own users table).
    pub fn users(mut self, users: Arc<dyn UserStore>) -> Self {
        self.users = users;
        self
    }

    /// TOTP devices, passkeys and recovery codes from another store.
    pub fn factors(mut self, factors: Arc<dyn FactorStore>) -> Self {
        self.factors = factors;
        self
    }

    /// Trusted devices from another store.
    pub fn trusted_devices(mut self, devices: Arc<dyn TrustedDeviceStore>) -> Self {
        self.trusted_devices = devices;
        self
    }

    /// Lockout counters from another store.
    pub fn lockout(mut self, lockout: Arc<dyn LockoutStore>) -> Self {
        self.lockout = lockout;
        self
    }

    /// Sessions from another store.
    pub fn sessions(mut self, sessions: Arc<dyn SessionStore>) -> Self {
        self.sessions = sessions;
        self
    }

    /// The audit log in another store.
    pub fn audit(mut self, audit: Arc<dyn AuditLog>) -> Self {
        self.audit = audit;
        self
    }

    /// The notification outbox in another store.
    pub fn outbox(mut self, outbox: Arc<dyn Outbox>) -> Self {
        self.outbox = outbox;
        self
    }

    /// Where notifications go (default: [`TracingNotifier`], which sends nothing).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The random source (default: [`OsRandom`]).
    pub fn random(mut self, random: Arc<dyn SecretGenerator>) -> Self {
        self.random = random;
        self
    }

    /// Where password hashing runs (required).
    pub fn hash_pool(mut self, pool: Arc<dyn HashPool>) -> Self {
        self.hash_pool = Some(pool);
        self
    }

    /// How the core waits (required).
    pub fn delay(mut self, delay: Arc<dyn Delay>) -> Self {
        self.delay = Some(delay);
        self
    }

    /// The ports, or which required one was not given.
    pub fn build(self) -> Result<Ports, MissingPort> {
        Ok(Ports {
            hash_pool: self.hash_pool.ok_or(MissingPort::HashPool)?,
            delay: self.delay.ok_or(MissingPort::Delay)?,
            users: self.users,
            factors: self.factors,
            trusted_devices: self.trusted_devices,
            lockout: self.lockout,
            sessions: self.sessions,
            audit: self.audit,
            outbox: self.outbox,
            notifier: self.notifier,
            clock: self.clock,
            random: self.random,
        })
    }
}
