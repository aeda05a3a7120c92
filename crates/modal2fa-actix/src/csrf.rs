//! Stateless CSRF tokens (anonymous GETs write nothing) and the same-origin check.
//!
//! A token is `expiry.mac`, the MAC being HMAC-SHA256 with the CSRF subkey over the
//! expiry and the signed-in user (if any), so a token minted for one account does not
//! work for another. Every POST also needs a same-origin `Sec-Fetch-Site` or `Origin`.

use actix_web::HttpRequest;
use actix_web::http::header;
use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use modal2fa_core::UserId;
use modal2fa_core::secret::constant_time_eq;
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

/// How long a token stays valid.
pub const LIFETIME: Duration = Duration::hours(4);

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

    fn mac(&self, expires: i64, user: Option<UserId>) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key length");
        m.update(format!("csrf|{expires}|{}", user.map(|u| u.0).unwrap_or(0)).as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    /// A token for the session's user.
    pub fn token(&self, now: OffsetDateTime, user: Option<UserId>) -> String {
        let expires = (now + LIFETIME).unix_timestamp();
        format!(
            "{expires}.{}",
            BASE64URL_NOPAD.encode(&self.mac(expires, user))
        )
    }

    /// Whether `token` is valid now for the session's user.
    pub fn verify(&self, token: &str, now: OffsetDateTime, user: Option<UserId>) -> bool {
        let Some((exp, mac)) = token.trim().split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(mac)) = (exp.parse::<i64>(), BASE64URL_NOPAD.decode(mac.as_bytes()))
        else {
            return false;
        };
        expires > now.unix_timestamp() && constant_time_eq(&self.mac(expires, user), &mac)
    }
}

/// Whether a POST comes from our own pages: `Sec-Fetch-Site` must be `same-origin` (or
/// `none`, a user-typed request); without it, an `Origin` must name this host. Requests
/// with neither (not from a browser) pass on to the token check.
pub fn same_origin(req: &HttpRequest) -> bool {
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
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(&host))
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
        let t = c.token(NOW, Some(UserId(1)));
        assert!(c.verify(&t, NOW, Some(UserId(1))));
        assert!(!c.verify(&t, NOW, Some(UserId(2))));
        assert!(!c.verify(&t, NOW, None));
        assert!(!c.verify(&t, NOW + LIFETIME, Some(UserId(1))));
        assert!(!Csrf::new([2; 32]).verify(&t, NOW, Some(UserId(1))));
        for bad in ["", "x", "1.2", "99999999999.!!"] {
            assert!(!c.verify(bad, NOW, None));
        }
    }
}
