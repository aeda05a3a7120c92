//! The in-memory transport, for tests: it keeps every message it is handed.

use std::sync::{Mutex, PoisonError};

/// One message the [`MemoryTransport`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// The envelope recipient (the bare address).
    pub to: String,
    /// The envelope sender (the bare address).
    pub from: String,
    /// The subject as rendered.
    pub subject: String,
    /// The plain-text body as rendered.
    pub text: String,
    /// The HTML body as rendered.
    pub html: String,
    /// The whole message as it would go on the wire (headers and MIME parts).
    pub raw: Vec<u8>,
}

/// Keeps the messages a notifier sends, in order. Share it with an `Arc` between
/// [`crate::Transport::Memory`] and the test that inspects it.
#[derive(Debug, Default)]
pub struct MemoryTransport {
    sent: Mutex<Vec<SentMail>>,
}

impl MemoryTransport {
    /// An empty transport.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message received so far, oldest first.
    pub fn sent(&self) -> Vec<SentMail> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the messages received so far.
    pub fn clear(&self) {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub(crate) fn push(&self, mail: SentMail) {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mail);
    }
}
