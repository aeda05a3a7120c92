//! `cargo xtask timing`: builds and runs the timing check in release mode — 200 failed
//! sign-ins each against an unknown user, Django's PBKDF2 at 1 000 000 iterations, an
//! unusable `!` password and an unparsable hash, through `LoginService::submit_password`
//! with real hashing and real waiting — and fails unless the medians of the answer times
//! lie within 10 % of each other (docs/SECURITY.md, "Timing"). About 50 s on two cores
//! once built; `--no-floor` shows the medians without the answer floor.

use std::path::Path;
use std::process::Command;

/// Runs the check, passing `args` to the harness.
pub fn run(args: &[String]) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent folder")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "modal2fa-actix",
            "--example",
            "timing",
            "--",
        ])
        .args(args);
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("the medians differ by more than 10 % (see above)".into())
    }
}
