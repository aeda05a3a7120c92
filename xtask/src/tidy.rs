//! `cargo xtask tidy`: the workspace's structural rules, each a pure check that returns
//! every violation as a sentence naming what is wrong.
//!
//! - The dependency rule (docs/ARCHITECTURE.md), checked on `cargo metadata`: the core
//!   reaches no framework, driver, runtime or network crate; adapters and the web layer do
//!   not depend on each other.
//! - The vendored front-end packages: `VENDORED` in `web-assets/src/lib.rs` (read as text,
//!   so xtask does not depend on the web assets) and [`PACKAGES`] of `cargo xtask vendor`
//!   list the same names at the same versions.
//! - The workspace lints: every workspace member (from `cargo metadata`) opts into them in
//!   its manifest, `[lints]` with `workspace = true` (or the dotted or inline form at the
//!   top level); the manifest is read as text, one line at a time.
//!
//! [`run`] gathers the inputs (metadata, files) and reports the violations of all checks.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::vendor::PACKAGES;

/// Crate-name prefixes `modal2fa-core` must never depend on, directly or not.
pub const FORBIDDEN_IN_CORE: &[&str] = &[
    "actix",
    "sea-orm",
    "sea-query",
    "sqlx",
    "lettre",
    "oauth2",
    "openidconnect",
    "reqwest",
    "hyper",
    "tera",
    "tokio",
    "async-std",
    "axum",
    "rocket",
    "warp",
    "h2",
    "rustls",
    "native-tls",
    "openssl",
];

/// The adapters: each may depend on the core (and the SeaORM adapter on the migrations),
/// never on another adapter or the web layer.
pub const ADAPTERS: &[&str] = &["modal2fa-sea-orm", "modal2fa-lettre", "modal2fa-entra"];

/// The web layer: depends on the core and the web assets, never on an adapter.
pub const WEB: &str = "modal2fa-actix";

/// The web-assets file that lists the vendored packages, relative to the workspace root.
pub const VENDORED_FILE: &str = "web-assets/src/lib.rs";

/// Runs every check on the real workspace; returns all violations.
pub fn run() -> Result<(), Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| vec!["xtask has no parent folder".to_owned()])?;
    let meta = metadata()?;
    let mut problems = check_dependency_rule(&meta).err().unwrap_or_default();

    let pinned: Vec<(&str, &str)> = PACKAGES.iter().map(|p| (p.name, p.version)).collect();
    let vendored = std::fs::read_to_string(root.join(VENDORED_FILE))
        .map_err(|e| format!("cannot read {VENDORED_FILE}: {e}"))
        .and_then(|src| parse_vendored(&src));
    match vendored {
        Ok(vendored) => problems.extend(check_vendored(&vendored, &pinned)),
        Err(problem) => problems.push(problem),
    }

    let mut manifests = Vec::new();
    for member in workspace_members(&meta) {
        match std::fs::read_to_string(&member.manifest_path) {
            Ok(text) => manifests.push((member, text)),
            Err(e) => problems.push(format!(
                "cannot read {}'s manifest {}: {e}",
                member.name, member.shown_path
            )),
        }
    }
    problems.extend(check_workspace_lints(&manifests));

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Parsed `cargo metadata --format-version 1` of the workspace.
fn metadata() -> Result<Value, Vec<String>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1"])
        .output()
        .map_err(|e| vec![format!("cannot run cargo metadata: {e}")])?;
    if !out.status.success() {
        return Err(vec![format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )]);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| vec![format!("bad metadata: {e}")])
}

fn is_forbidden(name: &str) -> bool {
    FORBIDDEN_IN_CORE.iter().any(|p| {
        name == *p || name.starts_with(&format!("{p}-")) || name.starts_with(&format!("{p}_"))
    })
}

