//! Closed-loop load and the scenarios.
//!
//! A scenario is an operation (one or more requests) that [`CLIENTS`] keep-alive clients
//! repeat back to back for a bounded time, the server's CPU time read from `/proc` before
//! and after. The machine is shared and its speed drifts by tens of percent within
//! minutes, so a scenario runs in rounds, each between two timings of one password
//! verification (thread CPU time): every round is compared with the hash as fast as it was
//! around that round.

use std::sync::Arc;
use std::time::{Duration, Instant};

use modal2fa_core::SecretString;
use modal2fa_core::password::{PasswordHasher, PasswordHashing};
use modal2fa_core::system::{OsRandom, SystemClock};
use modal2fa_core::totp::{self, TotpParams};

use crate::client::{Client, Resp, csrf, enc};
use crate::procfs::{self, cpu_seconds, thread_cpu_seconds};
use crate::seed::{NowUtc, PASSWORD};
use crate::server::Server;

/// Closed-loop clients per scenario.
pub const CLIENTS: usize = 4;
/// Closed-loop clients of the failed-login scenario. A failed sign-in's answer is held
/// back to the answer floor (about a quarter of a second with a Django PBKDF2 class in
/// the deployment; docs/SECURITY.md, "Timing"), so [`CLIENTS`] would send 16 failures a
/// second: the figure would be the cost of waking an idle server for each request, not
/// the work of a failure. With this many the server answers over a hundred a second; the
/// wait itself costs no CPU. No more than the hash pool holds on two cores (2 workers and
/// 32 queued): the clients' requests arrive together, and a burst beyond the pool's
/// capacity is refused with 503 by design.
pub const FLOORED_CLIENTS: usize = 32;
/// Closed-loop Argon2id sign-in clients that keep the server's hash pool saturated (more
/// than its workers, fewer than its workers plus queue: every core hashes, none is refused).
pub const SATURATING_CLIENTS: usize = 8;
/// How long the login modal is timed, at rest and under the Argon2id load.
pub const MODAL_RUN: Duration = Duration::from_secs(3);
/// The Argon2id throughput is taken in this many rounds of [`ARGON2_ROUND`].
pub const ARGON2_ROUNDS: usize = 7;
/// The other scenarios run in this many rounds of [`ROUND`] (see [`in_rounds`]).
pub const ROUNDS: usize = 4;
/// One round of the PBKDF2 scenarios.
pub const ROUND: Duration = Duration::from_millis(1500);
/// One round of the Argon2id throughput.
pub const ARGON2_ROUND: Duration = Duration::from_secs(2);
/// The original's cheap hash, the PBKDF2 phase's.
pub const PBKDF2_1000: PasswordHashing = PasswordHashing::Pbkdf2Sha256 { iterations: 1000 };

/// What a run of a scenario did.
pub struct Outcome {
    /// Operations completed.
    pub ops: usize,
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// Server CPU time during the run, in seconds.
    pub cpu: f64,
    /// The latency of every operation.
    pub latencies: Vec<Duration>,
    /// Where the rest of the machine's CPU went meanwhile.
    pub elsewhere: Elsewhere,
}

/// The machine's CPU time during a run that the server did not get, in seconds: the
/// load generator's (this process), the idle time of every core, and the time the
/// hypervisor gave to other guests. What is left of `cores × wall` went to other
/// processes on this machine.
#[derive(Clone, Copy, Default)]
pub struct Elsewhere {
    /// This process (the clients), in seconds.
    pub generator: f64,
    /// Idle and I/O-wait time summed over the cores, in seconds.
    pub idle: f64,
    /// Stolen time summed over the cores, in seconds.
    pub steal: f64,
}

impl Elsewhere {
    fn now(ticks: f64) -> Self {
        let (idle, steal) = procfs::machine_idle_and_steal(ticks);
        Self {
            generator: cpu_seconds(std::process::id(), ticks),
            idle,
            steal,
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            generator: self.generator - before.generator,
            idle: self.idle - before.idle,
            steal: self.steal - before.steal,
        }
    }

    fn add(&mut self, other: Self) {
        self.generator += other.generator;
        self.idle += other.idle;
        self.steal += other.steal;
    }
}

impl Outcome {
    /// The `p` quantile of the latencies, in ms.
    pub fn pct(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self
            .latencies
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    }
    /// Server CPU per operation, in ms.
    pub fn cpu_ms_per_op(&self) -> f64 {
        self.cpu * 1000.0 / self.ops.max(1) as f64
    }
}

