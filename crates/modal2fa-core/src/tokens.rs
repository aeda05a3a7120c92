//! Signed, expiring links for password reset and invitations, and trusted-device tokens.
//!
//! A link token is `uid.expires.sig`, where `sig` is HMAC-SHA256 (the `LinkToken` subkey)
//! over the purpose, the user id, the expiry, and a fingerprint of the user's current
//! password hash and last sign-in. Setting a password or signing in changes the
//! fingerprint, so every earlier link dies at once; nothing is stored.

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::crypto::{random_token, sha256};
use crate::model::{TrustedDevice, User, UserId};
use crate::ports::SecretGenerator;
use crate::secret::{KeyPurpose, Keys, SecretString, constant_time_eq};

/// What a link is for; a token for one purpose never verifies for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// "Forgotten password".
    PasswordReset,
    /// "Welcome, set your password".
    Invitation,
}

impl LinkPurpose {
    fn tag(self) -> &'static str {
        match self {
            Self::PasswordReset => "reset",
            Self::Invitation => "invite",
        }
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token at all.
    #[error("the link is malformed")]
    Malformed,
    /// Signature wrong: forged, for another purpose, already used, or superseded by a
    /// password change or sign-in.
    #[error("the link is invalid or has already been used")]
    Invalid,
    /// Past its expiry.
    #[error("the link has expired")]
    Expired,
}

/// A link token split into its parts; the user id is untrusted until [`LinkSigner::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLink {
    user_id: UserId,
    expires: i64,
    sig: Vec<u8>,
}

impl ParsedLink {
    /// Splits a token. Only the format is checked.
    pub fn parse(token: &str) -> Result<Self, LinkError> {
        let mut parts = token.trim().split('.');
        let (Some(uid), Some(exp), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Malformed);
        };
        Ok(Self {
            user_id: UserId(uid.parse().map_err(|_| LinkError::Malformed)?),
            expires: exp.parse().map_err(|_| LinkError::Malformed)?,
            sig: BASE64URL_NOPAD
                .decode(sig.as_bytes())
                .map_err(|_| LinkError::Malformed)?,
        })
    }

    /// The user the link claims to be for (load this user, then verify).
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// Whether the expiry the link claims has passed. Unauthenticated until
    /// [`LinkSigner::verify`]: good for refusing a stale link early, never for accepting one.
    pub fn claims_expired(&self, now: OffsetDateTime) -> bool {
        now.unix_timestamp() >= self.expires
    }
}

/// Issues and verifies link tokens.
#[derive(Clone)]
pub struct LinkSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner([redacted])")
    }
}

impl LinkSigner {
    /// A signer with the `LinkToken` subkey.
    pub fn new(keys: &Keys) -> Self {
        Self {
            key: *keys.get(KeyPurpose::LinkToken),
        }
    }

    fn sign(&self, purpose: LinkPurpose, user: &User, expires: i64) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key length");
        let fingerprint = format!(
            "{}|{}|{}|{}|{}",
            purpose.tag(),
            user.id,
            expires,
            user.password_hash.as_deref().unwrap_or(""),
            user.last_login
                .map(|t| t.unix_timestamp_nanos())
                .unwrap_or(0)
        );
        mac.update(fingerprint.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// A token for `user`, valid for `lifetime` from `now`.
    pub fn issue(
        &self,
        purpose: LinkPurpose,
        user: &User,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> SecretString {
        let expires = (now + lifetime).unix_timestamp();
        let sig = self.sign(purpose, user, expires);
        SecretString::new(format!(
            "{}.{}.{}",
            user.id,
            expires,
            BASE64URL_NOPAD.encode(&sig)
        ))
    }

    /// Checks a parsed token against the user it names, as that user is now.
    pub fn verify(
        &self,
        purpose: LinkPurpose,
        link: &ParsedLink,
        user: &User,
        now: OffsetDateTime,
    ) -> Result<(), LinkError> {
        if link.user_id != user.id {
            return Err(LinkError::Invalid);
        }
        let expected = self.sign(purpose, user, link.expires);
        if !constant_time_eq(&expected, &link.sig) {
            return Err(LinkError::Invalid);
        }
        if now.unix_timestamp() >= link.expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

/// The value of a trusted-device cookie: `id:key`, 128-bit id and 256-bit key from the
/// CSPRNG. Only SHA-256 of the key is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedDeviceToken {
    id: String,
    key: SecretString,
}

impl std::fmt::Debug for TrustedDeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedDeviceToken({}:[redacted])", self.id)
    }
}

/// How a presented trusted-device token compares with the stored device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedTokenMatch {
    /// The current key.
    Current,
    /// The key that the last rotation replaced: the cookie was copied (theft signal).
    Superseded,
    /// Neither.
    Unknown,
}

impl TrustedDeviceToken {
    /// A fresh token with a new id.
    pub fn generate(rng: &dyn SecretGenerator) -> Self {
        Self {
            id: random_token(rng, 16),
            key: SecretString::new(random_token(rng, 32)),
        }
    }

    /// The same device with a new key (rotation).
    pub fn rotated(&self, rng: &dyn SecretGenerator) -> Self {
        Self {
            id: self.id.clone(),
            key: SecretString::new(random_token(rng, 32)),
        }
    }

