//! `cargo xtask vendor`: fetches the pinned front-end packages from the npm registry and
//! copies the few files the web layer serves into `web-assets/static/vendor/`.
//!
//! Each package is fetched with `npm pack <name>@<version>` into a temporary folder, its
//! tarball's integrity is checked against the pinned one, and the tarball is unpacked with
//! `tar -xzf`. The chosen files are copied (minified files without their
//! `sourceMappingURL` comment lines, since no source maps are shipped), next to the
//! package's licence and a `VERSION` file. The package list here is mirrored by
//! `modal2fa_web_assets::VENDORED`; `cargo xtask tidy` checks that the two agree.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One pinned npm package and the files taken from it.
pub struct Package {
    /// The npm package name.
    pub name: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// The tarball's subresource integrity as the registry reports it.
    pub integrity: &'static str,
    /// The folder under `web-assets/static/vendor/`.
    pub dir: &'static str,
    /// `(path inside the package, file name in the folder)`; the licence is one of them.
    pub files: &'static [(&'static str, &'static str)],
}

/// Every vendored package, pinned.
pub const PACKAGES: &[Package] = &[
    Package {
        name: "bootstrap",
        version: "5.3.9",
        integrity: "sha512-20cU0rcfw8WdxtVbmfU+xT2EjvVTw9Ror/h1Qvd7DXCujRg8OO9mdBCsmTHdJFf3BuadmBNJtgIuUXsBqSkk/w==",
        dir: "bootstrap",
        files: &[
            ("dist/css/bootstrap.min.css", "bootstrap.min.css"),
            ("dist/js/bootstrap.bundle.min.js", "bootstrap.bundle.min.js"),
            ("LICENSE", "LICENSE"),
        ],
    },
    Package {
        name: "htmx.org",
        version: "2.0.11",
        integrity: "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        dir: "htmx",
        files: &[("dist/htmx.min.js", "htmx.min.js"), ("LICENSE", "LICENSE")],
    },
    Package {
        name: "@simplewebauthn/browser",
        version: "14.0.0",
        integrity: "sha512-1odWVqeEBTl7lJ9zMKLEsmTlnyrDO5iRcTvfMKKk1WThUnp/i8JJdffdj2icP+tty159s4PgwE3BiMoEW9NFow==",
        dir: "simplewebauthn",
        files: &[
            (
                "dist/bundle/index.umd.min.js",
                "simplewebauthn-browser.umd.min.js",
            ),
            ("LICENSE.md", "LICENSE.md"),
        ],
    },
];

/// Fetches every package in [`PACKAGES`] and rewrites `web-assets/static/vendor/`.
pub fn run() -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent folder")?;
    let vendor = root.join("web-assets/static/vendor");
    let work = std::env::temp_dir().join(format!("modal2fa-vendor-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let result = PACKAGES
        .iter()
        .try_for_each(|p| vendor_one(p, &work, &vendor));
    let _ = fs::remove_dir_all(&work);
    result
}

fn vendor_one(pkg: &Package, work: &Path, vendor: &Path) -> Result<(), String> {
    let spec = format!("{}@{}", pkg.name, pkg.version);
    println!("vendor: {spec}");
    let tarball = npm_pack(&spec, pkg.integrity, work)?;

    let unpacked = work.join(pkg.dir);
    fs::create_dir_all(&unpacked)
        .map_err(|e| format!("cannot create {}: {e}", unpacked.display()))?;
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !status.success() {
        return Err(format!("tar -xzf {} failed: {status}", tarball.display()));
    }
    // npm tarballs keep everything under `package/`.
    let package = unpacked.join("package");

    let dest = vendor.join(pkg.dir);
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(|e| format!("cannot clear {}: {e}", dest.display()))?;
    }
    fs::create_dir_all(&dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    for (from, to) in pkg.files {
        let src = package.join(from);
        let bytes = fs::read(&src).map_err(|e| format!("{spec}: cannot read {from}: {e}"))?;
        let bytes = if from.ends_with(".js") || from.ends_with(".css") {
            strip_source_maps(&bytes)
        } else {
            bytes
        };
        if bytes.is_empty() {
            return Err(format!("{spec}: {from} is empty"));
        }
        let out = dest.join(to);
        fs::write(&out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        println!("  {} ({} bytes)", out.display(), bytes.len());
    }
    let version = dest.join("VERSION");
    fs::write(&version, format!("{} {}\n", pkg.name, pkg.version))
        .map_err(|e| format!("cannot write {}: {e}", version.display()))?;
    Ok(())
}

/// Runs `npm pack` for `spec` into `dest`, checks the integrity, returns the tarball path.
fn npm_pack(spec: &str, integrity: &str, dest: &Path) -> Result<PathBuf, String> {
    let out = Command::new("npm")
        .args(["pack", spec, "--json", "--pack-destination"])
        .arg(dest)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm pack {spec} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("npm pack {spec}: unexpected output: {e}"))?;
    let entry = json
        .get(0)
        .ok_or_else(|| format!("npm pack {spec}: empty output"))?;
    let got = entry["integrity"].as_str().unwrap_or_default();
    if got != integrity {
        return Err(format!(
            "npm pack {spec}: integrity {got} differs from the pinned {integrity}"
        ));
    }
    let filename = entry["filename"]
        .as_str()
        .ok_or_else(|| format!("npm pack {spec}: no filename in output"))?;
    Ok(dest.join(filename))
}

/// Drops every line that is only a source-map comment (`//# sourceMappingURL=...` or
/// `/*# sourceMappingURL=... */`).
pub fn strip_source_maps(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let t = text.trim();
        let is_map = (t.starts_with("//# sourceMappingURL=")
            || t.starts_with("//@ sourceMappingURL="))
            || (t.starts_with("/*# sourceMappingURL=") && t.ends_with("*/"));
        if !is_map {
            out.extend_from_slice(line);
        }
    }
    // A file whose last line was the map comment now ends with a newline; that is fine.
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_map_comment_lines_are_dropped_and_everything_else_is_kept() {
        let js = b"!function(){}();\n//# sourceMappingURL=x.min.js.map\n";
        assert_eq!(strip_source_maps(js), b"!function(){}();\n");
        let css = b"a{b:c}\n/*# sourceMappingURL=x.min.css.map */";
        assert_eq!(strip_source_maps(css), b"a{b:c}\n");
        let plain = b"var s = '//# sourceMappingURL=inside a string';\nx()";
        assert_eq!(strip_source_maps(plain), plain);
    }

    #[test]
    fn every_package_takes_a_licence_and_uses_its_own_folder() {
        let mut dirs: Vec<_> = PACKAGES.iter().map(|p| p.dir).collect();
        dirs.sort_unstable();
        dirs.dedup();
        assert_eq!(dirs.len(), PACKAGES.len());
        for p in PACKAGES {
            assert!(
                p.files.iter().any(|(from, _)| from.starts_with("LICENSE")),
                "{} has no licence",
                p.name
            );
            assert!(p.integrity.starts_with("sha512-"), "{}", p.name);
        }
    }
}
