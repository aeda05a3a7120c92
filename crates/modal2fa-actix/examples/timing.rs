//! The timing check behind `cargo xtask timing` (docs/SECURITY.md, "Timing"): the answer
//! time of a failed password step, measured through `LoginService::submit_password` over
//! the in-memory ports with the real adapters for hashing ([`TokioHashPool`]) and waiting
//! ([`TokioDelay`]), for four stored hashes: an unknown user, Django's PBKDF2 at 1 000 000
//! iterations, Django's unusable `!` password and an unparsable hash. 200 failed attempts
//! each; it prints every case's median and the spread of the medians, and fails unless
//! they are all within 10 % of each other.
//!
//! Attempts of a case run concurrently in batches small enough that their hashing fits
//! inside the floor on this machine's cores (a bigger batch would measure queueing on the
//! pool, not the answer): PBKDF2 attempts one per core, the others ten at a time.
//! `--no-floor` measures with a floor of zero, which shows what the floor hides.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modal2fa_actix::{TokioDelay, TokioHashPool};
use modal2fa_core::lockout::LockoutSettings;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::RequestContext;
use modal2fa_core::password::{DJANGO_PBKDF2, measure_answer_floor};
use modal2fa_core::services::{NewAccount, PasswordLogin};
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;

/// Failed attempts per case.
const ATTEMPTS: usize = 200;
/// The medians must lie within this fraction of the smallest.
const TOLERANCE: f64 = 0.10;
/// Django: make_password("hunter2 hunter2", "abcdefghijklmnopqrstuv"), 1 000 000 iterations.
const DJANGO_1M: &str =
    "pbkdf2_sha256$1000000$abcdefghijklmnopqrstuv$i0DD2HI2m9WWAvBZMOSdak4zdLdrEK+r6b8VDt1stCM=";

struct Case {
    name: &'static str,
    username: &'static str,
    stored: Option<&'static str>,
    /// Whether one verification costs the legacy hash's CPU (then one attempt per core).
    legacy: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "unknown user",
        username: "nobody",
        stored: None,
        legacy: false,
    },
    Case {
        name: "Django PBKDF2, 1M iterations",
        username: "legacy",
        stored: Some(DJANGO_1M),
        legacy: true,
    },
    Case {
        name: "unusable `!` password",
        username: "unusable",
        stored: Some("!9nd6P3fVjQm2xkT1uRb8sYcWz4LhA0eGoJtKqNv"),
        legacy: false,
    },
    Case {
        name: "unparsable hash",
        username: "garbled",
        stored: Some("md5$not$a-hash"),
        legacy: false,
    },
];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn attempt(auth: &Modal2fa, username: &str, n: usize) -> Duration {
    // Each attempt from its own address: the address's counter stays below its budget.
    let ip = format!("10.{}.{}.{}", n / 65_536 % 256, n / 256 % 256, n % 256);
    let ctx = RequestContext::new(ip.parse().unwrap(), "timing", "/auth/login/");
    let form = PasswordLogin {
        username: username.into(),
        password: "a wrong password".into(),
        trusted_device_cookie: None,
    };
    let started = Instant::now();
    let report = auth
        .login
        .submit_password(&LoginState::Anonymous, form, &ctx)
        .await
        .expect("the sign-in answers");
    let took = started.elapsed();
    assert_eq!(
        report.outcome,
        Outcome::Refused(Refusal::InvalidCredentials)
    );
    took
}

#[tokio::main]
async fn main() -> ExitCode {
    let no_floor = std::env::args().any(|a| a == "--no-floor");
    let began = Instant::now();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scheme = Settings::default().password_hashing;
    let floor = if no_floor {
        Duration::ZERO
    } else {
        tokio::task::spawn_blocking(move || {
            measure_answer_floor(scheme, &[DJANGO_PBKDF2], &TokioDelay)
        })
        .await
        .expect("the measurement ran")
        .expect("the schemes are valid")
    };
    println!(
        "timing: default Argon2id, {workers} hash workers, answer floor {} ms{}",
        floor.as_millis(),
        if no_floor { " (--no-floor)" } else { "" }
    );

    let mut mem = MemoryPorts::new();
    mem.ports.hash_pool = Arc::new(TokioHashPool::new(workers, 64));
    mem.ports.delay = Arc::new(TokioDelay);
    let many = 1_000_000;
    let settings = Settings {
        password_answer_floor: floor,
        lockout: LockoutSettings {
            user_failed_attempts: many,
            ip_failed_attempts: many,
            max_consecutive_failures: many,
            ..LockoutSettings::default()
        },
        ..Settings::default()
    };
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        settings,
        &ServerSecret::new(vec![7; 32]).unwrap(),
    );
    for case in CASES.iter().filter(|c| c.stored.is_some()) {
        let account = NewAccount {
            username: case.username.into(),
            email: None,
            first_name: String::new(),
            last_name: String::new(),
            password: None,
            superuser: false,
        };
        let user = auth.account.create_user(account).await.expect("seeded");
        mem.users.edit(user.id, |u| {
            u.password_hash = case.stored.map(str::to_owned)
        });
    }

    let mut medians = Vec::new();
    let mut n = 0;
    for case in CASES {
        let batch = if case.legacy { workers } else { 10 };
        let mut samples = Vec::with_capacity(ATTEMPTS);
        while samples.len() < ATTEMPTS {
            let size = batch.min(ATTEMPTS - samples.len());
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..size {
                let (auth, username) = (auth.clone(), case.username);
                n += 1;
                let i = n;
                tasks.spawn(async move { attempt(&auth, username, i).await });
            }
            samples.extend(tasks.join_all().await);
        }
        let m = median(samples);
        println!(
            "timing: {:<30} median {:>7.1} ms over {ATTEMPTS} attempts",
            case.name,
            m.as_secs_f64() * 1e3
        );
        medians.push(m);
    }
    let (low, high) = (
        medians.iter().min().copied().unwrap_or_default(),
        medians.iter().max().copied().unwrap_or_default(),
    );
    let spread = (high.as_secs_f64() - low.as_secs_f64()) / low.as_secs_f64().max(1e-9);
    println!(
        "timing: spread of the medians {:.1} % (budget {:.0} %), run time {:.0} s",
        spread * 100.0,
        TOLERANCE * 100.0,
        began.elapsed().as_secs_f64()
    );
    if spread <= TOLERANCE {
        ExitCode::SUCCESS
    } else {
        eprintln!("timing: a failed sign-in's answer time depends on the stored hash");
        ExitCode::FAILURE
    }
}
