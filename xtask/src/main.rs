//! `cargo xtask <command>`: the project's own automation.
//!
//! - `tidy` — fails when `modal2fa-core` gains a (transitive, non-dev) dependency on a web
//!   framework, database driver, async runtime or network crate, or when an adapter
//!   depends on another adapter (or on the web layer), or the web layer on an adapter; or
//!   when the web assets' `VENDORED` list and the vendor task's packages disagree, or a
//!   workspace member does not opt into the workspace lints.
//! - `vendor` — refreshes the vendored front-end files from the npm registry.
//! - `e2e` — the browser end-to-end suite against the reference server (headless Chromium).
//! - `bench` — criterion benches and the HTTP load harness with its budgets.
//! - `timing` — 200 failed sign-ins per stored-hash class (unknown user, Django PBKDF2 at
//!   1M iterations, unusable `!`, unparsable) through the login service in release mode;
//!   fails unless the answer times' medians lie within 10 % of each other.
//! - `features` — each of `modal2fa-sea-orm`'s backend features alone brings its own
//!   sqlx driver and no other; the SQLite-only build compiles.
//! - `ci` — the checks of `.ci/run` in its order (format, tidy, clippy, tests, e2e) without
//!   provisioning services; stops at the first failing step and names it.

mod bench;
mod ci;
mod e2e;
mod features;
mod tidy;
mod timing;
mod vendor;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") => match tidy::run() {
            Ok(()) => {
                println!(
                    "tidy: the dependency rule holds, the vendored lists agree and every crate opts into the workspace lints"
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for p in problems {
                    eprintln!("tidy: {p}");
                }
                ExitCode::FAILURE
            }
        },
        Some("vendor") => match vendor::run() {
            Ok(()) => {
                println!("vendor: web-assets/static/vendor is up to date");
                ExitCode::SUCCESS
            }
            Err(problem) => {
                eprintln!("vendor: {problem}");
                ExitCode::FAILURE
            }
        },
        Some("e2e") => match e2e::run() {
            Ok(()) => {
                println!("e2e: the browser tests passed");
                ExitCode::SUCCESS
            }
            Err(problem) => {
                eprintln!("e2e: {problem}");
                ExitCode::FAILURE
            }
        },
        Some("bench") => match bench::run_all(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(problem) => {
                eprintln!("bench: {problem}");
                ExitCode::FAILURE
            }
        },
        Some("timing") => match timing::run(&args[1..]) {
            Ok(()) => {
                println!("timing: a failed sign-in answers alike whatever the stored hash");
                ExitCode::SUCCESS
            }
            Err(problem) => {
                eprintln!("timing: {problem}");
                ExitCode::FAILURE
            }
        },
        Some("features") => match features::run() {
            Ok(()) => {
                println!("features: each backend feature compiles its own driver only");
                ExitCode::SUCCESS
            }
            Err(problem) => {
                eprintln!("features: {problem}");
                ExitCode::FAILURE
            }
        },
        Some("ci") => match ci::run() {
            Ok(()) => {
                println!("\nci: every step passed");
                ExitCode::SUCCESS
            }
            Err(problem) => {
                eprintln!("\nci: {problem}");
                ExitCode::FAILURE
            }
        },
        other => {
            if let Some(cmd) = other {
                eprintln!("unknown command: {cmd}");
            }
            eprintln!("usage: cargo xtask <tidy|vendor|e2e|bench|timing|features|ci>");
            ExitCode::from(2)
        }
    }
}
