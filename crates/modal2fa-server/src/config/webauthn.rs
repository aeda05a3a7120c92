//! `[webauthn]`: passkeys and security keys. Off unless `origin` is set.

use modal2fa_core::policy::UserVerification;
use modal2fa_core::settings::RelyingParty;
use serde::Deserialize;

/// `webauthn.user_verification`: what a passkey must do besides being touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verification {
    /// A touch (presence) only: hardware keys stay touch-only, as in the original; such
    /// passkeys are a second factor and never sign in alone.
    #[default]
    Discouraged,
    /// Verify (PIN, biometrics) when the authenticator can; a passkey registered so may
    /// sign in alone.
    Preferred,
    /// Always verify; an authenticator that cannot is refused.
    Required,
}

impl From<Verification> for UserVerification {
    fn from(v: Verification) -> Self {
        match v {
            Verification::Discouraged => Self::Discouraged,
            Verification::Preferred => Self::Preferred,
            Verification::Required => Self::Required,
        }
    }
}

fn yes() -> bool {
    true
}

/// `[webauthn]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebAuthnConfig {
    /// The origin the browser shows: `https://login.example.com`, or
    /// `http://localhost:8080` for plain-http development (browsers refuse WebAuthn on
    /// `http://127.0.0.1`). Passkeys are off without it.
    pub origin: Option<String>,
    /// The RP ID: the origin's host (the default) or a parent domain of it.
    pub rp_id: Option<String>,
    /// `discouraged` (the default), `preferred` or `required`.
    pub user_verification: Verification,
    /// Whether a passkey registered with user verification may sign in alone, from the
    /// login modal's button and the browser's autofill (default: yes).
    #[serde(default = "yes")]
    pub passwordless: bool,
}

impl Default for WebAuthnConfig {
    fn default() -> Self {
        Self {
            origin: None,
            rp_id: None,
            user_verification: Verification::default(),
            passwordless: true,
        }
    }
}

impl WebAuthnConfig {
    /// The relying party these settings describe (`None`: passkeys off), named `name`;
    /// an error says what is wrong.
    pub fn relying_party(&self, name: &str) -> Result<Option<RelyingParty>, String> {
        let Some(origin) = self.origin.as_deref() else {
            return match self.rp_id {
                Some(_) => Err("rp_id is set but origin is not: set webauthn.origin too".into()),
                None => Ok(None),
            };
        };
        let host = url_host(origin).ok_or("webauthn.origin: not a URL with a host")?;
        let id = self.rp_id.as_deref().unwrap_or(&host);
        RelyingParty::new(id, origin, name)
            .map(Some)
            .map_err(|e| format!("webauthn: {e}"))
    }
}

/// The host of `url` (`https://a.example:8443/x` → `a.example`).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(origin: Option<&str>, rp_id: Option<&str>) -> WebAuthnConfig {
        WebAuthnConfig {
            origin: origin.map(str::to_owned),
            rp_id: rp_id.map(str::to_owned),
            ..WebAuthnConfig::default()
        }
    }

    #[test]
    fn without_an_origin_passkeys_are_off() {
        assert_eq!(config(None, None).relying_party("x"), Ok(None));
        assert!(
            config(None, Some("example.com"))
                .relying_party("x")
                .is_err()
        );
    }

    #[test]
    fn the_rp_id_defaults_to_the_origins_host() {
        let rp = config(Some("http://localhost:8080"), None)
            .relying_party("site")
            .unwrap()
            .unwrap();
        assert_eq!(
            (rp.id(), rp.origin(), rp.name()),
            ("localhost", "http://localhost:8080", "site")
        );
        let rp = config(Some("https://login.example.com"), Some("example.com"))
            .relying_party("site")
            .unwrap()
            .unwrap();
        assert_eq!(rp.id(), "example.com");
    }

    #[test]
    fn an_insecure_or_mismatched_origin_is_refused_with_the_reason() {
        let plain = config(Some("http://example.com"), None).relying_party("x");
        assert!(plain.unwrap_err().contains("https://"));
        assert!(
            config(Some("https://example.com"), Some("other.org"))
                .relying_party("x")
                .is_err()
        );
        assert!(config(Some("nonsense"), None).relying_party("x").is_err());
    }
}
