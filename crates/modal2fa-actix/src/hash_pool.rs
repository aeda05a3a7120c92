//! [`TokioHashPool`]: the [`HashPool`] for hosts on tokio (actix-web runs on it), so that
//! password hashing never runs on the threads that serve requests.
//!
//! The model: a [`Semaphore`] with one permit per worker bounds how many hashes run at
//! once (at most the cores, [`TokioHashPool::for_this_machine`] takes exactly that); a
//! counter of jobs in flight (running or waiting for a permit) bounds the queue. A job
//! that finds `workers + queue` in flight is refused at once with
//! [`PortError::Unavailable`] — the sign-in answers 503 with `Retry-After` instead of
//! waiting behind a flood. An accepted job waits for a permit asynchronously (the
//! executor thread moves on) and then runs on tokio's blocking threads
//! (`spawn_blocking`). The permit and the queue slot move into the blocking closure, so a
//! job whose request was dropped still counts until its hash is done: abandoned requests
//! cannot put more than `workers` hashes on the cores.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use modal2fa_core::ports::{HashJob, HashOutput, HashPool, PortError, PortResult};
use tokio::sync::Semaphore;

/// How many jobs [`TokioHashPool::for_this_machine`] lets wait per worker.
pub const QUEUE_PER_WORKER: usize = 16;

/// A bounded hashing pool on tokio's blocking threads (see the module docs).
#[derive(Debug, Clone)]
pub struct TokioHashPool {
    permits: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    workers: usize,
    queue: usize,
}

/// Why a job was refused: `workers + queue` jobs are in flight already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashPoolFull {
    /// Jobs that may run at once.
    pub workers: usize,
    /// Jobs that may wait.
    pub queue: usize,
}

impl fmt::Display for HashPoolFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the password hashing pool is full ({} running, {} waiting)",
            self.workers, self.queue
        )
    }
}

impl std::error::Error for HashPoolFull {}

/// Why an accepted job produced no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashJobFailed {
    /// The job panicked.
    Panicked,
    /// `run` was awaited outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for HashJobFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Panicked => "a password hashing job panicked",
            Self::NoRuntime => "the password hashing pool needs a tokio runtime",
        })
    }
}

impl std::error::Error for HashJobFailed {}

impl TokioHashPool {
    /// A pool running at most `workers` jobs at once (at least 1; keep it at or below the
    /// cores) with at most `queue` waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            workers,
            queue,
        }
    }

    /// One worker per core (`std::thread::available_parallelism`), and
    /// [`QUEUE_PER_WORKER`] waiting jobs per worker.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, cores * QUEUE_PER_WORKER)
    }

    /// Jobs that may run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs that may wait for a worker.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// Jobs running or waiting now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// One job's place in the pool, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(in_flight: &Arc<AtomicUsize>, limit: usize) -> Option<Self> {
        in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(in_flight.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl HashPool for TokioHashPool {
    async fn run(&self, job: HashJob) -> PortResult<HashOutput> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| PortError::Unexpected(Box::new(HashJobFailed::NoRuntime)))?;
        let full = || {
            PortError::Unavailable(Box::new(HashPoolFull {
                workers: self.workers,
                queue: self.queue,
            }))
        };
        let slot = Slot::take(&self.in_flight, self.workers + self.queue).ok_or_else(full)?;
        // Waiting here yields the executor thread; the semaphore is never closed.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| full())?;
        let running = runtime.spawn_blocking(move || {
            let _held = (permit, slot);
            job()
        });
        running
            .await
            .map_err(|_| PortError::Unexpected(Box::new(HashJobFailed::Panicked)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use modal2fa_core::ports::run_hashing;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_beyond_the_workers_and_the_queue_is_refused_at_once_and_the_pool_recovers() {
        let pool = TokioHashPool::new(1, 1);
        let (release, wait) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                run_hashing(&pool, move || {
                    let _ = started.send(());
                    let _ = wait.recv();
                    1
                })
                .await
            }
        });
        running.await.unwrap();
        let queued = tokio::spawn({
            let pool = pool.clone();
            async move { run_hashing(&pool, || 2).await }
        });
        while pool.in_flight() < 2 {
            tokio::task::yield_now().await;
        }
        let refused = run_hashing(&pool, || 3).await;
        assert!(
            matches!(&refused, Err(PortError::Unavailable(e)) if e.is::<HashPoolFull>()),
            "{refused:?}"
        );
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        assert_eq!(queued.await.unwrap().unwrap(), 2);
        assert_eq!(run_hashing(&pool, || 4).await.unwrap(), 4);
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_job_keeps_its_worker_until_it_is_done() {
        let pool = TokioHashPool::new(1, 0);
        let (release, wait) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let abandoned = tokio::spawn({
            let pool = pool.clone();
            async move {
                run_hashing(&pool, move || {
                    let _ = started.send(());
                    let _ = wait.recv();
                })
                .await
            }
        });
        running.await.unwrap();
        abandoned.abort();
        let _ = abandoned.await;
        assert!(matches!(
            run_hashing(&pool, || ()).await,
            Err(PortError::Unavailable(_))
        ));
        release.send(()).unwrap();
        while pool.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(run_hashing(&pool, || ()).await.is_ok());
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_unexpected_failure_and_frees_its_slot() {
        let pool = TokioHashPool::new(1, 0);
        let out = run_hashing(&pool, || -> u8 { panic!("boom") }).await;
        assert!(matches!(out, Err(PortError::Unexpected(_))), "{out:?}");
        assert_eq!(pool.in_flight(), 0);
    }
}
