//! `cargo xtask bench`: builds the server and the load harness in release mode, runs the
//! criterion benches of the core and the store, then the HTTP harness (docs/PERFORMANCE.md).

use std::path::{Path, PathBuf};
use std::process::Command;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

pub fn run_all(args: &[String]) -> Result<(), String> {
    let root = root();
    let only_http = args.iter().any(|a| a == "--http-only");
    run(Command::new(cargo()).current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "modal2fa-server",
        "-p",
        "modal2fa-bench",
    ]))?;
    if !only_http {
        run(Command::new(cargo()).current_dir(&root).args([
            "bench",
            "-p",
            "modal2fa-core",
            "--bench",
            "core",
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "3",
        ]))?;
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let server = target.join("release/modal2fa");
    run(Command::new(target.join("release/modal2fa-bench"))
        .current_dir(&root)
        .arg(server))
}