    /// Parses a cookie value; `None` when malformed.
    pub fn parse(value: &str) -> Option<Self> {
        let (id, key) = value.trim().split_once(':')?;
        let ok = |s: &str| {
            (16..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        (ok(id) && ok(key)).then(|| Self {
            id: id.to_owned(),
            key: SecretString::new(key),
        })
    }

    /// The public id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The cookie value `id:key`.
    pub fn cookie_value(&self) -> SecretString {
        SecretString::new(format!("{}:{}", self.id, self.key.expose()))
    }

    /// SHA-256 of the key, the only form stored.
    pub fn key_hash(&self) -> Vec<u8> {
        sha256(self.key.expose().as_bytes()).to_vec()
    }

    /// Compares with a stored device in constant time.
    pub fn matches(&self, device: &TrustedDevice) -> TrustedTokenMatch {
        let hash = self.key_hash();
        if device.id != self.id {
            return TrustedTokenMatch::Unknown;
        }
        if constant_time_eq(&hash, &device.key_hash) {
            TrustedTokenMatch::Current
        } else if device
            .previous_key_hash
            .as_deref()
            .is_some_and(|p| constant_time_eq(&hash, p))
        {
            TrustedTokenMatch::Superseded
        } else {
            TrustedTokenMatch::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Username;
    use crate::secret::ServerSecret;
    use crate::testutil::SequenceRandom;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn user() -> User {
        User {
            id: UserId(7),
            username: Username::parse("alice").unwrap(),
            email: None,
            first_name: String::new(),
            last_name: String::new(),
            password_hash: Some("$argon2id$old".into()),
            is_active: true,
            is_superuser: false,
            created_at: NOW,
            last_login: Some(NOW - Duration::days(1)),
            password_changed_at: None,
        }
    }

    fn signer() -> LinkSigner {
        LinkSigner::new(&Keys::derive(&ServerSecret::new(vec![9; 32]).unwrap()))
    }

    fn check(
        purpose: LinkPurpose,
        token: &SecretString,
        u: &User,
        at: OffsetDateTime,
    ) -> Result<(), LinkError> {
        let parsed = ParsedLink::parse(token.expose())?;
        signer().verify(purpose, &parsed, u, at)
    }

    #[test]
    fn a_reset_link_verifies_for_its_user_until_it_expires() {
        let t = signer().issue(LinkPurpose::PasswordReset, &user(), NOW, Duration::days(3));
        assert_eq!(ParsedLink::parse(t.expose()).unwrap().user_id(), UserId(7));
        assert_eq!(
            check(
                LinkPurpose::PasswordReset,
                &t,
                &user(),
                NOW + Duration::days(2)
            ),
            Ok(())
        );
        assert_eq!(
            check(
                LinkPurpose::PasswordReset,
                &t,
                &user(),
                NOW + Duration::days(3)
            ),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn a_link_dies_when_the_password_changes_or_the_user_signs_in() {
        let t = signer().issue(LinkPurpose::PasswordReset, &user(), NOW, Duration::days(3));
        let mut changed = user();
        changed.password_hash = Some("$argon2id$new".into());
        assert_eq!(
            check(LinkPurpose::PasswordReset, &t, &changed, NOW),
            Err(LinkError::Invalid)
        );
        let mut signed_in = user();
        signed_in.last_login = Some(NOW + Duration::minutes(1));
        assert_eq!(
            check(LinkPurpose::PasswordReset, &t, &signed_in, NOW),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn a_link_is_bound_to_its_purpose_and_its_user() {
        let t = signer().issue(LinkPurpose::Invitation, &user(), NOW, Duration::days(3));
        assert_eq!(
            check(LinkPurpose::PasswordReset, &t, &user(), NOW),
            Err(LinkError::Invalid)
        );
        let mut other = user();
        other.id = UserId(8);
        assert_eq!(
            check(LinkPurpose::Invitation, &t, &other, NOW),
            Err(LinkError::Invalid)
        );
        let forged = t.expose().replacen("7.", "8.", 1);
        let parsed = ParsedLink::parse(&forged).unwrap();
        assert_eq!(
            signer().verify(LinkPurpose::Invitation, &parsed, &other, NOW),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn malformed_links_are_refused_without_panicking() {
        for bad in ["", "a.b.c", "1.2", "1.2.3.4", "1.x.AAAA", "1.2.!!!"] {
            assert_eq!(ParsedLink::parse(bad), Err(LinkError::Malformed), "{bad}");
        }
    }

    #[test]
    fn trusted_device_tokens_round_trip_and_rotate() {
        let rng = SequenceRandom::new(5);
        let t = TrustedDeviceToken::generate(&rng);
        let parsed = TrustedDeviceToken::parse(t.cookie_value().expose()).unwrap();
        assert_eq!(parsed, t);
        let r = t.rotated(&rng);
        assert_eq!(r.id(), t.id());
        assert_ne!(r.key_hash(), t.key_hash());
        assert!(!format!("{t:?}").contains(t.cookie_value().expose().split(':').nth(1).unwrap()));
        for bad in [
            "",
            "nocolon",
            "a:b",
            "x:yyyyyyyyyyyyyyyyyyyy",
            "!!!!!!!!!!!!!!!!:yyyyyyyyyyyyyyyyyy",
        ] {
            assert!(TrustedDeviceToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_presented_token_is_current_superseded_or_unknown() {
        let rng = SequenceRandom::new(5);
        let old = TrustedDeviceToken::generate(&rng);
        let new = old.rotated(&rng);
        let device = TrustedDevice {
            id: old.id().to_owned(),
            user_id: UserId(1),
            name: "laptop".into(),
            key_hash: new.key_hash(),
            previous_key_hash: Some(old.key_hash()),
            created_at: NOW,
            last_used_at: NOW,
            last_ip: None,
            user_agent: String::new(),
        };
        assert_eq!(new.matches(&device), TrustedTokenMatch::Current);
        assert_eq!(old.matches(&device), TrustedTokenMatch::Superseded);
        assert_eq!(
            new.rotated(&rng).matches(&device),
            TrustedTokenMatch::Unknown
        );
        assert_eq!(
            TrustedDeviceToken::generate(&rng).matches(&device),
            TrustedTokenMatch::Unknown
        );
    }
}
