//! Tidy on synthetic metadata and manifests, and on the real workspace.
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
        check_dependency_rule(&meta(&[
            ("modal2fa-core", "serde", None),
            ("modal2fa-core", "tokio", Some("dev"))
        ])),
        Ok(())
    );
}

#[test]
fn tidy_fails_when_actix_web_is_added_to_core() {
    let err = check_dependency_rule(&meta(&[("modal2fa-core", "actix-web", None)])).unwrap_err();
    assert_eq!(
        err,
        vec!["modal2fa-core must not depend on actix-web (via modal2fa-core -> actix-web)"]
    );
}

#[test]
fn tidy_fails_on_a_forbidden_crate_reached_transitively() {
    let err = check_dependency_rule(&meta(&[
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
    let err = check_dependency_rule(&meta(&[
        ("modal2fa-lettre", "modal2fa-sea-orm", None),
        ("modal2fa-actix", "modal2fa-sea-orm", None),
        ("modal2fa-entra", "modal2fa-actix", None),
    ]))
    .unwrap_err();
    assert_eq!(err.len(), 3, "{err:?}");
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_vendored_list_is_read_from_the_web_assets_source_text() {
    let src = r#"
/// Every vendored package.
pub const VENDORED: &[(&str, &str)] = &[
("bootstrap", "5.3.9"),
// the modal runtime's transport
("htmx.org", "2.0.11"), // pinned
("@simplewebauthn/browser", "14.0.0"),
];

pub fn other() -> &'static [u8] { &[1, 2] }
"#;
    assert_eq!(
        parse_vendored(src),
        Ok(pairs(&[
            ("bootstrap", "5.3.9"),
            ("htmx.org", "2.0.11"),
            ("@simplewebauthn/browser", "14.0.0"),
        ]))
    );
}

#[test]
fn a_source_without_the_vendored_list_or_with_a_malformed_entry_is_an_error() {
    assert_eq!(
        parse_vendored("pub const OTHER: &[(&str, &str)] = &[];"),
        Err("web-assets/src/lib.rs has no `pub const VENDORED`".to_owned())
    );
    assert_eq!(
        parse_vendored(r#"pub const VENDORED: &[(&str, &str)] = &[("bootstrap"),];"#),
        Err(
            r#"web-assets/src/lib.rs: VENDORED entry `("bootstrap")` is not a (name, version) pair"#
                .to_owned()
        )
    );
}

#[test]
fn tidy_passes_when_both_vendored_lists_agree_in_any_order() {
    let vendored = pairs(&[("bootstrap", "5.3.9"), ("htmx.org", "2.0.11")]);
    assert_eq!(
        check_vendored(&vendored, &[("htmx.org", "2.0.11"), ("bootstrap", "5.3.9")]),
        Vec::<String>::new()
    );
}

#[test]
fn tidy_names_a_package_pinned_at_two_versions_with_both_sides() {
    let vendored = pairs(&[("bootstrap", "5.3.8"), ("htmx.org", "2.0.11")]);
    assert_eq!(
        check_vendored(&vendored, &[("bootstrap", "5.3.9"), ("htmx.org", "2.0.11")]),
        vec![
            "vendored package bootstrap: web-assets/src/lib.rs VENDORED has 5.3.8, \
             xtask/src/vendor.rs PACKAGES has 5.3.9"
        ]
    );
}

#[test]
fn tidy_names_a_package_listed_on_one_side_only() {
    let vendored = pairs(&[("bootstrap", "5.3.9"), ("alpinejs", "3.15.0")]);
    assert_eq!(
        check_vendored(
            &vendored,
            &[
                ("bootstrap", "5.3.9"),
                ("@simplewebauthn/browser", "14.0.0")
            ]
        ),
        vec![
            "vendored package @simplewebauthn/browser: web-assets/src/lib.rs VENDORED \
             lacks it, xtask/src/vendor.rs PACKAGES has 14.0.0",
            "vendored package alpinejs: web-assets/src/lib.rs VENDORED has 3.15.0, \
             xtask/src/vendor.rs PACKAGES lacks it",
        ]
    );
}

#[test]
fn tidy_names_a_package_listed_twice_on_one_side() {
    let vendored = pairs(&[("htmx.org", "2.0.11"), ("htmx.org", "2.0.10")]);
    assert_eq!(
        check_vendored(&vendored, &[("htmx.org", "2.0.11")]),
        vec![
            "vendored package htmx.org: web-assets/src/lib.rs VENDORED lists it 2 times \
             (2.0.11, 2.0.10), xtask/src/vendor.rs PACKAGES has 2.0.11"
        ]
    );
}

#[test]
fn a_lints_table_with_workspace_true_opts_in() {
    for manifest in [
        "[package]\nname = \"a\"\n\n[lints]\nworkspace = true\n",
        "[package]\nname = \"a\"\n[ lints ]  # shared\n  workspace=true # the only key\n[dependencies]\n",
        "[lints]\r\nworkspace = true\r\n",
    ] {
        assert!(opts_into_workspace_lints(manifest), "{manifest:?}");
    }
}

#[test]
fn a_dotted_or_inline_lints_key_at_the_top_level_opts_in() {
    for manifest in [
        "lints.workspace = true\n[package]\nname = \"a\"\n",
        "\"lints\" . workspace = true\n[package]\nname = \"a\"\n",
        "lints = { workspace = true }\n[package]\nname = \"a\"\n",
    ] {
        assert!(opts_into_workspace_lints(manifest), "{manifest:?}");
    }
}

#[test]
fn a_manifest_without_the_opt_in_does_not_opt_in() {
    for manifest in [
        // No lints at all.
        "[package]\nname = \"a\"\n",
        // Lints of its own, or the opt-in declined.
        "[lints.rust]\nunsafe_code = \"forbid\"\n",
        "[lints]\nworkspace = false\n",
        "lints = { workspace = false }\n",
        // The key in another table: `package.lints.workspace`, `dependencies.workspace`.
        "[package]\nname = \"a\"\nlints.workspace = true\n",
        "[lints]\n[dependencies]\nworkspace = true\n",
        // The workspace's own table is not a member's opt-in.
        "[workspace.lints.rust]\nunsafe_code = \"forbid\"\n",
        // Commented out, or inside a string.
        "[package]\n# [lints]\n# workspace = true\n",
        "[package]\ndescription = \"\"\"\n[lints]\nworkspace = true\n\"\"\"\n",
        "[package]\ndescription = '''\n[lints]\nworkspace = true'''\n",
        "[package]\ndescription = \"[lints] # workspace = true\"\n",
    ] {
        assert!(!opts_into_workspace_lints(manifest), "{manifest:?}");
    }
}

#[test]
fn tidy_names_each_crate_that_does_not_opt_into_the_workspace_lints_with_its_manifest() {
    let member = |name: &str, dir: &str| Member {
        name: name.to_owned(),
        manifest_path: format!("/ws/{dir}/Cargo.toml"),
        shown_path: format!("{dir}/Cargo.toml"),
    };
    let manifests = [
        (
            member("modal2fa-core", "crates/modal2fa-core"),
            "[package]\n[lints]\nworkspace = true\n".to_owned(),
        ),
        (
            member("modal2fa-lettre", "crates/modal2fa-lettre"),
            "[package]\n[lints.rust]\nunsafe_code = \"forbid\"\n".to_owned(),
        ),
    ];
    assert_eq!(
        check_workspace_lints(&manifests),
        vec![
            "modal2fa-lettre does not opt into the workspace lints: \
             crates/modal2fa-lettre/Cargo.toml has no `[lints]` with `workspace = true`"
        ]
    );
}

#[test]
fn the_workspace_members_are_read_from_cargo_metadata_without_their_dependencies() {
    let meta = json!({
        "workspace_root": "/ws",
        "workspace_members": ["path+file:///ws/xtask#0.1.0"],
        "packages": [
            {"id": "registry+https://github.com/rust-lang/crates.io-index#serde@1.0.0",
             "name": "serde", "manifest_path": "/registry/serde-1.0.0/Cargo.toml"},
            {"id": "path+file:///ws/xtask#0.1.0",
             "name": "xtask", "manifest_path": "/ws/xtask/Cargo.toml"},
        ],
    });
    assert_eq!(
        workspace_members(&meta),
        vec![Member {
            name: "xtask".to_owned(),
            manifest_path: "/ws/xtask/Cargo.toml".to_owned(),
            shown_path: "xtask/Cargo.toml".to_owned(),
        }]
    );
}

#[test]
fn the_real_workspace_passes_tidy() {
    run().unwrap();
}
