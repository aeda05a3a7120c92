//! What a host's own layout needs from the web layer: the CSRF token of the request (for
//! `<meta name="csrf-token">`, which the modal runtime sends with every htmx request, or
//! a form of the host's own) and the URLs and tags of the embedded assets, so that no
//! layout writes an `/auth/static/…` URL by hand.

use actix_session::SessionExt;
use actix_web::HttpRequest;

use crate::{Modal2faWeb, session};

/// The stylesheets the modals need, relative to the static base, in the order the
/// built-in templates link them (in `<head>`).
pub const STYLESHEETS: &[&str] = &["vendor/bootstrap/bootstrap.min.css", "modal2fa.css"];

/// The scripts the modals need, relative to the static base, in the order the built-in
/// templates load them (at the end of `<body>`): Bootstrap's bundle and htmx before the
/// modal runtime, which needs both.
pub const SCRIPTS: &[&str] = &[
    "vendor/bootstrap/bootstrap.bundle.min.js",
    "vendor/htmx/htmx.min.js",
    "vendor/simplewebauthn/simplewebauthn-browser.umd.min.js",
    "modal2fa.js",
];

/// `text` with the characters that matter in HTML text and attribute values escaped, as
/// the templates escape them.
fn escape(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    // Writing to a `Vec` cannot fail, and escaping ASCII keeps the text UTF-8.
    let _ = tera::escape_html(text, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

impl Modal2faWeb {
    /// The CSRF token for the forms and htmx requests of the response to `req`, from the
    /// login state of the request's session (the session middleware must wrap the
    /// route): bound to the signed-in user, else to the anonymous visitor's nonce cookie.
    ///
    /// For a visitor without that cookie a nonce is minted for this request, and the
    /// session middleware ([`Self::session_middleware`]) sets its cookie on the response:
    /// the handler need not do anything more. (Outside that middleware, answer through
    /// [`Self::with_csrf_cookie`].) Never log the token.
    pub fn csrf_token(&self, req: &HttpRequest) -> String {
        let state = session::login_state(&req.get_session());
        self.csrf_token_for(req, &state)
    }

    /// `<meta name="csrf-token" content="…">` with [`Self::csrf_token`], for the `<head>`
    /// of a host layout: the modal runtime sends it as `X-CSRF-Token` with every htmx
    /// request.
    pub fn csrf_meta_tag(&self, req: &HttpRequest) -> String {
        format!(
            "<meta name=\"csrf-token\" content=\"{}\">",
            escape(&self.csrf_token(req))
        )
    }

    /// The URL of an embedded static file under the mount point, such as
    /// `asset_url("modal2fa.js")` → `Some("/auth/static/modal2fa.js")`, or `None` when no
    /// such file is embedded (see `modal2fa_web_assets::static_file` for the names).
    pub fn asset_url(&self, name: &str) -> Option<String> {
        modal2fa_web_assets::static_file(name).map(|_| format!("{}{name}", self.static_base()))
    }

    /// The `<link rel="stylesheet">` elements of [`STYLESHEETS`], one a line, for the
    /// `<head>` of a host layout.
    pub fn head_tags(&self) -> String {
        self.tags(STYLESHEETS, |url| {
            format!("<link rel=\"stylesheet\" href=\"{url}\">")
        })
    }

    /// The `<script src>` elements of [`SCRIPTS`], in order, one a line, for the end of
    /// the `<body>` of a host layout. No inline script: they hold under the strict CSP.
    pub fn script_tags(&self) -> String {
        self.tags(SCRIPTS, |url| format!("<script src=\"{url}\"></script>"))
    }

    fn tags(&self, names: &[&str], tag: impl Fn(&str) -> String) -> String {
        names
            .iter()
            .map(|name| tag(&escape(&format!("{}{name}", self.static_base()))))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_tags_name_is_embedded() {
        for name in STYLESHEETS.iter().chain(SCRIPTS) {
            assert!(
                modal2fa_web_assets::static_file(name).is_some(),
                "{name} is not embedded"
            );
        }
    }

    #[test]
    fn escaping_covers_every_character_that_ends_an_attribute_or_starts_a_tag() {
        assert_eq!(escape("/a\"b'<c>&d"), "/a&quot;b&#39;&lt;c&gt;&amp;d");
    }
}
