//! [`ParseError`]: why an untrusted value was refused. It sits below every other module
//! (it imports nothing of the crate), so the model, the mechanisms and the errors can all
//! use it without an import cycle.

/// Why an untrusted value was refused; the message is fit to show to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{field} {reason}")]
pub struct ParseError {
    /// The name of the field, e.g. `username`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ParseError {
    /// Builds an error for `field`.
    pub const fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}
