//! Where the app is served: the origin a POST must come from, and whether the session
//! cookie may go without `Secure` (only under the development switch, only on localhost).

use std::fmt;

/// Where the app is served, which decides the session cookie's flags and which `Origin`
/// a POST must come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    origin: String,
    plain_http: bool,
}

/// An origin [`Config`] does not accept; the text says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidOrigin(&'static str);

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidOrigin {}

impl Config {
    /// Production: `origin` is what browsers put in `Origin` for our pages, `https://host`
    /// or `https://host:port`. The session cookie is `__Host-sid`, `Secure`.
    pub fn new(origin: &str) -> Result<Self, InvalidOrigin> {
        let origin = normalise(origin, "https")?;
        Ok(Self {
            origin,
            plain_http: false,
        })
    }

    /// DEVELOPMENT ONLY: plain http on this machine, e.g. `http://127.0.0.1:3000`. Browsers
    /// refuse `Secure` cookies (and so the `__Host-` prefix) over http, so the cookie is a
    /// plain `sid` without `Secure`, which would travel in clear text anywhere but here:
    /// only a `localhost`, `127.0.0.1` or `[::1]` origin is accepted.
    pub fn development_plain_http_on_localhost(origin: &str) -> Result<Self, InvalidOrigin> {
        let origin = normalise(origin, "http")?;
        let authority = &origin["http://".len()..];
        let host = match authority.strip_prefix('[') {
            Some(_) => authority.split_inclusive(']').next().unwrap_or(authority),
            None => authority.split(':').next().unwrap_or(authority),
        };
        if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return Err(InvalidOrigin(
                "plain http is only for localhost, 127.0.0.1 or [::1]",
            ));
        }
        Ok(Self {
            origin,
            plain_http: true,
        })
    }

    /// The origin, as browsers write it (lower case, no default port, no path).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the session cookie is `Secure` (false only under the development switch).
    pub fn secure(&self) -> bool {
        !self.plain_http
    }
}

/// `scheme://host[:port]` in the form browsers send it, or why not.
fn normalise(origin: &str, scheme: &str) -> Result<String, InvalidOrigin> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let Some(authority) = origin
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
    else {
        return Err(if scheme == "https" {
            InvalidOrigin("the origin must start with https://")
        } else {
            InvalidOrigin("the origin must start with http://")
        });
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(InvalidOrigin(
            "the origin is scheme://host[:port], without a path",
        ));
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Ok(format!("{scheme}://{authority}"))
}
