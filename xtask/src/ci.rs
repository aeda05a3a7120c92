//! `cargo xtask ci`: the checks of `.ci/run`, without provisioning any service.
//!
//! The model: CI is a fixed sequence of named steps, run in order — the format check, the
//! tidy rules, the backend features, clippy with warnings denied, the workspace's tests,
//! packaging of the publishable crates and the browser suite.
//! Each step is announced before it runs; the first that fails stops the sequence, and the
//! error names it. `.ci/run` additionally installs and starts PostgreSQL, MariaDB and
//! Chromium and sets the database URLs; here the database tests on those backends skip
//! themselves unless `MODAL2FA_TEST_POSTGRES_URL` / `MODAL2FA_TEST_MYSQL_URL` are set, and
//! the browser step fails if Chromium or Node.js is missing.
//!
//! Tidy and the browser suite run in-process ([`crate::tidy::run`], [`crate::e2e::run`]);
//! the others are `cargo` commands at the workspace root.

use std::path::Path;
use std::process::Command;

/// One step of the sequence: the name it is announced and reported by, and its work.
pub struct Step<'a> {
    /// What the step checks, as announced.
    pub name: &'a str,
    /// Runs the step; an error says what failed.
    pub run: Box<dyn FnMut() -> Result<(), String> + 'a>,
}

impl<'a> Step<'a> {
    /// A step named `name` that runs `run`.
    pub fn new(name: &'a str, run: impl FnMut() -> Result<(), String> + 'a) -> Self {
        Self {
            name,
            run: Box::new(run),
        }
    }
}

/// The workspace members that are never published (`publish = false`): packaging skips them.
pub const INTERNAL: [&str; 5] = [
    "modal2fa-server",
    "modal2fa-bench",
    "xtask",
    "axum-minimal",
    "actix-host",
];

/// The steps of `.ci/run`, in its order.
pub fn steps() -> Vec<Step<'static>> {
    vec![
        Step::new("format (cargo fmt --all -- --check)", || {
            cargo(&["fmt", "--all", "--", "--check"])
        }),
        Step::new("tidy (cargo xtask tidy)", || {
            crate::tidy::run()
                .map_err(|problems| problems.iter().map(|p| format!("\n  tidy: {p}")).collect())
        }),
        Step::new(
            "backend features (cargo xtask features)",
            crate::features::run,
        ),
        Step::new(
            "lint (cargo clippy --workspace --all-targets -- -D warnings)",
            || {
                cargo(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
            },
        ),
        Step::new("test (cargo test --workspace)", || {
            cargo(&["test", "--workspace"])
        }),
        Step::new(
            "packaging (cargo package --workspace --exclude modal2fa-server --exclude modal2fa-bench --exclude xtask --exclude axum-minimal --exclude actix-host --allow-dirty)",
            || {
                forget_unpacked_workspace_crates()?;
                let mut args = vec!["package", "--workspace"];
                for internal in INTERNAL {
                    args.extend(["--exclude", internal]);
                }
                args.push("--allow-dirty");
                cargo(&args)
            },
        ),
        Step::new("browser end-to-end (cargo xtask e2e)", crate::e2e::run),
    ]
}

/// Runs `steps` in order, calling `announce` with each name before it runs; stops at the
/// first failure, whose error names the step.
pub fn run_steps(steps: Vec<Step<'_>>, mut announce: impl FnMut(&str)) -> Result<(), String> {
    for mut step in steps {
        announce(step.name);
        (step.run)().map_err(|problem| format!("step `{}` failed: {problem}", step.name))?;
    }
    Ok(())
}

/// Runs every step of `.ci/run`, announcing each on stdout.
pub fn run() -> Result<(), String> {
    run_steps(steps(), |name| println!("\n== ci: {name}"))
}

/// Removes cargo's unpacked copies of this workspace's crates from earlier packaging runs.
/// `cargo package` verifies each `.crate` against the others through a local registry
/// whose sources it unpacks under `$CARGO_HOME/registry/src/-<hash>/` and never refreshes
/// for the same name and version, so an earlier run's copy would be built instead of this
/// checkout's. Only `modal2fa-*` directories of those local registries are removed.
fn forget_unpacked_workspace_crates() -> Result<(), String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let Ok(registries) = std::fs::read_dir(home.join("registry/src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for unpacked in std::fs::read_dir(registry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if unpacked
                .file_name()
                .to_string_lossy()
                .starts_with("modal2fa-")
            {
                std::fs::remove_dir_all(unpacked.path())
                    .map_err(|e| format!("cannot remove {}: {e}", unpacked.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Runs `cargo <args>` at the workspace root.
fn cargo(args: &[&str]) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent folder")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run {cargo} {}: {e}", args.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} exited with {status}", args.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn every_step_runs_in_order_and_is_announced_before_it_runs() {
        let log = RefCell::new(Vec::new());
        let result = run_steps(
            vec![
                Step::new("first", || {
                    log.borrow_mut().push("ran first".to_owned());
                    Ok(())
                }),
                Step::new("second", || {
                    log.borrow_mut().push("ran second".to_owned());
                    Ok(())
                }),
            ],
            |name| log.borrow_mut().push(format!("announced {name}")),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(
            log.into_inner(),
            [
                "announced first",
                "ran first",
                "announced second",
                "ran second"
            ]
        );
    }

    #[test]
    fn the_first_failure_stops_the_sequence_and_names_its_step() {
        let ran = RefCell::new(Vec::new());
        let result = run_steps(
            vec![
                Step::new("format", || {
                    ran.borrow_mut().push("format");
                    Ok(())
                }),
                Step::new("lint", || {
                    ran.borrow_mut().push("lint");
                    Err("cargo clippy exited with exit status: 101".to_owned())
                }),
                Step::new("test", || {
                    ran.borrow_mut().push("test");
                    Ok(())
                }),
            ],
            |_| {},
        );
        assert_eq!(
            result,
            Err("step `lint` failed: cargo clippy exited with exit status: 101".to_owned())
        );
        assert_eq!(ran.into_inner(), ["format", "lint"]);
    }

    #[test]
    fn packaging_excludes_exactly_the_members_that_are_never_published() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut manifests = vec![
            root.join("xtask/Cargo.toml"),
            root.join("migrations/Cargo.toml"),
        ];
        manifests.push(root.join("web-assets/Cargo.toml"));
        for dir in ["crates", "examples"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                manifests.push(entry.unwrap().path().join("Cargo.toml"));
            }
        }
        let mut unpublished = Vec::new();
        for manifest in manifests {
            let text = std::fs::read_to_string(&manifest).unwrap();
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("name = "))
                .unwrap()
                .trim_matches('"')
                .to_owned();
            if text.lines().any(|l| l.trim() == "publish = false") {
                unpublished.push(name);
            }
        }
        unpublished.sort();
        let mut internal = INTERNAL.map(str::to_owned).to_vec();
        internal.sort();
        assert_eq!(unpublished, internal);
    }

    #[test]
    fn the_sequence_runs_the_cargo_commands_of_dot_ci_run_in_its_order() {
        let script = include_str!("../../.ci/run");
        let in_script: Vec<&str> = script
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("cargo ") && *l != "cargo --version")
            .collect();
        let announced: Vec<&str> = steps()
            .iter()
            .map(|s| {
                let open = s.name.find('(').expect("a command in parentheses");
                s.name[open + 1..].trim_end_matches(')')
            })
            .collect();
        assert_eq!(announced, in_script);
    }
}
