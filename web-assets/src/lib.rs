#![doc = include_str!("../README.md")]

use std::borrow::Cow;

use rust_embed::Embed;

/// Everything under `static/`, embedded (also in debug builds, through `debug-embed`).
#[derive(Embed)]
#[folder = "static/"]
struct Static;

/// Everything under `templates/`, embedded (also in debug builds).
#[derive(Embed)]
#[folder = "templates/"]
struct Templates;

/// The front-end packages vendored under `static/vendor/`, as `(npm package, version)`.
///
/// Mirrors the pinned list of `cargo xtask vendor`, which fetches them.
pub const VENDORED: &[(&str, &str)] = &[
    ("bootstrap", "5.3.9"),
    ("htmx.org", "2.0.11"),
    ("@simplewebauthn/browser", "14.0.0"),
];

/// One embedded static file, ready to serve.
#[derive(Debug, Clone)]
pub struct StaticFile {
    /// The file's content.
    pub bytes: Cow<'static, [u8]>,
    /// The `Content-Type` to send, chosen by the file's extension.
    pub content_type: &'static str,
    /// A strong `ETag`: the quoted hex SHA-256 of the content.
    pub etag: String,
}

/// Looks up a static file by its path relative to `static/`, such as
/// `"vendor/bootstrap/bootstrap.min.css"` or `"modal2fa.js"`.
///
/// Returns `None` for an unknown file and for any path that is not a plain relative path
/// (absolute, with `.` or `..` segments, backslashes or empty segments).
pub fn static_file(path: &str) -> Option<StaticFile> {
    if !is_plain_relative(path) {
        return None;
    }
    let file = Static::get(path)?;
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()));
    Some(StaticFile {
        bytes: file.data,
        content_type: content_type(path),
        etag,
    })
}

