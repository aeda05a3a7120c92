//! Encryption of TOTP secrets at rest, hashing helpers and random tokens.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use sha2::{Digest, Sha256};

use crate::model::UserId;
use crate::ports::SecretGenerator;
use crate::secret::{KeyPurpose, Keys, SecretBytes};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// A stored secret could not be decrypted: wrong key, tampered, or bound to another user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored secret cannot be decrypted")]
pub struct DecryptError;

/// AEAD (XChaCha20-Poly1305) for TOTP secrets, keyed by the `TotpEncryption` subkey, with
/// the owner's user id as associated data: ciphertext copied into another user's row does
/// not decrypt.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

/// What a [`SecretBox`] value is for; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sealed {
    /// A TOTP secret at rest in the factor store.
    StoredSecret,
    /// A TOTP secret being enrolled, held by the browser's form until it is confirmed.
    Enrolment,
    /// A notification waiting in the outbox (it may carry a reset or invitation link).
    OutboxMessage,
}

impl SecretBox {
    /// A box keyed for TOTP secrets.
    pub fn new(keys: &Keys) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new_from_slice(keys.get(KeyPurpose::TotpEncryption))
                .expect("a 32-byte key is valid for XChaCha20-Poly1305"),
        }
    }

    fn aad(purpose: Sealed, user: UserId) -> Vec<u8> {
        let purpose = match purpose {
            Sealed::StoredSecret => "totp-secret",
            Sealed::Enrolment => "totp-enrolment",
            Sealed::OutboxMessage => "outbox-message",
        };
        format!("modal2fa/{purpose}/user:{user}").into_bytes()
    }

    /// Encrypts `plaintext` for `user`: `version ‖ nonce ‖ ciphertext+tag`.
    pub fn seal(&self, user: UserId, plaintext: &[u8], rng: &dyn SecretGenerator) -> Vec<u8> {
        self.seal_for(Sealed::StoredSecret, user, plaintext, rng)
    }

    /// Decrypts a value sealed for `user`.
    pub fn open(&self, user: UserId, sealed: &[u8]) -> Result<SecretBytes, DecryptError> {
        self.open_for(Sealed::StoredSecret, user, sealed)
    }

    /// Encrypts `plaintext` for `user` and one purpose: a value sealed for one purpose
    /// never opens as another (a stored secret is not an enrolment, nor the reverse).
    pub fn seal_for(
        &self,
        purpose: Sealed,
        user: UserId,
        plaintext: &[u8],
        rng: &dyn SecretGenerator,
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let aad = Self::aad(purpose, user);
        let ct = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("encryption of a short secret cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a value sealed for `user` and `purpose`.
    pub fn open_for(
        &self,
        purpose: Sealed,
        user: UserId,
        sealed: &[u8],
    ) -> Result<SecretBytes, DecryptError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(DecryptError);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..=NONCE_LEN]);
        let aad = Self::aad(purpose, user);
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map(SecretBytes::new)
            .map_err(|_| DecryptError)
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(&sha256(bytes))
}

/// `n` random bytes as unpadded base64url (`n = 16` gives 128 bits in 22 characters).
pub fn random_token(rng: &dyn SecretGenerator, n: usize) -> String {
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf);
    let token = BASE64URL_NOPAD.encode(&buf);
    zeroize::Zeroize::zeroize(&mut buf);
    token
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ServerSecret;
    use crate::testutil::SequenceRandom;

    fn boxed() -> SecretBox {
        SecretBox::new(&Keys::derive(&ServerSecret::new(vec![1; 32]).unwrap()))
    }

    #[test]
    fn a_sealed_secret_opens_for_its_owner_only() {
        let rng = SequenceRandom::new(1);
        let b = boxed();
        let sealed = b.seal(UserId(1), b"seed", &rng);
        assert!(!sealed.windows(4).any(|w| w == b"seed"));
        assert_eq!(b.open(UserId(1), &sealed).unwrap().expose(), b"seed");
        assert_eq!(b.open(UserId(2), &sealed), Err(DecryptError));
    }

    #[test]
    fn a_tampered_or_truncated_value_does_not_open() {
        let rng = SequenceRandom::new(1);
        let b = boxed();
        let mut sealed = b.seal(UserId(1), b"seed", &rng);
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(b.open(UserId(1), &sealed), Err(DecryptError));
        assert_eq!(b.open(UserId(1), &[1, 2, 3]), Err(DecryptError));
        let other = SecretBox::new(&Keys::derive(&ServerSecret::new(vec![2; 32]).unwrap()));
        let sealed = b.seal(UserId(1), b"seed", &rng);
        assert_eq!(other.open(UserId(1), &sealed), Err(DecryptError));
    }

    #[test]
    fn two_seals_of_the_same_secret_differ() {
        let rng = SequenceRandom::new(1);
        let b = boxed();
        assert_ne!(
            b.seal(UserId(1), b"seed", &rng),
            b.seal(UserId(1), b"seed", &rng)
        );
    }

    #[test]
    fn random_tokens_have_the_requested_entropy() {
        let rng = SequenceRandom::new(1);
        assert_eq!(random_token(&rng, 16).len(), 22);
        assert_ne!(random_token(&rng, 16), random_token(&rng, 16));
    }
}