/// One operation of a closed-loop client: the client back, and whether it did anything
/// (false when its input pool is exhausted).
pub type OpFuture = std::pin::Pin<Box<dyn std::future::Future<Output = (Client, bool)> + Send>>;

/// Runs `op(client, iteration)` in `clients` closed loops for at most `duration`; an op
/// returns false when its input pool is exhausted.
async fn run_clients_for(
    server: &Server,
    ticks: f64,
    clients: usize,
    duration: Duration,
    op: impl Fn(usize, usize, Client) -> OpFuture + Send + Sync + 'static,
) -> Outcome {
    let op = Arc::new(op);
    let cpu0 = cpu_seconds(server.pid, ticks);
    let elsewhere0 = Elsewhere::now(ticks);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let op = op.clone();
        let port = server.port;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(port);
            let mut lat = Vec::new();
            let mut i = 0;
            while start.elapsed() < duration {
                let t = Instant::now();
                let (cl, ok) = op(c, i, client).await;
                client = cl;
                if !ok {
                    break;
                }
                lat.push(t.elapsed());
                i += 1;
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let wall = start.elapsed();
    let cpu = cpu_seconds(server.pid, ticks) - cpu0;
    Outcome {
        ops: latencies.len(),
        wall,
        cpu,
        latencies,
        elsewhere: Elsewhere::now(ticks).since(elsewhere0),
    }
}

/// One round of a scenario: server CPU per operation (ms), throughput (ops/s) and the hash
/// time (s) measured around it.
pub struct Round {
    /// Server CPU per operation, in ms.
    pub cpu_ms_per_op: f64,
    /// Operations per second.
    pub per_s: f64,
    /// One hash's CPU time around the round, in seconds.
    pub hash_s: f64,
}

/// A scenario run in `rounds` rounds of `round`, each between two timings of the hash:
/// the rounds' outcomes together, and each round on its own. Rounds that did nothing (a
/// pool of fresh users ran out) are left out.
pub struct Rounds {
    /// Every round's operations together.
    pub all: Outcome,
    /// Each round that did something.
    pub each: Vec<Round>,
}

/// Runs `op` in closed loops in `rounds` rounds of `round`, timing the `hashing` hash
/// around each (see [`Rounds`]).
pub async fn in_rounds(
    server: &Server,
    ticks: f64,
    hashing: PasswordHashing,
    rounds: (usize, Duration),
    op: impl Fn(usize, usize, Client) -> OpFuture + Send + Sync + 'static,
) -> Rounds {
    in_rounds_with(server, ticks, hashing, CLIENTS, rounds, op).await
}

/// [`in_rounds`] with `clients` closed loops.
pub async fn in_rounds_with(
    server: &Server,
    ticks: f64,
    hashing: PasswordHashing,
    clients: usize,
    (rounds, round): (usize, Duration),
    op: impl Fn(usize, usize, Client) -> OpFuture + Send + Sync + 'static,
) -> Rounds {
    let op = Arc::new(op);
    let mut all = Outcome {
        ops: 0,
        wall: Duration::ZERO,
        cpu: 0.0,
        latencies: Vec::new(),
        elsewhere: Elsewhere::default(),
    };
    let mut each = Vec::new();
    for _ in 0..rounds {
        let op = op.clone();
        let (o, hash_s) = bracketed(
            hashing,
            run_clients_for(server, ticks, clients, round, move |a, b, c| op(a, b, c)),
        )
        .await;
        if o.ops == 0 {
            continue;
        }
        each.push(Round {
            cpu_ms_per_op: o.cpu_ms_per_op(),
            per_s: o.ops as f64 / o.wall.as_secs_f64(),
            hash_s,
        });
        all.ops += o.ops;
        all.wall += o.wall;
        all.cpu += o.cpu;
        all.elsewhere.add(o.elsewhere);
        all.latencies.extend(o.latencies);
    }
    all.latencies.sort();
    Rounds { all, each }
}

/// Runs a scenario between two measurements of one hash's CPU time; returns the outcome
/// and the mean of the two (the machine's speed drifts over a run).
async fn bracketed(
    hashing: PasswordHashing,
    scenario: impl std::future::Future<Output = Outcome>,
) -> (Outcome, f64) {
    let before = hash_seconds_on(hashing, 1);
    let o = scenario.await;
    let after = hash_seconds_on(hashing, 1);
    (o, (before + after) / 2.0)
}

/// The CPU time of one password check while `threads` threads check at once (as concurrent
/// logins do). Reported beside the lone figure: with every core busy, a memory-hard hash
/// shares the last-level cache and memory bandwidth with the others.
pub fn hash_seconds_on(hashing: PasswordHashing, threads: usize) -> f64 {
    let h = PasswordHasher::new(hashing);
    let hash = h.hash(&SecretString::new(PASSWORD), &OsRandom).unwrap();
    let n = match hashing {
        PasswordHashing::Pbkdf2Sha256 { .. } => 400,
        _ => 20,
    };
    let per_thread: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let t = thread_cpu_seconds();
                    for _ in 0..n {
                        h.verify(&SecretString::new(PASSWORD), &hash);
                    }
                    (thread_cpu_seconds() - t) / f64::from(n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    per_thread.iter().sum::<f64>() / per_thread.len() as f64
}

/// GET the login modal, then POST the password form (the client keeps only a trusted
/// device's cookie from before, plus `cookie` when given).
async fn password_login(
    mut c: Client,
    user: &str,
    password: &str,
    cookie: Option<(&str, String)>,
) -> (Client, Resp) {
    c.jar.retain(|k, _| k == "modal2fa_device");
    if let Some((k, v)) = cookie {
        c.jar.insert(k.to_owned(), v);
    }
    let page = c.request("GET", "/auth/login/", None, true).await;
    let form = format!(
        "username={}&password={}&csrf_token={}",
        enc(user),
        enc(password),
        enc(&csrf(&page.body))
    );
    let r = c.request("POST", "/auth/login/", Some(&form), true).await;
    (c, r)
}

/// GET the login modal as an anonymous visitor.
pub async fn login_modal(server: &Server, ticks: f64) -> Rounds {
    in_rounds(
        server,
        ticks,
        PBKDF2_1000,
        (ROUNDS, ROUND),
        |_, _, mut c| {
            Box::pin(async move {
                let r = c.request("GET", "/auth/login/", None, true).await;
                assert_eq!(r.status, 200);
                (c, true)
            })
        },
    )
    .await
}

/// Password login (GET + POST) of the users `plain0..400` without 2FA.
pub async fn password(server: &Server, ticks: f64) -> Rounds {
    in_rounds(
        server,
        ticks,
        PBKDF2_1000,
        (ROUNDS, ROUND),
        |client, i, c| {
            Box::pin(async move {
                let user = format!("plain{}", (client * 100 + i) % 400);
                let (c, r) = password_login(c, &user, PASSWORD, None).await;
                assert_eq!(r.location.as_deref(), Some("/"), "{}", r.body);
                (c, true)
            })
        },
    )
    .await
}

/// Password + TOTP login (GET, POST password, GET 2FA modal, POST code), each TOTP user of
/// `pool` once, so every code is fresh.
pub async fn password_and_totp(
    server: &Server,
    ticks: f64,
    pool: Vec<(String, Vec<u8>)>,
) -> Rounds {
    let pool = Arc::new(pool);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    in_rounds(
        server,
        ticks,
        PBKDF2_1000,
        (ROUNDS, ROUND),
        move |_, _, c| {
            let pool = pool.clone();
            let next = next.clone();
            Box::pin(async move {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((user, secret)) = pool.get(k) else {
                    return (c, false);
                };
                let (mut c, r) = password_login(c, user, PASSWORD, None).await;
                assert!(r.body.contains("name=\"code\""), "{}", r.body);
                let page = c.request("GET", "/auth/2fa/", None, true).await;
                let code = totp::code_at(secret, &TotpParams::default(), SystemClock.now_utc());
                let form = format!("code={code}&csrf_token={}", enc(&csrf(&page.body)));
                let r = c.request("POST", "/auth/2fa/", Some(&form), true).await;
                assert!(r.body.contains("Trust this device"), "{}", r.body);
                (c, true)
            })
        },
    )
    .await
}

/// A failed login POST, a new unknown username each time (the CSRF token fetched once per
/// client and kept beside the jar).
pub async fn failed_login(server: &Server, ticks: f64) -> Rounds {
    in_rounds_with(
        server,
        ticks,
        PBKDF2_1000,
        FLOORED_CLIENTS,
        (ROUNDS, ROUND),
        |client, i, mut c| {
            Box::pin(async move {
                if i == 0 || !c.jar.contains_key("csrf") {
                    let page = c.request("GET", "/auth/login/", None, true).await;
                    c.jar.insert("csrf".into(), csrf(&page.body));
                }
                let token = c.jar["csrf"].clone();
                let form = format!(
                    "username=nobody{client}x{i}&password=wrong&csrf_token={}",
                    enc(&token)
                );
                let saved = c.jar.remove("csrf");
                let r = c.request("POST", "/auth/login/", Some(&form), true).await;
                if let Some(t) = saved {
                    c.jar.insert("csrf".into(), t);
                }
                assert!(
                    r.body.contains("correct username and password"),
                    "{}",
                    r.body
                );
                (c, true)
            })
        },
    )
    .await
}

/// Trusted-device sign-in (GET + POST with the device cookie, which rotates: each user's
/// latest cookie is kept for its next sign-in).
pub async fn trusted_device(server: &Server, ticks: f64, devices: Vec<(String, String)>) -> Rounds {
    let cookies: Arc<Vec<std::sync::Mutex<(String, String)>>> =
        Arc::new(devices.into_iter().map(std::sync::Mutex::new).collect());
    in_rounds(
        server,
        ticks,
        PBKDF2_1000,
        (ROUNDS, ROUND),
        move |client, i, c| {
            let cookies = cookies.clone();
            Box::pin(async move {
                let slot = &cookies[(client * 50 + i % 50) % cookies.len()];
                let (user, cookie) = slot.lock().unwrap().clone();
                let (c, r) =
                    password_login(c, &user, PASSWORD, Some(("modal2fa_device", cookie))).await;
                assert_eq!(r.location.as_deref(), Some("/"), "{}", r.body);
                slot.lock().unwrap().1 = c.jar["modal2fa_device"].clone();
                (c, true)
            })
        },
    )
    .await
}

/// Password login with the default Argon2id, users `plain0..40`, in [`ARGON2_ROUNDS`]
/// rounds of [`ARGON2_ROUND`], from [`SATURATING_CLIENTS`] closed loops: a throughput is
/// measured at saturation, with jobs always waiting in the server's hash pool. (The idle
/// time this run once showed came from the pool, not the clients: 8 clients left the
/// machine as idle as 4 until the pool ran its own workers; docs/PERFORMANCE.md.)
pub async fn argon2_password(server: &Server, ticks: f64) -> Rounds {
    in_rounds_with(
        server,
        ticks,
        PasswordHashing::default(),
        SATURATING_CLIENTS,
        (ARGON2_ROUNDS, ARGON2_ROUND),
        |client, i, c| {
            Box::pin(async move {
                let (c, r) = password_login(
                    c,
                    &format!("plain{}", (client * 10 + i) % 40),
                    PASSWORD,
                    None,
                )
                .await;
                assert_eq!(r.location.as_deref(), Some("/"), "{}", r.body);
                (c, true)
            })
        },
    )
    .await
}

/// The login modal's latency at rest and while Argon2id sign-ins saturate the hash pool,
/// and what the sign-ins did meanwhile.
pub struct ModalUnderLoad {
    /// One closed-loop modal client, nothing else running.
    pub at_rest: Outcome,
    /// The same, while [`SATURATING_CLIENTS`] clients sign in with Argon2id back to back.
    pub loaded: Outcome,
    /// Sign-ins completed while the loaded modal was timed (and just around it).
    pub logins: usize,
    /// Sign-ins refused with 503 (a full pool).
    pub refused: usize,
    /// How long the sign-ins ran, for their rate.
    pub login_wall: Duration,
}

/// GET the login modal from one closed-loop client for [`MODAL_RUN`], at rest, then again
/// while [`SATURATING_CLIENTS`] clients sign in with the default Argon2id (users
/// `plain0..40`) so that every worker of the server's hash pool is busy: hashing must not
/// hold the threads that serve the modal.
pub async fn login_modal_under_argon2_load(server: &Server, ticks: f64) -> ModalUnderLoad {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let modal = |_: usize, _: usize, mut c: Client| -> OpFuture {
        Box::pin(async move {
            let r = c.request("GET", "/auth/login/", None, true).await;
            assert_eq!(r.status, 200);
            (c, true)
        })
    };
    let at_rest = run_clients_for(server, ticks, 1, MODAL_RUN, modal).await;
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..SATURATING_CLIENTS {
        let (stop, logins, refused) = (stop.clone(), logins.clone(), refused.clone());
        let port = server.port;
        tasks.push(tokio::spawn(async move {
            let mut c = Client::new(port);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let user = format!("plain{}", (client * 5 + i) % 40);
                let (cl, r) = password_login(c, &user, PASSWORD, None).await;
                c = cl;
                if r.status == 503 {
                    refused.fetch_add(1, Ordering::Relaxed);
                } else {
                    assert_eq!(r.location.as_deref(), Some("/"), "{}", r.body);
                    logins.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    // Let the pool fill before timing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = run_clients_for(server, ticks, 1, MODAL_RUN, modal).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    ModalUnderLoad {
        at_rest,
        loaded,
        logins: logins.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        login_wall: started.elapsed(),
    }
}
