//! Stateless CSRF tokens (anonymous GETs write nothing) and the same-origin check.
//!
//! A token is `expiry.mac`, the MAC being HMAC-SHA256 with the CSRF subkey over the
//! expiry and the token's [`Holder`]. A signed-in user's token is bound to the user, so it
//! does not work for another account. An anonymous visitor's is bound to a random
//! [`Nonce`] the visitor keeps in a cookie of its own (HttpOnly, SameSite=Lax, path `/`,
//! `__Host-` and Secure unless in plain-http development), set by the first GET that
//! renders a form for a request without one: a `Set-Cookie`, no session, no statement. A
//! token minted under one visitor's nonce fails with another's cookie or with none, so an
//! attacker cannot hand a victim a sign-in form of their own (login CSRF). The nonce is
//! never logged or shown in a page.
//!
//! Every POST also needs a same-origin `Sec-Fetch-Site`, or an `Origin` naming this
//! server's scheme, host and port.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};
use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use modal2fa_core::UserId;
use modal2fa_core::client_ip::ClientIpConfig;
use modal2fa_core::crypto::random_token;
use modal2fa_core::secret::constant_time_eq;
use modal2fa_core::system::OsRandom;
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::WebSettings;

/// How long a token stays valid.
pub const LIFETIME: Duration = Duration::hours(4);

/// The random bytes in a [`Nonce`].
const NONCE_BYTES: usize = 32;

/// An anonymous visitor's CSRF nonce: 256 random bits, base64url without padding, kept in
/// the visitor's CSRF cookie. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    /// A fresh nonce from the operating system's CSPRNG.
    pub fn random() -> Self {
        Self(random_token(&OsRandom, NONCE_BYTES))
    }

    /// A nonce as a cookie holds it, or `None` unless it is one (wrong length or alphabet).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = BASE64URL_NOPAD.decode(text.as_bytes()).ok()?;
        (bytes.len() == NONCE_BYTES).then(|| Self(text.to_owned()))
    }

    /// The cookie value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonce([redacted])")
    }
}

/// Whom a token is for.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// A signed-in user: the token works for this account only.
    User(UserId),
    /// An anonymous visitor (signed out, or between password and second factor): the
    /// token works only with this nonce in the request's CSRF cookie.
    Visitor(&'a Nonce),
}

/// Issues and checks tokens.
#[derive(Clone)]
pub struct Csrf {
    key: [u8; 32],
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf([redacted])")
    }
}

impl Csrf {
    /// A signer with the CSRF subkey.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, expires: i64, holder: Holder<'_>) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key length");
        match holder {
            Holder::User(user) => m.update(format!("csrf|{expires}|{}", user.0).as_bytes()),
            Holder::Visitor(nonce) => {
                m.update(format!("csrf-visitor|{expires}|{}", nonce.0).as_bytes())
            }
        }
        m.finalize().into_bytes().to_vec()
    }

    /// A token for `holder`, valid for [`LIFETIME`] from `now`.
    pub fn token(&self, now: OffsetDateTime, holder: Holder<'_>) -> String {
        let expires = (now + LIFETIME).unix_timestamp();
        format!(
            "{expires}.{}",
            BASE64URL_NOPAD.encode(&self.mac(expires, holder))
        )
    }

    /// Whether `token` is valid now for `holder`.
    pub fn verify(&self, token: &str, now: OffsetDateTime, holder: Holder<'_>) -> bool {
        let Some((exp, mac)) = token.trim().split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(mac)) = (exp.parse::<i64>(), BASE64URL_NOPAD.decode(mac.as_bytes()))
        else {
            return false;
        };
        expires > now.unix_timestamp() && constant_time_eq(&self.mac(expires, holder), &mac)
    }
}

/// The nonce in the request's CSRF cookie, if it holds a well-formed one.
pub(crate) fn cookie_nonce(req: &HttpRequest, settings: &WebSettings) -> Option<Nonce> {
    let cookie = req.cookie(settings.csrf_cookie_name())?;
    Nonce::parse(cookie.value())
}

/// A nonce minted for a request that came without one, kept in the request's extensions
/// so that every token of its response shares it and the response can set it.
#[derive(Clone)]
struct Minted(Nonce);

/// The visitor's nonce for the tokens of a response to `req`: its cookie's, else one
/// minted for this request (the same for every token of the response).
pub(crate) fn visitor_nonce(req: &HttpRequest, settings: &WebSettings) -> Nonce {
    if let Some(nonce) = cookie_nonce(req, settings) {
        return nonce;
    }
    if let Some(Minted(nonce)) = req.extensions().get::<Minted>() {
        return nonce.clone();
    }
    let nonce = Nonce::random();
    req.extensions_mut().insert(Minted(nonce.clone()));
    nonce
}

