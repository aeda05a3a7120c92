//! [`TokioHashPool`]: the [`HashPool`] for hosts on tokio (actix-web runs on it), so that
//! password hashing never runs on the threads that serve requests.
//!
//! The model: `workers` threads of the pool's own (at most the cores;
//! [`TokioHashPool::for_this_machine`] takes exactly that) take jobs from one queue and
//! run them back to back; a counter of jobs in flight (running or queued) bounds the
//! queue. A job that finds `workers + queue` in flight is refused at once with
//! [`PortError::Unavailable`] — the sign-in answers 503 with `Retry-After` instead of
//! waiting behind a flood. An accepted job is queued without blocking, and its request
//! awaits the result on a oneshot channel (the executor thread moves on). A worker that
//! finishes a hash takes the next queued one itself: no task has to be woken on an
//! executor thread and hand the job to another thread in between, so with a full queue
//! every core hashes without a gap (with tokio's `spawn_blocking` behind a semaphore,
//! that hand-off left the cores 7 % idle under a saturating Argon2id load). The queue
//! slot moves into the job, so a job whose request was dropped still counts until its
//! hash is done: abandoned requests cannot put more than `workers` hashes on the cores.
//! A panicking job is caught on its worker, which goes on; the threads end when the last
//! clone of the pool is dropped.
//!
//! On Linux the workers run at a lower scheduling priority ([`WORKER_NICENESS`]): hashing
//! is throughput work, serving a request is latency work. With every core hashing, the
//! threads that serve requests still get a core as soon as they have something to do,
//! and hashing takes whatever is left — all of it, while nothing else runs.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use modal2fa_core::ports::{HashJob, HashOutput, HashPool, PortError, PortResult};

/// How many jobs [`TokioHashPool::for_this_machine`] lets wait per worker.
pub const QUEUE_PER_WORKER: usize = 16;

/// The `nice` value of the workers on Linux (0 is the default; 10 gives a runnable
/// request-serving thread about nine tenths of a core shared with a worker).
pub const WORKER_NICENESS: i32 = 10;

/// A job as the workers take it: the hash and where its result goes.
type Queued = Box<dyn FnOnce() + Send + 'static>;

/// A bounded hashing pool on threads of its own (see the module docs).
#[derive(Debug, Clone)]
pub struct TokioHashPool {
    jobs: mpsc::Sender<Queued>,
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
    /// The pool's threads could not be started, or are gone.
    NoWorkers,
}

impl fmt::Display for HashJobFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Panicked => "a password hashing job panicked",
            Self::NoWorkers => "the password hashing pool has no worker threads",
        })
    }
}

impl std::error::Error for HashJobFailed {}

impl TokioHashPool {
    /// A pool running at most `workers` jobs at once on as many threads of its own (at
    /// least 1; keep it at or below the cores) with at most `queue` waiting. A thread
    /// that cannot be started is left out (its jobs go to the others); with none, every
    /// job fails with [`HashJobFailed::NoWorkers`].
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, taken) = mpsc::channel::<Queued>();
        let taken = Arc::new(Mutex::new(taken));
        for i in 0..workers {
            let taken = taken.clone();
            let started = std::thread::Builder::new()
                .name(format!("modal2fa-hash-{i}"))
                .spawn(move || work(&taken));
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Self {
            jobs,
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

/// A worker: runs queued jobs back to back until the pool is gone.
fn work(taken: &Mutex<mpsc::Receiver<Queued>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job.
        let next = match taken.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Lowers the calling thread's priority to [`WORKER_NICENESS`] (with `thread-priority`:
/// on Linux, its platform-independent value 22 of 0–99 is niceness 10 under the normal
/// policy). Raising niceness needs no privilege; a failure leaves the thread at its
/// priority, which is only slower for requests.
#[cfg(target_os = "linux")]
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    let set = match ThreadPriorityValue::try_from(22u8) {
        Ok(nice_10) => set_current_thread_priority(ThreadPriority::Crossplatform(nice_10))
            .map_err(|e| format!("{e:?}")),
        Err(e) => Err(e),
    };
    if let Err(e) = set {
        tracing::warn!(error = %e, "cannot lower the priority of a password hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

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
        let slot = Slot::take(&self.in_flight, self.workers + self.queue).ok_or_else(|| {
            PortError::Unavailable(Box::new(HashPoolFull {
                workers: self.workers,
                queue: self.queue,
            }))
        })?;
        let (done, result) = tokio::sync::oneshot::channel();
        let queued: Queued = Box::new(move || {
            // A panic is this job's failure, not the worker's: it goes on.
            let out = catch_unwind(AssertUnwindSafe(job));
            // The slot is free before anyone sees the result.
            drop(slot);
            let _ = done.send(out);
        });
        let failed = |why| PortError::Unexpected(Box::new(why));
        self.jobs
            .send(queued)
            .map_err(|_| failed(HashJobFailed::NoWorkers))?;
        match result.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_)) => Err(failed(HashJobFailed::Panicked)),
            Err(_) => Err(failed(HashJobFailed::NoWorkers)),
        }
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
        // The worker survived its job's panic.
        assert_eq!(run_hashing(&pool, || 5).await.unwrap(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_workers_run_jobs_on_threads_of_their_own_at_most_workers_at_once() {
        let pool = TokioHashPool::new(2, 8);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    run_hashing(&pool, move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        std::thread::current().name().map(str::to_owned)
                    })
                    .await
                })
            })
            .collect();
        for job in jobs {
            let name = job.await.unwrap().unwrap().unwrap_or_default();
            assert!(name.starts_with("modal2fa-hash-"), "ran on {name:?}");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    /// The calling thread's niceness, from `/proc/thread-self/stat` (field 19).
    #[cfg(target_os = "linux")]
    fn niceness() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        after.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn on_linux_the_workers_run_below_the_threads_that_serve_requests() {
        let pool = TokioHashPool::new(1, 0);
        let here = niceness();
        let there = run_hashing(&pool, niceness).await.unwrap();
        assert_eq!(here, 0, "the test runs at the default priority");
        assert_eq!(there, WORKER_NICENESS);
    }
}
