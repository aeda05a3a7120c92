//! CSRF: every POST must come from one of our own pages.
//!
//! A browser sends the session cookie with every request to this site, including a form
//! that another site makes it submit. Two checks tell our own forms apart; [`guard`], a
//! middleware around every route, makes both before any handler runs, so a route added
//! later is covered without doing anything:
//!
//! - **The token.** Each form carries [`FIELD`]: HMAC-SHA256, under the CSRF key the core
//!   derives from the server secret ([`KeyPurpose::Csrf`]), of the session id's hash. It
//!   is stateless (nothing is stored), another site cannot read it (the same-origin
//!   policy), and it is bound to one session id: a token from another session, or from
//!   before the id was renewed, is refused. It needs no expiry of its own, since it dies
//!   with the id: at sign-in, at every privilege change and at logout.
//! - **The origin.** `Sec-Fetch-Site` (sent by current browsers; a page cannot set it)
//!   must be `same-origin`, or `none` for a request the user made directly. A browser
//!   without it must send an `Origin` equal to [`Config::origin`](crate::Config::origin):
//!   the same scheme, host and port. A request with neither header does not come from a
//!   browser page, and the token alone decides.
//!
//! A refused POST answers 403 with fixed copy and reaches no handler: nothing changes.

use std::fmt;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use modal2fa_core::secret::{KeyPurpose, Keys, constant_time_eq};
use modal2fa_core::services::SessionService;
use modal2fa_core::{SecretString, ServerSecret};
use sha2::Sha256;

use crate::App;
use crate::copy;
use crate::session::Client;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// The largest form body the guard reads.
const FORM_LIMIT: usize = 16 * 1024;

/// Mints and checks tokens with the CSRF key.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey([redacted])")
    }
}

impl CsrfKey {
    /// The CSRF key of a server secret (one of the core's per-purpose keys).
    pub fn derive(secret: &ServerSecret) -> Self {
        Self(*Keys::derive(secret).get(KeyPurpose::Csrf))
    }

    fn mac(&self, session: &SecretString) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"axum-minimal csrf v1|");
        mac.update(SessionService::id_hash(session).as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The token for the forms of the session with this id.
    pub fn token(&self, session: &SecretString) -> String {
        BASE64URL_NOPAD.encode(&self.mac(session))
    }

    /// Whether `token` was minted for the session with this id.
    pub fn verify(&self, session: &SecretString, token: &str) -> bool {
        BASE64URL_NOPAD
            .decode(token.as_bytes())
            .is_ok_and(|mac| constant_time_eq(&mac, &self.mac(session)))
    }
}

/// The middleware: lets safe methods through; any other request needs a same-origin
/// browser and the session's token in its form body, or it answers 403.
pub async fn guard(
    State(app): State<App>,
    client: Client,
    request: Request,
    next: Next,
) -> Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if !same_origin(&parts.headers, app.config.origin()) {
        tracing::warn!(
            path = parts.uri.path(),
            "refused a POST from another origin"
        );
        return copy::text(StatusCode::FORBIDDEN, copy::CSRF_REFUSED);
    }
    let Ok(body) = to_bytes(body, FORM_LIMIT).await else {
        return copy::text(StatusCode::PAYLOAD_TOO_LARGE, copy::TOO_LARGE);
    };
    let valid = match (client.session_id(), form_field(&body, FIELD)) {
        (Some(session), Some(token)) => app.csrf.verify(session, token),
        _ => false,
    };
    if !valid {
        tracing::warn!(
            path = parts.uri.path(),
            "refused a POST without a valid CSRF token"
        );
        return copy::text(StatusCode::FORBIDDEN, copy::CSRF_REFUSED);
    }
    // The handler reads the form again from the same bytes.
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Whether the browser says the request comes from our own pages.
pub fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(header::ORIGIN) {
        Some(sent) => sent
            .to_str()
            .is_ok_and(|sent| sent.eq_ignore_ascii_case(origin)),
        None => true,
    }
}

/// The first value of `name` in a urlencoded form body. A token is base64url, which a
/// form sends as it is, so there is nothing to decode: a value that would need decoding
/// is not a token.
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_for_its_session_and_key() {
        let key = CsrfKey::derive(&ServerSecret::new(vec![1; 32]).unwrap());
        let (a, b) = (
            SecretString::new("session-a"),
            SecretString::new("session-b"),
        );
        let token = key.token(&a);
        assert!(key.verify(&a, &token));
        assert!(!key.verify(&b, &token));
        let other = CsrfKey::derive(&ServerSecret::new(vec![2; 32]).unwrap());
        assert!(!other.verify(&a, &token));
        for bad in ["", "x", "!!", &token[1..]] {
            assert!(!key.verify(&a, bad));
        }
    }

    #[test]
    fn the_token_is_read_from_its_own_field_only() {
        assert_eq!(form_field(b"a=1&csrf=T&b=2", "csrf"), Some("T"));
        assert_eq!(form_field(b"xcsrf=T&csrfx=U", "csrf"), None);
        assert_eq!(form_field(b"csrf", "csrf"), None);
    }
}