/// The CSRF cookie to set on the response to `req`, when a nonce was minted for it. A
/// browser-session cookie: it lives as long as the pages whose forms need it.
pub(crate) fn minted_cookie(req: &HttpRequest, settings: &WebSettings) -> Option<Cookie<'static>> {
    let Minted(nonce) = req.extensions().get::<Minted>()?.clone();
    Some(
        Cookie::build(settings.csrf_cookie_name(), nonce.0)
            .path("/")
            .http_only(true)
            .secure(settings.secure_cookies)
            .same_site(SameSite::Lax)
            .finish(),
    )
}

/// The scheme the browser used, as the server sees it: when the peer is a trusted proxy
/// (by the same rules as the client address: a proxy count, or the peer in the trusted
/// networks), the scheme it forwards (`Forwarded: proto=`, else `X-Forwarded-Proto`);
/// otherwise the connection's own, `https` on a TLS listener and `http` on a plain one. A
/// client that is not a trusted proxy cannot change it with a header.
pub(crate) fn request_scheme(req: &HttpRequest, proxies: &ClientIpConfig) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let via_trusted_proxy = if proxies.trusted_proxies.is_empty() {
        proxies.effective_proxy_count() > 0
    } else {
        peer.is_some_and(|ip| proxies.trusted_proxies.contains(ip))
    };
    if via_trusted_proxy {
        req.connection_info().scheme().to_ascii_lowercase()
    } else if req.app_config().secure() {
        "https".to_owned()
    } else {
        "http".to_owned()
    }
}

/// Whether a POST comes from our own pages: `Sec-Fetch-Site` must be `same-origin` (or
/// `none`, a user-typed request); without it, an `Origin` must name this server's scheme
/// (see [`request_scheme`]), host and port. Requests with neither (not from a browser)
/// pass on to the token check.
pub fn same_origin(req: &HttpRequest, proxies: &ClientIpConfig) -> bool {
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        return matches!(site, "same-origin" | "none");
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(origin) => {
            let host = req.connection_info().host().to_owned();
            let scheme = request_scheme(req, proxies);
            origin.split_once("://").is_some_and(|(s, rest)| {
                s.eq_ignore_ascii_case(&scheme) && rest.eq_ignore_ascii_case(&host)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn a_token_verifies_for_its_user_until_it_expires() {
        let c = Csrf::new([1; 32]);
        let nonce = Nonce::random();
        let t = c.token(NOW, Holder::User(UserId(1)));
        assert!(c.verify(&t, NOW, Holder::User(UserId(1))));
        assert!(!c.verify(&t, NOW, Holder::User(UserId(2))));
        assert!(!c.verify(&t, NOW, Holder::Visitor(&nonce)));
        assert!(!c.verify(&t, NOW + LIFETIME, Holder::User(UserId(1))));
        assert!(!Csrf::new([2; 32]).verify(&t, NOW, Holder::User(UserId(1))));
        for bad in ["", "x", "1.2", "99999999999.!!"] {
            assert!(!c.verify(bad, NOW, Holder::Visitor(&nonce)));
        }
    }

    #[test]
    fn a_visitors_token_verifies_only_with_the_nonce_it_was_minted_for() {
        let c = Csrf::new([1; 32]);
        let (a, b) = (Nonce::random(), Nonce::random());
        assert_ne!(a, b);
        let t = c.token(NOW, Holder::Visitor(&a));
        assert!(c.verify(&t, NOW, Holder::Visitor(&a)));
        assert!(!c.verify(&t, NOW, Holder::Visitor(&b)));
        assert!(!c.verify(&t, NOW, Holder::User(UserId(0))));
        assert!(!c.verify(&t, NOW + LIFETIME, Holder::Visitor(&a)));
    }

    #[test]
    fn a_nonce_is_256_random_bits_that_debug_does_not_show() {
        let n = Nonce::random();
        assert_eq!(Nonce::parse(n.expose()), Some(n.clone()));
        assert!(!format!("{n:?} {:?}", Holder::Visitor(&n)).contains(n.expose()));
        let short = &n.expose()[1..];
        for bad in [
            "",
            "not a nonce",
            short,
            "+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+",
        ] {
            assert_eq!(Nonce::parse(bad), None, "{bad}");
        }
    }
}
