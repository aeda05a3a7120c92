//! Usernames and email addresses: one canonical form.
//!
//! A username is kept as it was typed when the account was created: that is what is
//! shown and audited. It is compared only in its canonical form,
//! [`Username::canonical`], computed by [`canonical_form`]: NFKC, then lower case, then
//! NFKC again (lower-casing can leave a string that is not NFKC, as `İ` becomes `i` and a
//! combining dot). Lower-casing stands in for Unicode case folding: it is Rust's full
//! lower-case mapping, which differs from folding only for a few letters (`ß` stays `ß`,
//! a final `ς` stays `ς`, Cherokee). So:
//!
//! - case, width and compatibility forms are one name: `Alice`, `ALICE`, `ａｌｉｃｅ`
//!   (fullwidth), `𝐚lice`, and `ﬁona` / `fiona`, `Kim` with the Kelvin sign / `kim`;
//! - accents are not folded: `alíce` and `alice` are two names, two accounts and two
//!   lockout counters (a decomposed accent, a letter and a combining mark, is not a letter
//!   or a digit: the character rule refuses it before anything is compared).
//!
//! Stores look users up by the canonical form and keep it unique (creating or renaming a
//! user to a name whose canonical form is taken is a
//! [`Conflict`](crate::ports::PortError::Conflict)), and [`LockoutKey::user`] is built
//! from the same form. A store answers a lookup only with a user whose canonical form is
//! the one asked for, so every spelling that reaches an account counts its failures on
//! that account's one lockout key, and a spelling that does not reach it counts on its
//! own. For that a store must compare canonical forms and lockout keys as bytes: the
//! SeaORM adapter gives those columns binary collations on MySQL/MariaDB, whose default
//! collations would find `alice` for `alíce` (see `docs/PERSISTENCE.md`).
//!
//! Email addresses are compared the same way, [`Email::canonical`] over the whole
//! address. A name or an address whose canonical form would not fit its column (NFKC can
//! turn one character into up to 18) is refused as too long.
//!
//! [`LockoutKey::user`]: crate::lockout::LockoutKey::user

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::parse::{ParseError, Problem};

/// The canonical form of a username or an email address: NFKC, lower case, NFKC (see
/// the [module documentation](self)). Idempotent: a canonical form is its own.
pub fn canonical_form(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let lower = text.nfkc().collect::<String>().to_lowercase();
    lower.nfkc().collect()
}

/// A username: 1–150 characters of letters, digits and `@ . + - _` (Django's rule), trimmed,
/// whose [canonical form](Self::canonical) is at most 150 characters too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Longest accepted username, in characters.
    pub const MAX_LEN: usize = 150;

    /// Parses untrusted input.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ParseError::new("username", Problem::Required));
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(ParseError::new(
                "username",
                Problem::TooLong { max: Self::MAX_LEN },
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'))
        {
            return Err(ParseError::new("username", Problem::UsernameCharacters));
        }
        if canonical_form(s).chars().count() > Self::MAX_LEN {
            return Err(ParseError::new(
                "username",
                Problem::TooLong { max: Self::MAX_LEN },
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The username as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form compared by lookups, uniqueness and lockout keys: NFKC, lower case, NFKC
    /// ([`canonical_form`]). `ALICE` and `ａｌｉｃｅ` are `alice`; `alíce` stays `alíce`.
    pub fn canonical(&self) -> String {
        canonical_form(&self.0)
    }
}

impl TryFrom<String> for Username {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: one `@`, a non-empty local part, a dotted domain, at most 254
/// bytes (and a [canonical form](Self::canonical) of at most 254 characters); the domain
/// is lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Longest accepted address, in bytes (and its canonical form's, in characters).
    pub const MAX_LEN: usize = 254;

    /// Parses untrusted input.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ParseError::new("email", Problem::Required));
        }
        if s.len() > Self::MAX_LEN {
            return Err(ParseError::new(
                "email",
                Problem::TooLong { max: Self::MAX_LEN },
            ));
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or(ParseError::new("email", Problem::MissingAt))?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.chars().any(|c| c.is_whitespace() || c.is_control());
        if !local_ok {
            return Err(ParseError::new("email", Problem::LocalPart));
        }
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !domain_ok {
            return Err(ParseError::new("email", Problem::Domain));
        }
        let address = format!("{local}@{}", domain.to_lowercase());
        if canonical_form(&address).chars().count() > Self::MAX_LEN {
            return Err(ParseError::new(
                "email",
                Problem::TooLong { max: Self::MAX_LEN },
            ));
        }
        Ok(Self(address))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form compared by lookups: the whole address in NFKC, lower case, NFKC
    /// ([`canonical_form`]).
    pub fn canonical(&self) -> String {
        canonical_form(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