/// Checks the dependency rule on parsed `cargo metadata` output; returns every violation.
pub fn check_dependency_rule(meta: &Value) -> Result<(), Vec<String>> {
    let packages: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in meta["resolve"]["nodes"].as_array().into_iter().flatten() {
        let Some(id) = node["id"].as_str() else {
            continue;
        };
        let deps = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["kind"].as_str() != Some("dev"))
            })
            .filter_map(|d| d["pkg"].as_str())
            .collect();
        edges.insert(id, deps);
    }
    let id_of = |name: &str| {
        packages
            .iter()
            .find(|(_, n)| **n == name)
            .map(|(id, _)| *id)
    };
    let mut problems = Vec::new();

    match id_of("modal2fa-core") {
        None => problems.push("modal2fa-core is not in the workspace".to_owned()),
        Some(core) => {
            // Breadth-first over normal and build edges, remembering one path to each crate.
            let mut parent: HashMap<&str, &str> = HashMap::new();
            let mut queue = VecDeque::from([core]);
            let mut seen = BTreeSet::from([core]);
            while let Some(id) = queue.pop_front() {
                for dep in edges.get(id).into_iter().flatten() {
                    if seen.insert(dep) {
                        parent.insert(dep, id);
                        queue.push_back(dep);
                    }
                }
            }
            for id in seen {
                let name = packages.get(id).copied().unwrap_or(id);
                if is_forbidden(name) {
                    let mut path = vec![name];
                    let mut cur = id;
                    while let Some(p) = parent.get(cur) {
                        path.push(packages.get(p).copied().unwrap_or(p));
                        cur = p;
                    }
                    path.reverse();
                    problems.push(format!(
                        "modal2fa-core must not depend on {name} (via {})",
                        path.join(" -> ")
                    ));
                }
            }
        }
    }

    for from in ADAPTERS.iter().copied().chain([WEB]) {
        let Some(id) = id_of(from) else { continue };
        for dep in edges.get(id).into_iter().flatten() {
            let name = packages.get(dep).copied().unwrap_or(dep);
            let bad = if from == WEB {
                ADAPTERS.contains(&name)
            } else {
                ADAPTERS.contains(&name) || name == WEB
            };
            if bad {
                problems.push(format!("{from} must not depend on {name}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The `(name, version)` pairs of `pub const VENDORED` in the text of
/// `web-assets/src/lib.rs`, in their order. Line comments are ignored; an error says what
/// is missing or malformed.
pub fn parse_vendored(src: &str) -> Result<Vec<(String, String)>, String> {
    let start = src
        .find("pub const VENDORED")
        .ok_or_else(|| format!("{VENDORED_FILE} has no `pub const VENDORED`"))?;
    let rest = &src[start..];
    // The list starts after the `=`: the type, `&[(&str, &str)]`, holds a `&[` too.
    let body = rest
        .find('=')
        .map(|eq| rest[eq + 1..].trim_start())
        .and_then(|v| v.strip_prefix("&["))
        .ok_or_else(|| format!("{VENDORED_FILE}: VENDORED is not a `&[...]` list"))?;
    let close = body
        .find("];")
        .ok_or_else(|| format!("{VENDORED_FILE}: VENDORED's list has no closing `];`"))?;
    let body: String = body[..close]
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let mut pairs = Vec::new();
    for entry in body.split('(').skip(1) {
        let entry = entry.split(')').next().unwrap_or_default();
        let strings: Vec<&str> = entry.split('"').skip(1).step_by(2).collect();
        match strings.as_slice() {
            [name, version] => pairs.push(((*name).to_owned(), (*version).to_owned())),
            _ => {
                return Err(format!(
                    "{VENDORED_FILE}: VENDORED entry `({})` is not a (name, version) pair",
                    entry.trim()
                ));
            }
        }
    }
    if pairs.is_empty() && !body.trim().is_empty() {
        return Err(format!(
            "{VENDORED_FILE}: VENDORED's list holds no (name, version) pair"
        ));
    }
    Ok(pairs)
}

/// Compares the web assets' `VENDORED` pairs with the vendor task's pinned
/// `(name, version)` pairs; every package listed on one side only, at two versions, or
/// twice on one side is a violation naming the package and both sides.
pub fn check_vendored(vendored: &[(String, String)], pinned: &[(&str, &str)]) -> Vec<String> {
    const IN_WEB_ASSETS: &str = "web-assets/src/lib.rs VENDORED";
    const IN_VENDOR_TASK: &str = "xtask/src/vendor.rs PACKAGES";
    let mut problems = Vec::new();
    let mut sides: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for (name, version) in vendored {
        sides.entry(name).or_default().0.push(version);
    }
    for (name, version) in pinned {
        sides.entry(name).or_default().1.push(version);
    }
    let show = |versions: &[&str]| match versions {
        [] => "lacks it".to_owned(),
        [one] => format!("has {one}"),
        many => format!("lists it {} times ({})", many.len(), many.join(", ")),
    };
    for (name, (web, task)) in sides {
        if web.len() != 1 || task.len() != 1 || web != task {
            problems.push(format!(
                "vendored package {name}: {IN_WEB_ASSETS} {}, {IN_VENDOR_TASK} {}",
                show(&web),
                show(&task)
            ));
        }
    }
    problems
}

/// A workspace member as `cargo metadata` lists it.
#[derive(Debug, PartialEq)]
pub struct Member {
    /// The package name.
    pub name: String,
    /// The path of its `Cargo.toml` as the metadata gives it (absolute).
    pub manifest_path: String,
    /// That path relative to the workspace root, for messages.
    pub shown_path: String,
}

/// The workspace members of parsed `cargo metadata` output, in its order.
pub fn workspace_members(meta: &Value) -> Vec<Member> {
    let root = meta["workspace_root"].as_str().unwrap_or_default();
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .filter_map(|p| {
            let manifest_path = p["manifest_path"].as_str()?.to_owned();
            let shown_path = Path::new(&manifest_path)
                .strip_prefix(root)
                .map_or(manifest_path.clone(), |rel| rel.display().to_string());
            Some(Member {
                name: p["name"].as_str()?.to_owned(),
                manifest_path,
                shown_path,
            })
        })
        .collect()
}

/// Checks that every member's manifest text opts into the workspace lints; each one that
/// does not is a violation naming the crate and its manifest.
pub fn check_workspace_lints(manifests: &[(Member, String)]) -> Vec<String> {
    manifests
        .iter()
        .filter(|(_, text)| !opts_into_workspace_lints(text))
        .map(|(member, _)| {
            format!(
                "{} does not opt into the workspace lints: {} has no `[lints]` with `workspace = true`",
                member.name, member.shown_path
            )
        })
        .collect()
}

/// Whether a `Cargo.toml` sets `lints.workspace = true`: as `workspace = true` in the
/// `[lints]` table, or at the top level as `lints.workspace = true` or
/// `lints = { workspace = true }`. A line scan: comments and the lines of multi-line
/// strings are skipped, table headers tracked; nothing else of TOML is needed.
pub fn opts_into_workspace_lints(manifest: &str) -> bool {
    let mut table = String::new();
    let mut multi_line: Option<&str> = None;
    for raw in manifest.lines() {
        if let Some(delimiter) = multi_line {
            if raw.contains(delimiter) {
                multi_line = None;
            }
            continue;
        }
        if let Some(delimiter) = ["\"\"\"", "'''"]
            .into_iter()
            .find(|d| raw.matches(d).count() % 2 == 1)
        {
            multi_line = Some(delimiter);
            continue;
        }
        let line = without_comment(raw).trim();
        if let Some(header) = line.strip_prefix('[') {
            table = dotted_key(header.trim_start_matches('[').trim_end_matches(']'));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = match (table.as_str(), dotted_key(key)) {
            ("", key) => key,
            (table, key) => format!("{table}.{key}"),
        };
        let value = value.trim();
        let inline: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        let opted_in = (key == "lints.workspace" && value == "true")
            || (key == "lints"
                && inline.starts_with('{')
                && inline
                    .trim_matches(['{', '}'])
                    .split(',')
                    .any(|kv| kv == "workspace=true"));
        if opted_in {
            return true;
        }
    }
    false
}

/// A TOML key with the spaces around its dots and the quotes of its parts removed:
/// `"lints" . workspace` is `lints.workspace`.
fn dotted_key(key: &str) -> String {
    key.split('.')
        .map(|part| part.trim().trim_matches(['"', '\'']))
        .collect::<Vec<_>>()
        .join(".")
}

/// A line up to its `#` comment, if any (a `#` inside a string is kept).
fn without_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
        escaped = false;
    }
    line
}

#[cfg(test)]
mod tests;
