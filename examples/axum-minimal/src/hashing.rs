//! [`SpawnBlockingPool`]: the core's `HashPool` port on tokio's blocking threads, so an
//! Argon2id hash never holds an axum worker thread. At most one hash per core runs at once
//! (a semaphore) and at most `queue` wait; a job beyond that is refused at once with
//! `PortError::Unavailable`, which the core reports as `ServiceError::Unavailable` (answer
//! it with 503 and `Retry-After`). The permit travels into the blocking closure, so a
//! hash whose request was dropped still holds its core until it is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use modal2fa_core::ports::{HashJob, HashOutput, HashPool, PortError, PortResult};
use tokio::sync::Semaphore;

/// A bounded hashing pool on `tokio::task::spawn_blocking`.
#[derive(Debug, Clone)]
pub struct SpawnBlockingPool {
    permits: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    limit: usize,
}

impl SpawnBlockingPool {
    /// One worker per core and `16 ×` as many waiting jobs.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit: cores * 17,
        }
    }
}

/// Gives a job's place back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl HashPool for SpawnBlockingPool {
    async fn run(&self, job: HashJob) -> PortResult<HashOutput> {
        let limit = self.limit;
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| PortError::Unavailable("the password hashing pool is full".into()))?;
        let slot = Slot(self.in_flight.clone());
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PortError::Unexpected(Box::new(e)))?;
        tokio::task::spawn_blocking(move || {
            let _held = (permit, slot);
            job()
        })
        .await
        .map_err(|e| PortError::Unexpected(Box::new(e)))
    }
}
