//! `cargo xtask features`: a host on one database compiles one database driver.
//!
//! The model: `modal2fa-sea-orm`'s backend features (`sqlite`, `postgres`, `mysql`) each
//! pull in exactly one sqlx driver crate. For each feature alone, the normal dependency
//! tree of `modal2fa-sea-orm` must hold that feature's driver and neither of the others,
//! and the SQLite-only build (the common embedded case) must compile. A failure names the
//! feature and the driver that should not be there.

use std::path::Path;
use std::process::Command;

/// Each backend feature and the sqlx driver crate it brings.
pub const BACKENDS: [(&str, &str); 3] = [
    ("sqlite", "sqlx-sqlite"),
    ("postgres", "sqlx-postgres"),
    ("mysql", "sqlx-mysql"),
];

/// What is wrong with the crates a feature alone brings: its own driver missing, or
/// another's present. `crates` are the package names of the dependency tree.
pub fn problems(feature: &str, crates: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (other, driver) in BACKENDS {
        let present = crates.contains(&driver);
        if other == feature && !present {
            out.push(format!("feature `{feature}` alone does not bring {driver}"));
        }
        if other != feature && present {
            out.push(format!("feature `{feature}` alone also compiles {driver}"));
        }
    }
    out
}

/// Checks every backend feature alone; compiles the SQLite-only build.
pub fn run() -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent folder")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut all = Vec::new();
    for (feature, _) in BACKENDS {
        let out = Command::new(&cargo)
            .current_dir(root)
            .args(["tree", "-p", "modal2fa-sea-orm", "--no-default-features"])
            .args(["--features", feature, "-e", "normal", "--prefix", "none"])
            .output()
            .map_err(|e| format!("cannot run cargo tree: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo tree for feature `{feature}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let crates: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        all.extend(problems(feature, &crates));
    }
    if !all.is_empty() {
        return Err(all.join("; "));
    }
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["check", "-p", "modal2fa-sea-orm", "--no-default-features"])
        .args(["--features", "sqlite"])
        .status()
        .map_err(|e| format!("cannot run cargo check: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the SQLite-only build of modal2fa-sea-orm failed: {status}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feature_with_its_own_driver_only_has_no_problem() {
        assert!(problems("sqlite", &["sea-orm", "sqlx-sqlite", "sqlx-core"]).is_empty());
    }

    #[test]
    fn another_backends_driver_is_named_with_the_feature() {
        assert_eq!(
            problems("sqlite", &["sqlx-sqlite", "sqlx-postgres"]),
            ["feature `sqlite` alone also compiles sqlx-postgres"]
        );
    }

    #[test]
    fn a_feature_without_its_driver_is_named() {
        assert_eq!(
            problems("mysql", &["sqlx-core"]),
            ["feature `mysql` alone does not bring sqlx-mysql"]
        );
    }
}
