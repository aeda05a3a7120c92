//! [`ParseError`]: why an untrusted value was refused, as a field name and a typed
//! [`Problem`]. It sits below every other module (it imports nothing of the crate), so
//! the model, the mechanisms and the errors can all use it without an import cycle.
//!
//! Its `Display` is plain English for logs and the command line ("username is
//! required"); what a user reads in a browser is worded by the web layer from the
//! `Problem`, so it can be phrased (or translated) there.

use std::fmt;

/// What is wrong with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Problem {
    /// Empty (after trimming).
    Required,
    /// Longer than `max` characters.
    TooLong {
        /// The most characters accepted.
        max: usize,
    },
    /// Longer than `max` bytes (UTF-8).
    TooManyBytes {
        /// The most bytes accepted.
        max: usize,
    },
    /// Shorter than `min` characters.
    TooShort {
        /// The fewest characters accepted.
        min: usize,
    },
    /// A username with a character outside letters, digits and `allowed` (by default
    /// `@.+-_`, Django's rule; see `NameRules`).
    UsernameCharacters {
        /// The characters accepted besides letters and digits.
        allowed: &'static str,
    },
    /// A control character (a line break, a tab, NUL, …).
    ControlCharacter,
    /// An address without `@`.
    MissingAt,
    /// An address whose part before `@` is empty, too long or has spaces.
    LocalPart,
    /// An address whose domain is not a dotted host name.
    Domain,
    /// A code with something other than digits (spaces and dashes aside).
    DigitsOnly,
    /// A code of the wrong length.
    DigitCount {
        /// Fewest digits.
        min: usize,
        /// Most digits.
        max: usize,
    },
    /// Not a whole number.
    NotWholeNumber,
    /// Not one of the names accepted here (listed in `expected`).
    UnknownName {
        /// The accepted names, for the message.
        expected: &'static str,
    },
    /// Not in the expected `prefix:` form.
    MissingPrefix {
        /// The accepted prefixes, for the message.
        expected: &'static str,
    },
    /// Not an IP address or a network in CIDR notation.
    NotAnAddress,
    /// A CIDR prefix length that does not parse.
    BadPrefixLength,
    /// A CIDR prefix longer than the address.
    PrefixTooLong,
    /// A password that is one character repeated.
    RepeatsOneCharacter,
    /// A password equal to the account's username or email.
    SameAsIdentity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Required => f.write_str("is required"),
            Self::TooLong { max } => write!(f, "is longer than {max} characters"),
            Self::TooManyBytes { max } => write!(f, "must be at most {max} bytes long"),
            Self::TooShort { min } => write!(f, "must be at least {min} characters long"),
            Self::UsernameCharacters { allowed } => {
                write!(
                    f,
                    "may contain only letters, digits and {}",
                    spaced(allowed)
                )
            }
            Self::ControlCharacter => f.write_str("must not contain control characters"),
            Self::MissingAt => f.write_str("must contain @"),
            Self::LocalPart => f.write_str("has an invalid part before @"),
            Self::Domain => f.write_str("has an invalid domain"),
            Self::DigitsOnly => f.write_str("must contain digits only"),
            Self::DigitCount { min, max } => write!(f, "must be {min} to {max} digits long"),
            Self::NotWholeNumber => f.write_str("must be a whole number"),
            Self::UnknownName { expected } => write!(f, "must be {expected}"),
            Self::MissingPrefix { expected } => write!(f, "must start with {expected}"),
            Self::NotAnAddress => f.write_str("is not an IP address or CIDR"),
            Self::BadPrefixLength => f.write_str("has an invalid prefix length"),
            Self::PrefixTooLong => f.write_str("has a prefix length that is too long"),
            Self::RepeatsOneCharacter => f.write_str("must not repeat one character"),
            Self::SameAsIdentity => f.write_str("must not be your username or email"),
        }
    }
}

/// `allowed` as a list for a sentence: `@.+-_` is `@ . + - _`, and a space is "space".
pub fn spaced(allowed: &str) -> String {
    allowed
        .chars()
        .map(|c| {
            if c == ' ' {
                "space".to_owned()
            } else {
                c.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why an untrusted value was refused: which field, and what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{field} {problem}")]
pub struct ParseError {
    /// The name of the field, e.g. `username`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: Problem,
}

impl ParseError {
    /// Builds an error for `field`.
    pub const fn new(field: &'static str, problem: Problem) -> Self {
        Self { field, problem }
    }
}
