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

/// What modal2fa accepts when it *creates* an account or sets an address (the command
/// line, invitations, the user admin): the policy hook
/// [`AuthPolicy::name_rules`](crate::policy::AuthPolicy::name_rules) returns it, and a host
/// whose own users table holds other names relaxes it there.
///
/// Signing in and looking up are not bound by it: a name or an address that a store holds
/// is read as it is ([`Username::from_stored`], [`Email::from_stored`]) and can be typed on
/// the login form ([`Username::for_lookup`]), so a host row such as `jane doe` or
/// `ops@localhost` signs in under the default rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NameRules {
    /// The characters a new username may hold besides letters and digits (default
    /// `@.+-_`, Django's rule). Add `' '` to allow inner spaces (the name is trimmed).
    pub username_characters: &'static str,
    /// Whether a new address may have a single-label domain, such as `ops@localhost`
    /// (default: no, the domain must be dotted).
    pub single_label_domains: bool,
}

impl NameRules {
    /// Django's rules: usernames of letters, digits and `@ . + - _`; dotted domains.
    pub const DJANGO: NameRules = NameRules {
        username_characters: "@.+-_",
        single_label_domains: false,
    };

    /// These rules with other characters allowed in usernames besides letters and digits.
    pub const fn with_username_characters(mut self, allowed: &'static str) -> Self {
        self.username_characters = allowed;
        self
    }

    /// These rules with single-label domains (`ops@localhost`) allowed or not.
    pub const fn with_single_label_domains(mut self, allowed: bool) -> Self {
        self.single_label_domains = allowed;
        self
    }
}

impl Default for NameRules {
    fn default() -> Self {
        Self::DJANGO
    }
}

/// Whether `s` holds a control character (a line break, a tab, NUL, …).
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A username, kept as it was given; compared in its [canonical form](Self::canonical),
/// which is at most 150 characters.
///
/// - [`Username::parse`] / [`Username::parse_with`]: a *new* name, under [`NameRules`]
///   (by default 1–150 letters, digits and `@ . + - _`, Django's rule), trimmed.
/// - [`Username::from_stored`]: a name a store holds, exactly as it is: any text that is
///   not blank, holds no control character and fits the canonical length.
/// - [`Username::for_lookup`]: a name typed to sign in: trimmed, then as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Longest accepted username, in characters (and its canonical form's).
    pub const MAX_LEN: usize = 150;

    /// Parses a new username under the default [`NameRules`].
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        Self::parse_with(input, &NameRules::default())
    }

    /// Parses a new username under `rules`, trimmed.
    pub fn parse_with(input: &str, rules: &NameRules) -> Result<Self, ParseError> {
        let s = input.trim();
        let name = Self::for_lookup(s)?;
        let allowed = rules.username_characters;
        if !s
            .chars()
            .all(|c| c.is_alphanumeric() || allowed.contains(c))
        {
            return Err(ParseError::new(
                "username",
                Problem::UsernameCharacters { allowed },
            ));
        }
        Ok(name)
    }

    /// A username as a store holds it, unchanged: refused only when blank, when it holds a
    /// control character, or when it or its canonical form is over [`Self::MAX_LEN`]
    /// characters. A store maps a refusal to
    /// [`PortError::Unreadable`](crate::ports::PortError::Unreadable).
    pub fn from_stored(stored: &str) -> Result<Self, ParseError> {
        if stored.trim().is_empty() {
            return Err(ParseError::new("username", Problem::Required));
        }
        if has_control(stored) {
            return Err(ParseError::new("username", Problem::ControlCharacter));
        }
        let too_long = ParseError::new("username", Problem::TooLong { max: Self::MAX_LEN });
        if stored.chars().count() > Self::MAX_LEN {
            return Err(too_long);
        }
        if canonical_form(stored).chars().count() > Self::MAX_LEN {
            return Err(too_long);
        }
        Ok(Self(stored.to_owned()))
    }

    /// A username typed to sign in (or to look an account up): trimmed, then accepted as
    /// [`Self::from_stored`] accepts it, so every name a store holds can be typed.
    pub fn for_lookup(input: &str) -> Result<Self, ParseError> {
        Self::from_stored(input.trim())
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

/// Deserialising reads a stored value ([`Username::from_stored`]): what was serialised
/// was accepted when it was made.
impl TryFrom<String> for Username {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_stored(&value)
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

/// An email address, compared in its [canonical form](Self::canonical).
///
/// - [`Email::parse`] / [`Email::parse_with`]: a *new* address, under [`NameRules`]: one
///   `@`, a local part of at most 64 bytes without spaces, a dotted domain (or a single
///   label where the rules allow it), at most 254 bytes; trimmed, the domain lower-cased.
/// - [`Email::from_stored`]: an address a store holds, exactly as it is: an `@` with
///   something on both sides, no space or control character, at most 254 bytes.
/// - [`Email::for_lookup`]: an address typed to find an account: trimmed, then as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Longest accepted address, in bytes (and its canonical form's, in characters).
    pub const MAX_LEN: usize = 254;

    /// Parses a new address under the default [`NameRules`].
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        Self::parse_with(input, &NameRules::default())
    }

    /// Parses a new address under `rules`.
    pub fn parse_with(input: &str, rules: &NameRules) -> Result<Self, ParseError> {
        let s = input.trim();
        Self::for_lookup(s)?;
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or(ParseError::new("email", Problem::MissingAt))?;
        let local_ok = !local.is_empty() && local.len() <= 64 && !local.contains('@');
        if !local_ok {
            return Err(ParseError::new("email", Problem::LocalPart));
        }
        let domain_ok = (rules.single_label_domains || domain.contains('.'))
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !domain_ok {
            return Err(ParseError::new("email", Problem::Domain));
        }
        Self::from_stored(&format!("{local}@{}", domain.to_lowercase()))
    }

    /// An address as a store holds it, unchanged: refused only without an `@` between
    /// two non-empty parts, with a space or a control character, or when it (in bytes)
    /// or its canonical form (in characters) is over [`Self::MAX_LEN`]. A store maps a
    /// refusal to [`PortError::Unreadable`](crate::ports::PortError::Unreadable).
    pub fn from_stored(stored: &str) -> Result<Self, ParseError> {
        if stored.trim().is_empty() {
            return Err(ParseError::new("email", Problem::Required));
        }
        let too_long = ParseError::new("email", Problem::TooLong { max: Self::MAX_LEN });
        if stored.len() > Self::MAX_LEN {
            return Err(too_long);
        }
        if has_control(stored) {
            return Err(ParseError::new("email", Problem::ControlCharacter));
        }
        let (local, domain) = stored
            .rsplit_once('@')
            .ok_or(ParseError::new("email", Problem::MissingAt))?;
        if local.is_empty() || local.chars().any(char::is_whitespace) {
            return Err(ParseError::new("email", Problem::LocalPart));
        }
        if domain.is_empty() || domain.chars().any(char::is_whitespace) {
            return Err(ParseError::new("email", Problem::Domain));
        }
        if canonical_form(stored).chars().count() > Self::MAX_LEN {
            return Err(too_long);
        }
        Ok(Self(stored.to_owned()))
    }

    /// An address typed to find an account (a password reset): trimmed, then accepted as
    /// [`Self::from_stored`] accepts it.
    pub fn for_lookup(input: &str) -> Result<Self, ParseError> {
        Self::from_stored(input.trim())
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

/// Deserialising reads a stored value ([`Email::from_stored`]).
impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_stored(&value)
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
