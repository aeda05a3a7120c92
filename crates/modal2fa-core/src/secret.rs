//! Secret values that never show up in logs, and the per-purpose keys derived from the
//! one server secret.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A string that must never be logged: a password, a code, a token.
///
/// `Debug` and `Display` print `[redacted]`; the memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where the value is needed (hashing, comparing, sending).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Bytes that must never be logged (a TOTP seed, a key).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps a value.
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// The secret itself.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[redacted; {} bytes]", self.0.len())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Compares two byte strings in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The one server secret from configuration, from which every key is derived.
#[derive(Clone)]
pub struct ServerSecret(SecretBytes);

/// The server secret was shorter than [`ServerSecret::MIN_LEN`] bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the server secret must be at least {min} bytes long, got {got}", min = ServerSecret::MIN_LEN)]
pub struct ServerSecretTooShort {
    /// Length of the value given.
    pub got: usize,
}

impl ServerSecret {
    /// Smallest accepted length in bytes.
    pub const MIN_LEN: usize = 32;

    /// Accepts a secret of at least [`Self::MIN_LEN`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ServerSecretTooShort> {
        if bytes.len() < Self::MIN_LEN {
            return Err(ServerSecretTooShort { got: bytes.len() });
        }
        Ok(Self(SecretBytes::new(bytes)))
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret([redacted])")
    }
}

/// What a derived key is for. Each purpose gets an independent key (HKDF-SHA256 with a
/// distinct `info`), so a key leaked from one use cannot forge another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Stateless CSRF tokens.
    Csrf,
    /// Password-reset and invitation links.
    LinkToken,
    /// AEAD encryption of TOTP secrets at rest.
    TotpEncryption,
    /// Signing of cookies.
    CookieSigning,
    /// Keyed hashing of recovery codes.
    RecoveryCode,
    /// The WebAuthn user handle of each account (an opaque id that names no user).
    WebAuthnUserHandle,
}

impl KeyPurpose {
    fn info(self) -> &'static [u8] {
        match self {
            Self::Csrf => b"modal2fa/v1/csrf",
            Self::LinkToken => b"modal2fa/v1/link-token",
            Self::TotpEncryption => b"modal2fa/v1/totp-encryption",
            Self::CookieSigning => b"modal2fa/v1/cookie-signing",
            Self::RecoveryCode => b"modal2fa/v1/recovery-code",
            Self::WebAuthnUserHandle => b"modal2fa/v1/webauthn-user-handle",
        }
    }
}

/// The keys derived from the server secret, one per [`KeyPurpose`].
#[derive(Clone)]
pub struct Keys {
    csrf: [u8; 32],
    link_token: [u8; 32],
    totp_encryption: [u8; 32],
    cookie_signing: [u8; 32],
    recovery_code: [u8; 32],
    webauthn_user_handle: [u8; 32],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.csrf.zeroize();
        self.link_token.zeroize();
        self.totp_encryption.zeroize();
        self.cookie_signing.zeroize();
        self.recovery_code.zeroize();
        self.webauthn_user_handle.zeroize();
    }
}

impl Keys {
    /// Derives every purpose key from the server secret.
    pub fn derive(secret: &ServerSecret) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"modal2fa"), secret.0.expose());
        let derive = |purpose: KeyPurpose| {
            let mut out = [0u8; 32];
            hk.expand(purpose.info(), &mut out)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            out
        };
        Self {
            csrf: derive(KeyPurpose::Csrf),
            link_token: derive(KeyPurpose::LinkToken),
            totp_encryption: derive(KeyPurpose::TotpEncryption),
            cookie_signing: derive(KeyPurpose::CookieSigning),
            recovery_code: derive(KeyPurpose::RecoveryCode),
            webauthn_user_handle: derive(KeyPurpose::WebAuthnUserHandle),
        }
    }

    /// The key for one purpose.
    pub fn get(&self, purpose: KeyPurpose) -> &[u8; 32] {
        match purpose {
            KeyPurpose::Csrf => &self.csrf,
            KeyPurpose::LinkToken => &self.link_token,
            KeyPurpose::TotpEncryption => &self.totp_encryption,
            KeyPurpose::CookieSigning => &self.cookie_signing,
            KeyPurpose::RecoveryCode => &self.recovery_code,
            KeyPurpose::WebAuthnUserHandle => &self.webauthn_user_handle,
        }
    }

    /// The two keys a web layer needs, copied out (see [`WebKeys`]).
    pub fn web(&self) -> WebKeys {
        WebKeys {
            csrf: self.csrf,
            cookie_signing: self.cookie_signing,
        }
    }
}

/// The keys a web layer needs — CSRF tokens and cookie signing — as the core derived them
/// from the server secret. [`crate::Modal2fa::web_keys`] hands them out, so a host passes
/// its secret once (to [`crate::Modal2fa::new`]) and the web layer can never run on keys
/// from another secret than the core's. `Debug` prints nothing; the keys are zeroed when
/// dropped.
#[derive(Clone)]
pub struct WebKeys {
    csrf: [u8; 32],
    cookie_signing: [u8; 32],
}

impl WebKeys {
    /// The key of stateless CSRF tokens ([`KeyPurpose::Csrf`]).
    pub fn csrf(&self) -> &[u8; 32] {
        &self.csrf
    }

    /// The key that signs and encrypts cookies ([`KeyPurpose::CookieSigning`]).
    pub fn cookie_signing(&self) -> &[u8; 32] {
        &self.cookie_signing
    }
}

impl fmt::Debug for WebKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebKeys([redacted])")
    }
}

impl Drop for WebKeys {
    fn drop(&mut self) {
        self.csrf.zeroize();
        self.cookie_signing.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_string_never_prints_its_value() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert!(!format!("{:?}", SecretBytes::new(b"hunter2".to_vec())).contains("hunter2"));
    }

    #[test]
    fn a_server_secret_shorter_than_32_bytes_is_refused() {
        assert_eq!(
            ServerSecret::new(vec![0; 31]).unwrap_err(),
            ServerSecretTooShort { got: 31 }
        );
        assert!(ServerSecret::new(vec![0; 32]).is_ok());
    }

    #[test]
    fn each_purpose_gets_a_different_key_and_derivation_is_stable() {
        let secret = ServerSecret::new(vec![7; 32]).unwrap();
        let a = Keys::derive(&secret);
        let b = Keys::derive(&secret);
        let purposes = [
            KeyPurpose::Csrf,
            KeyPurpose::LinkToken,
            KeyPurpose::TotpEncryption,
            KeyPurpose::CookieSigning,
            KeyPurpose::RecoveryCode,
            KeyPurpose::WebAuthnUserHandle,
        ];
        for (i, p) in purposes.iter().enumerate() {
            assert_eq!(a.get(*p), b.get(*p));
            for q in &purposes[i + 1..] {
                assert_ne!(a.get(*p), a.get(*q));
            }
        }
        let other = Keys::derive(&ServerSecret::new(vec![8; 32]).unwrap());
        assert_ne!(a.get(KeyPurpose::Csrf), other.get(KeyPurpose::Csrf));
    }
}
