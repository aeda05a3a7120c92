//! The notification ports: [`Notification`] and its [`Recipient`], the [`Notifier`] that
//! renders and sends one, and the durable [`Outbox`] every notification waits in.

use std::net::IpAddr;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::PortResult;
use crate::model::{SecurityEventKind, User, UserId};
use crate::secret::SecretString;

/// Who a notification is for: what a message needs of the account, and nothing more
/// (no hash, no factor), so that it can wait in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recipient {
    /// The account.
    pub user_id: UserId,
    /// Its login name.
    pub username: String,
    /// Given name (may be empty).
    pub first_name: String,
    /// Family name (may be empty).
    pub last_name: String,
    /// Where to send.
    pub email: String,
}

impl Recipient {
    /// The recipient for `user`, or `None` when the account has no address.
    pub fn of(user: &User) -> Option<Self> {
        Some(Self {
            user_id: user.id,
            username: user.username.to_string(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            email: user.email.as_ref()?.to_string(),
        })
    }
}

/// A message to a user.
#[derive(Debug, Clone)]
pub enum Notification {
    /// "Welcome <username>, set your password": an invitation link.
    Invitation {
        /// The invited user.
        to: Recipient,
        /// The full link.
        link: SecretString,
    },
    /// A password-reset link.
    PasswordReset {
        /// The user.
        to: Recipient,
        /// The full link.
        link: SecretString,
    },
    /// Something changed in the account's security.
    SecurityChange {
        /// The account owner.
        to: Recipient,
        /// What changed.
        kind: SecurityEventKind,
        /// When.
        at: OffsetDateTime,
        /// From where.
        ip: Option<IpAddr>,
        /// With which browser.
        user_agent: String,
    },
}

impl Notification {
    /// Who it is for.
    pub fn recipient(&self) -> &Recipient {
        match self {
            Self::Invitation { to, .. }
            | Self::PasswordReset { to, .. }
            | Self::SecurityChange { to, .. } => to,
        }
    }

    /// A stable name of its kind for logs and templates (`invitation`, `password_reset`,
    /// `security_change`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Invitation { .. } => "invitation",
            Self::PasswordReset { .. } => "password_reset",
            Self::SecurityChange { .. } => "security_change",
        }
    }
}

/// Delivers notifications (email): renders and hands one message to the transport.
/// Contract: returns only after the message was handed over (or failed); a failure is
/// reported, never panics. The services never call it from a request: they write to the
/// [`Outbox`], and the outbox's sender calls it (see `services::OutboxService`).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notification.
    async fn send(&self, notification: Notification) -> PortResult<()>;
}

/// A message to write to the [`Outbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxMessage {
    /// The account it concerns (the payload is sealed for it).
    pub user_id: UserId,
    /// The sealed payload; opaque to the store.
    pub payload: Vec<u8>,
    /// When it was written.
    pub created_at: OffsetDateTime,
    /// Not sent before this time (a delayed alert; `created_at` otherwise).
    pub send_after: OffsetDateTime,
    /// A key under which a later event may withdraw it while it waits
    /// ([`Outbox::cancel`]); `None` for a message that always goes.
    pub cancel_key: Option<String>,
}

/// A message claimed from the [`Outbox`] by one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The row's id.
    pub id: i64,
    /// The account it concerns.
    pub user_id: UserId,
    /// The sealed payload.
    pub payload: Vec<u8>,
    /// When it was written.
    pub created_at: OffsetDateTime,
    /// How many claims it has had, this one included.
    pub attempts: u32,
}

/// Where a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxOutcome {
    /// Handed to the transport.
    Sent,
    /// Failed; tried again at the given time.
    RetryAt(OffsetDateTime),
    /// Failed for the last time; never tried again.
    Failed,
}

/// The durable outbox: notifications written beside the change they announce, delivered
/// later by a sender. Contract:
/// - `claim_due` hands each due message (pending, `send_after` ≤ `now`, no live claim) to
///   one caller only, however many processes claim at once; the claim lasts until
///   `lease_until`, and a claim that outlives its lease (a sender that died) lets the
///   message be claimed again. Each claim counts one attempt.
/// - `settle` records an outcome only under the claim that took the message (`false`
///   otherwise, changing nothing); `Sent` and `Failed` are final, and a final message's
///   payload is erased (the links it carried never rest in the database).
/// - `cancel` withdraws the pending messages under a key that no sender holds.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Writes a message; returns its id.
    async fn enqueue(&self, message: NewOutboxMessage) -> PortResult<i64>;
    /// Claims up to `limit` due messages under `claim` until `lease_until`, oldest first.
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        claim: &str,
        limit: u64,
    ) -> PortResult<Vec<OutboxMessage>>;
    /// Records the outcome of a claimed message; `error` is the last failure's
    /// description (never the payload).
    async fn settle(
        &self,
        id: i64,
        claim: &str,
        outcome: OutboxOutcome,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> PortResult<bool>;
    /// Withdraws the pending, unclaimed messages under `cancel_key`; returns how many.
    async fn cancel(&self, cancel_key: &str, now: OffsetDateTime) -> PortResult<u64>;
    /// How many messages are pending (not yet sent or finally failed).
    async fn pending(&self) -> PortResult<u64>;
    /// Deletes final messages finished before `before`; returns how many.
    async fn purge_finished(&self, before: OffsetDateTime) -> PortResult<u64>;
}
