//! The load harness behind `cargo xtask bench` (see docs/PERFORMANCE.md).
//!
//! `modal2fa-bench <path to the release modal2fa binary>`: seeds a fresh SQLite database,
//! starts the server on 127.0.0.1, runs closed-loop clients per scenario for a bounded
//! time, and reports throughput, p50/p99 latency and the server's CPU per operation (from
//! /proc, so it survives a noisy machine), RSS after load and start-up time, each next
//! to its budget. Results also go to target/bench/results.jsonl.
//!
//! A run is three phases, in this order: the PBKDF2-1000 scenarios against a seeded
//! server ([`pbkdf2_phase`]), the sessions list on that database once the server is gone
//! ([`sessions_phase`]), and the Argon2id throughput on a second database
//! ([`argon2_phase`]).

mod client;
mod procfs;
mod report;
mod scenario;
mod seed;
mod server;

use std::path::{Path, PathBuf};
use std::time::Instant;

use modal2fa_core::model::Page;
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::SessionStore;
use modal2fa_core::system::SystemClock;
use modal2fa_sea_orm::SeaOrmStore;

use report::Report;
use scenario::PBKDF2_1000;
use seed::NowUtc;

/// What every phase needs.
struct Bench {
    /// The release `modal2fa` binary.
    bin: PathBuf,
    /// Clock ticks per second of `/proc/<pid>/stat`.
    ticks: f64,
    /// Available cores.
    cores: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: modal2fa-bench <modal2fa binary>"),
    );
    let bench = Bench {
        bin,
        ticks: procfs::clock_ticks(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64,
    };
    let root = std::env::temp_dir().join(format!("modal2fa-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut report = Report::default();

    let store = pbkdf2_phase(&bench, &root.join("pbkdf2"), &mut report).await;
    sessions_phase(&store, &mut report).await;
    argon2_phase(&bench, &root.join("argon2"), &mut report).await;

    report.finish(bench.cores);
    let _ = std::fs::remove_dir_all(&root);
}

/// PBKDF2 at 1 000 iterations (the original's cheap hash): seeds the users, starts the
/// server, times its start-up, runs every scenario and reads its RSS after them. Returns
/// the seeded database's store for the sessions phase.
async fn pbkdf2_phase(bench: &Bench, dir: &Path, report: &mut Report) -> SeaOrmStore {
    std::fs::create_dir_all(dir).unwrap();
    let (auth, store) = seed::services(dir, PBKDF2_1000).await;
    eprintln!("seeding users …");
    let seeded = seed::pbkdf2_users(&auth).await;
    drop(auth);
    let server = server::start(&bench.bin, dir, PBKDF2_1000).await;
    report.startup(&server);
    let ticks = bench.ticks;

    eprintln!("GET login modal …");
    let r = scenario::login_modal(&server, ticks).await;
    report.scenario("GET login modal", &r, 0.0, 0.13, "6.7 ms");

    eprintln!("password login …");
    let r = scenario::password(&server, ticks).await;
    report.scenario(
        "password login (GET + POST), PBKDF2-1000",
        &r,
        1.0,
        1.0,
        "26 ms",
    );

    eprintln!("password + TOTP login …");
    let r = scenario::password_and_totp(&server, ticks, seeded.totp).await;
    report.scenario(
        "password + TOTP login (4 requests), PBKDF2-1000",
        &r,
        1.0,
        2.0,
        "47.5 ms",
    );

    eprintln!("failed login …");
    let r = scenario::failed_login(&server, ticks).await;
    report.scenario("failed login POST", &r, 1.0, 0.5, "16.5 ms");

    eprintln!("trusted-device sign-in …");
    let r = scenario::trusted_device(&server, ticks, seeded.devices).await;
    report.scenario(
        "trusted-device sign-in (GET + POST), PBKDF2-1000",
        &r,
        1.0,
        1.0,
        "n/a",
    );

    report.rss(procfs::rss_mib(server.pid));
    server.stop().await;
    store
}

/// Inserts 100 000 sessions and times the first page of the admin's sessions list (the
/// median of 30 reads).
async fn sessions_phase(store: &SeaOrmStore, report: &mut Report) {
    eprintln!("sessions list with 100 000 sessions …");
    seed::sessions(store, 100_000).await;
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let page = store
            .list_active(SystemClock.now_utc(), Page::first(50))
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.len(), 50);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    report.sessions_list(times[times.len() / 2]);
}

/// The default Argon2id: password-login throughput against the physical limit, `cores ÷
/// (a hash's time with every core hashing)`. The machine's speed drifts by tens of percent
/// over minutes, so the throughput is taken in short rounds, each between two timings of
/// the lone hash, scaled by the all-cores-to-lone ratio timed once; each round gives its
/// own ratio and the median is the figure. Then the login modal's p99 at rest and while
/// Argon2id sign-ins saturate the server's hash pool.
async fn argon2_phase(bench: &Bench, dir: &Path, report: &mut Report) {
    std::fs::create_dir_all(dir).unwrap();
    let (auth, _) = seed::services(dir, PasswordHashing::default()).await;
    for i in 0..40 {
        seed::create(&auth, &format!("plain{i}")).await;
    }
    drop(auth);
    // Timed together, so their ratio (the cost of every core hashing at once: shared cache
    // and memory bandwidth) holds while the machine's speed drifts.
    let hash_all_cores =
        scenario::hash_seconds_on(PasswordHashing::default(), bench.cores as usize);
    let hash_alone = scenario::hash_seconds_on(PasswordHashing::default(), 1);
    let server = server::start(&bench.bin, dir, PasswordHashing::default()).await;
    let pid = server.pid.to_string();
    let faults0 = procfs::minor_faults(&pid);
    let r = scenario::argon2_password(&server, bench.ticks).await;
    let faults = (procfs::minor_faults(&pid) - faults0) as f64 / r.all.ops.max(1) as f64;
    report.argon2(&r, bench.cores, (hash_alone, hash_all_cores), faults);
    eprintln!("login modal at rest and while Argon2id logins saturate the pool …");
    let m = scenario::login_modal_under_argon2_load(&server, bench.ticks).await;
    report.modal_under_load(&m);
    server.stop().await;
}