/// Every template under `templates/` as `(relative path with forward slashes, content)`,
/// sorted by path. Hidden files (such as a `.keep` placeholder) are left out.
///
/// # Panics
///
/// When an embedded template is not UTF-8, which this crate's tests rule out.
pub fn templates() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = Templates::iter()
        .filter(|name| !is_hidden(name))
        .filter_map(|name| {
            let file = Templates::get(&name)?;
            let text = String::from_utf8(file.data.into_owned())
                .unwrap_or_else(|_| panic!("template {name} is not UTF-8"));
            Some((name.replace('\\', "/"), text))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn is_hidden(path: &str) -> bool {
    path.split(['/', '\\']).any(|seg| seg.starts_with('.'))
}

fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.starts_with("LICENSE") || name == "VERSION" {
        return "text/plain; charset=utf-8";
    }
    let ext = name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    const TEXT: &str = "text/plain; charset=utf-8";

    /// Every file `cargo xtask vendor` writes, plus the hand-written runtime.
    const SERVED: &[(&str, &str)] = &[
        ("vendor/bootstrap/bootstrap.min.css", CSS),
        ("vendor/bootstrap/bootstrap.bundle.min.js", JS),
        ("vendor/bootstrap/LICENSE", TEXT),
        ("vendor/bootstrap/VERSION", TEXT),
        ("vendor/htmx/htmx.min.js", JS),
        ("vendor/htmx/LICENSE", TEXT),
        ("vendor/htmx/VERSION", TEXT),
        (
            "vendor/simplewebauthn/simplewebauthn-browser.umd.min.js",
            JS,
        ),
        ("vendor/simplewebauthn/LICENSE.md", TEXT),
        ("vendor/simplewebauthn/VERSION", TEXT),
        ("modal2fa.js", JS),
        ("modal2fa.css", CSS),
    ];

    #[test]
    fn every_vendored_file_is_present_and_non_empty_with_the_right_content_type() {
        for (path, ty) in SERVED {
            let file = static_file(path).unwrap_or_else(|| panic!("{path} is not embedded"));
            assert!(!file.bytes.is_empty(), "{path} is empty");
            assert_eq!(file.content_type, *ty, "{path}");
        }
    }

    #[test]
    fn no_vendored_file_points_at_a_source_map() {
        for (path, _) in SERVED {
            let file = static_file(path).expect("embedded");
            let text = String::from_utf8_lossy(&file.bytes);
            assert!(
                !text.contains("sourceMappingURL="),
                "{path} still names a source map"
            );
        }
    }

    #[test]
    fn every_vendored_package_has_a_version_file_matching_the_pinned_list() {
        let mut found: Vec<String> = Static::iter()
            .filter(|p| p.starts_with("vendor/") && p.ends_with("/VERSION"))
            .map(|p| {
                let file = static_file(&p).expect("embedded");
                String::from_utf8(file.bytes.into_owned())
                    .expect("utf-8")
                    .trim()
                    .to_owned()
            })
            .collect();
        found.sort();
        let mut pinned: Vec<String> = VENDORED
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect();
        pinned.sort();
        assert_eq!(found, pinned);
    }

    #[test]
    fn an_unknown_path_gives_none() {
        assert!(static_file("vendor/bootstrap/nope.css").is_none());
        assert!(static_file("does-not-exist.js").is_none());
        assert!(static_file("").is_none());
        assert!(static_file("vendor").is_none());
    }

    #[test]
    fn path_traversal_gives_none() {
        for path in [
            "../Cargo.toml",
            "../src/lib.rs",
            "vendor/../../Cargo.toml",
            "vendor/../modal2fa.js",
            "./modal2fa.js",
            "/modal2fa.js",
            "/etc/passwd",
            "vendor\\..\\..\\Cargo.toml",
            "vendor//htmx/htmx.min.js",
            "modal2fa.js\0",
        ] {
            assert!(static_file(path).is_none(), "{path:?} was served");
        }
    }

    #[test]
    fn the_licence_files_are_embedded() {
        for path in [
            "vendor/bootstrap/LICENSE",
            "vendor/htmx/LICENSE",
            "vendor/simplewebauthn/LICENSE.md",
        ] {
            let file = static_file(path).unwrap_or_else(|| panic!("{path} is not embedded"));
            assert_eq!(file.content_type, TEXT, "{path}");
            let text = String::from_utf8_lossy(&file.bytes).to_lowercase();
            assert!(text.contains("permission"), "{path} grants nothing");
            assert!(text.contains("warrant"), "{path} has no warranty clause");
        }
    }

    #[test]
    fn the_etag_is_the_quoted_hex_sha256_and_differs_between_files() {
        let js = static_file("modal2fa.js").expect("embedded");
        let css = static_file("modal2fa.css").expect("embedded");
        for tag in [&js.etag, &css.etag] {
            assert_eq!(tag.len(), 66);
            assert!(tag.starts_with('"') && tag.ends_with('"'));
            assert!(
                tag[1..65]
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert_ne!(js.etag, css.etag);
        assert_eq!(js.etag, static_file("modal2fa.js").expect("embedded").etag);
    }

    #[test]
    fn the_hex_of_known_bytes_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a/b.css"), CSS);
        assert_eq!(content_type("a.JS"), JS);
        assert_eq!(content_type("icons/x.svg"), "image/svg+xml");
        assert_eq!(content_type("notes.txt"), TEXT);
        assert_eq!(content_type("vendor/x/LICENSE"), TEXT);
        assert_eq!(content_type("fonts/a.woff2"), "font/woff2");
        assert_eq!(content_type("blob.bin"), "application/octet-stream");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
    }

    #[test]
    fn templates_are_sorted_utf8_with_forward_slashes_and_no_hidden_files() {
        let all = templates();
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for name in names {
            assert!(!name.contains('\\'), "{name}");
            assert!(!is_hidden(name), "{name}");
        }
    }

    #[test]
    fn the_modal_runtime_has_no_inline_script_hooks() {
        let js = static_file("modal2fa.js").expect("embedded");
        let text = String::from_utf8_lossy(&js.bytes);
        assert!(!text.contains("eval("));
        assert!(!text.contains("new Function"));
        assert!(!text.contains("innerHTML ="));
    }
}
