//! The dependency rule of DESIGN.md, checked on `cargo metadata`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::process::Command;

use serde_json::Value;

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

pub fn run() -> Result<(), Vec<String>> {
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
    let meta: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| vec![format!("bad metadata: {e}")])?;
    check(&meta)
}

fn is_forbidden(name: &str) -> bool {
    FORBIDDEN_IN_CORE.iter().any(|p| {
        name == *p || name.starts_with(&format!("{p}-")) || name.starts_with(&format!("{p}_"))
    })
}

/// Checks the rule on parsed `cargo metadata` output; returns every violation.
pub fn check(meta: &Value) -> Result<(), Vec<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(edges: &[(&str, &str, Option<&str>)]) -> Value {
        let mut names: Vec<&str> = edges.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
        names.push("modal2fa-core");
        names.sort_unstable();
        names.dedup();
        let packages: Vec<Value> = names
            .iter()
            .map(|n| json!({"id": format!("{n} 0.1.0"), "name": n}))
            .collect();
        let nodes: Vec<Value> = names
            .iter()
            .map(|n| {
                let deps: Vec<Value> = edges
                    .iter()
                    .filter(|(a, _, _)| a == n)
                    .map(|(_, b, kind)| json!({"name": b, "pkg": format!("{b} 0.1.0"), "dep_kinds": [{"kind": kind, "target": null}]}))
                    .collect();
                json!({"id": format!("{n} 0.1.0"), "deps": deps})
            })
            .collect();
        json!({"packages": packages, "resolve": {"nodes": nodes}})
    }

    #[test]
    fn tidy_passes_when_core_depends_only_on_pure_crates() {
        assert_eq!(
            check(&meta(&[
                ("modal2fa-core", "serde", None),
                ("modal2fa-core", "tokio", Some("dev"))
            ])),
            Ok(())
        );
    }

    #[test]
    fn tidy_fails_when_actix_web_is_added_to_core() {
        let err = check(&meta(&[("modal2fa-core", "actix-web", None)])).unwrap_err();
        assert_eq!(
            err,
            vec!["modal2fa-core must not depend on actix-web (via modal2fa-core -> actix-web)"]
        );
    }

    #[test]
    fn tidy_fails_on_a_forbidden_crate_reached_transitively() {
        let err = check(&meta(&[
            ("modal2fa-core", "helper", None),
            ("helper", "sqlx-core", None),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            vec![
                "modal2fa-core must not depend on sqlx-core (via modal2fa-core -> helper -> sqlx-core)"
            ]
        );
    }

    #[test]
    fn tidy_fails_when_an_adapter_depends_on_another_or_the_web_layer_on_an_adapter() {
        let err = check(&meta(&[
            ("modal2fa-lettre", "modal2fa-sea-orm", None),
            ("modal2fa-actix", "modal2fa-sea-orm", None),
            ("modal2fa-entra", "modal2fa-actix", None),
        ]))
        .unwrap_err();
        assert_eq!(err.len(), 3, "{err:?}");
    }

    #[test]
    fn the_real_workspace_passes_tidy() {
        run().unwrap();
    }
}
