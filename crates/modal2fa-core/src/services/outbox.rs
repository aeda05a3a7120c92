//! The notification outbox: no request waits on the mail server.
//!
//! The model: a service that has something to tell a user *writes* it to the
//! [`Outbox`] port (one insert, right after the change it announces) and returns; a sender
//! — the server's background task, calling [`OutboxService::deliver_due`] — claims due
//! messages, hands each to the [`Notifier`](crate::ports::Notifier) and settles it:
//!
//! ```text
//! enqueue ──► pending ──claim──► (sending) ──ok──► sent (payload erased)
//!                ▲                   │
//!                └── retry at t ◄────┤ error, attempts < max
//!                                    └──────────► failed (payload erased, last error kept)
//! ```
//!
//! - **Nothing is lost**: a message is a row until it is settled; a sender that dies
//!   holding one lets it go when its lease ends ([`OutboxSettings::lease`]), and the next
//!   sender (after a restart, or another process) takes it.
//! - **Nothing is sent twice by two senders**: a claim is a compare-and-set in the store,
//!   so of several processes claiming at once exactly one gets each message. (A sender
//!   that dies after the mail server accepted a message but before it settled it sends
//!   it again after the lease: SMTP offers nothing stronger than at-least-once.)
//! - **Retries back off**: a transport that cannot be reached (`PortError::Unavailable`)
//!   is tried again after `first_retry · 2^(n-1)`, up to `max_retry`; after
//!   `max_attempts`, or at once when the transport refused the message (bad credentials,
//!   a rejected address), the message is marked failed and its last error logged — the error's
//!   description, never the message, its link or its token.
//! - **Links do not rest in the database**: the payload is sealed (XChaCha20-Poly1305,
//!   bound to the account and to this purpose) and erased once the message is final.
//!
//! [`OutboxSettings::lease`]: crate::settings::OutboxSettings::lease

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Context;
use crate::crypto::{Sealed, random_token};
use crate::error::ServiceResult;
use crate::machine::LoginState;
use crate::model::{RequestContext, SecurityEventKind, User, Username};
use crate::ports::{NewOutboxMessage, Notification, OutboxMessage, OutboxOutcome, Recipient};
use crate::secret::SecretString;

/// A callback the outbox runs after each write: the sender's wake-up (the server passes
/// one that notifies its sender task, so a message goes out at once, not at the next poll).
pub(crate) type Wake = Box<dyn Fn() + Send + Sync>;

/// What is sealed in a row: a [`Notification`] in a stable form.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Stored {
    Invitation {
        to: Recipient,
        link: String,
    },
    PasswordReset {
        to: Recipient,
        link: String,
    },
    SecurityChange {
        to: Recipient,
        event: SecurityEventKind,
        at_unix: i64,
        ip: Option<IpAddr>,
        user_agent: String,
    },
}

impl Stored {
    fn from(n: &Notification) -> Self {
        match n {
            Notification::Invitation { to, link } => Self::Invitation {
                to: to.clone(),
                link: link.expose().to_owned(),
            },
            Notification::PasswordReset { to, link } => Self::PasswordReset {
                to: to.clone(),
                link: link.expose().to_owned(),
            },
            Notification::SecurityChange {
                to,
                kind,
                at,
                ip,
                user_agent,
            } => Self::SecurityChange {
                to: to.clone(),
                event: *kind,
                at_unix: at.unix_timestamp(),
                ip: *ip,
                user_agent: user_agent.clone(),
            },
        }
    }

    fn into_notification(self) -> Option<Notification> {
        Some(match self {
            Self::Invitation { to, link } => Notification::Invitation {
                to,
                link: SecretString::new(link),
            },
            Self::PasswordReset { to, link } => Notification::PasswordReset {
                to,
                link: SecretString::new(link),
            },
            Self::SecurityChange {
                to,
                event,
                at_unix,
                ip,
                user_agent,
            } => Notification::SecurityChange {
                to,
                kind: event,
                at: OffsetDateTime::from_unix_timestamp(at_unix).ok()?,
                ip,
                user_agent,
            },
        })
    }
}

/// What one [`OutboxService::deliver_due`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Messages claimed.
    pub claimed: usize,
    /// Handed to the transport.
    pub sent: usize,
    /// Failed, to be tried again.
    pub retried: usize,
    /// Failed for the last time (or unreadable).
    pub failed: usize,
}

/// The outbox's sender side (see the [module documentation](self)).
#[derive(Clone)]
pub struct OutboxService(pub(crate) Arc<Context>);

impl OutboxService {
    /// Runs `wake` after every message written (once per process; a second call is
    /// ignored and returns `false`).
    pub fn on_enqueue(&self, wake: impl Fn() + Send + Sync + 'static) -> bool {
        self.0.outbox_wake.set(Box::new(wake)).is_ok()
    }

    /// Claims the due messages (one batch) and delivers each, settling it as sent, to be
    /// retried, or failed. A store failure while claiming is returned (nothing was
    /// claimed); one while settling is logged, and the message is claimed again when its
    /// lease ends.
    pub async fn deliver_due(&self) -> ServiceResult<Delivered> {
        let c = &self.0;
        let s = c.settings.outbox;
        let now = c.now();
        let claim = random_token(c.ports.random.as_ref(), 16);
        let batch = c
            .ports
            .outbox
            .claim_due(now, now + s.lease, &claim, s.batch)
            .await?;
        let mut done = Delivered {
            claimed: batch.len(),
            ..Delivered::default()
        };
        for message in batch {
            let (outcome, error) = match self.open(&message) {
                None => {
                    tracing::error!(
                        message = message.id,
                        "an outbox message cannot be opened (sealed with another server secret?); marked failed"
                    );
                    (OutboxOutcome::Failed, Some("unreadable payload".to_owned()))
                }
                Some(n) => match c.ports.notifier.send(n).await {
                    Ok(()) => (OutboxOutcome::Sent, None),
                    Err(e) => {
                        let error = crate::error::source_chain(&e);
                        // Only an unreachable transport is worth trying again; a refusal
                        // (bad credentials, a rejected address) fails the message at once.
                        let transient = matches!(e, crate::ports::PortError::Unavailable(_));
                        if !transient {
                            tracing::error!(message = message.id, attempts = message.attempts, error = %error, "a notification was refused by the transport; marked failed");
                            (OutboxOutcome::Failed, Some(error))
                        } else if message.attempts >= s.max_attempts {
                            tracing::error!(message = message.id, attempts = message.attempts, error = %error, "a notification failed for the last time");
                            (OutboxOutcome::Failed, Some(error))
                        } else {
                            let at = c.now() + s.backoff(message.attempts);
                            tracing::warn!(message = message.id, attempts = message.attempts, error = %error, retry_at = %at, "a notification failed; it will be tried again");
                            (OutboxOutcome::RetryAt(at), Some(error))
                        }
                    }
                },
            };
            match outcome {
                OutboxOutcome::Sent => done.sent += 1,
                OutboxOutcome::RetryAt(_) => done.retried += 1,
                OutboxOutcome::Failed => done.failed += 1,
            }
            match c
                .ports
                .outbox
                .settle(message.id, &claim, outcome, error.as_deref(), c.now())
                .await
            {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    message = message.id,
                    "an outbox message's claim ended before it was settled (a lease shorter than the transport's timeout?)"
                ),
                Err(e) => {
                    tracing::error!(message = message.id, error = %crate::error::source_chain(&e), "settling an outbox message failed; it is claimed again after its lease")
                }
            }
        }
        Ok(done)
    }

    /// Delivers batches until none is due (tests, and a sender catching up).
    pub async fn deliver_all_due(&self) -> ServiceResult<Delivered> {
        let mut total = Delivered::default();
        loop {
            let d = self.deliver_due().await?;
            total.claimed += d.claimed;
            total.sent += d.sent;
            total.retried += d.retried;
            total.failed += d.failed;
            if (d.claimed as u64) < self.0.settings.outbox.batch {
                return Ok(total);
            }
        }
    }

    /// How many messages wait (pending, not yet final).
    pub async fn pending(&self) -> ServiceResult<u64> {
        Ok(self.0.ports.outbox.pending().await?)
    }

    fn open(&self, m: &OutboxMessage) -> Option<Notification> {
        let plain = self
            .0
            .secret_box
            .open_for(Sealed::OutboxMessage, m.user_id, &m.payload)
            .ok()?;
        serde_json::from_slice::<Stored>(plain.expose())
            .ok()?
            .into_notification()
    }
}

impl Context {
    /// Tells the owner (through the outbox); a failure is logged and never undoes the change.
    pub async fn notify(&self, user: &User, kind: SecurityEventKind, ctx: &RequestContext) {
        self.notify_later(user, kind, ctx, None, None).await;
    }

    /// [`Context::notify`], sent at `send_after` unless withdrawn under `cancel_key`
    /// before then.
    pub async fn notify_later(
        &self,
        user: &User,
        kind: SecurityEventKind,
        ctx: &RequestContext,
        send_after: Option<OffsetDateTime>,
        cancel_key: Option<String>,
    ) {
        if !self.policy.notify_security_change(user, kind) {
            return;
        }
        let Some(to) = Recipient::of(user) else {
            tracing::info!(user = %user.id, ?kind, "a security notification is due, but the account has no address");
            return;
        };
        let n = Notification::SecurityChange {
            to,
            kind,
            at: self.now(),
            ip: Some(ctx.ip),
            user_agent: ctx.user_agent.clone(),
        };
        self.enqueue(&n, send_after, cancel_key).await;
    }

    /// Tells the owner that failed sign-ins just locked their account.
    pub(crate) async fn alert_locked(
        &self,
        loaded: Option<&User>,
        name: Option<&Username>,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let owner = match (loaded, name) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(name)) => self.account_named(name).await?,
            (None, None) => None,
        };
        if let Some(u) = owner.filter(|u| u.is_active) {
            self.notify(&u, SecurityEventKind::AccountLocked, ctx).await;
        }
        Ok(())
    }

    /// After a password step that left `state` waiting for the second factor (not a
    /// first-time set-up): the "second step not completed" alert, due
    /// `Settings::second_factor_alert_after` after the password, withdrawn by the second
    /// factor (see `factor_step`).
    pub(crate) async fn schedule_second_factor_alert(
        &self,
        state: &LoginState,
        user: &User,
        ctx: &RequestContext,
    ) {
        if let (LoginState::PendingSecondFactor(p), Some(after)) =
            (state, self.settings.second_factor_alert_after)
            && !p.setup_required
        {
            let (at, key) = (Some(p.since + after), second_factor_alert_key(p));
            let kind = SecurityEventKind::SecondFactorNotCompleted;
            self.notify_later(user, kind, ctx, at, Some(key)).await;
        }
    }

    /// Writes `n` to the outbox, to go out at `send_after` (now when `None`), withdrawable
    /// under `cancel_key`. A failure is logged and never undoes the change it announces.
    pub(crate) async fn enqueue(
        &self,
        n: &Notification,
        send_after: Option<OffsetDateTime>,
        cancel_key: Option<String>,
    ) {
        let to = n.recipient().user_id;
        let plain = serde_json::to_vec(&Stored::from(n)).expect("a notification serialises");
        let payload = self.secret_box.seal_for(
            Sealed::OutboxMessage,
            to,
            &plain,
            self.ports.random.as_ref(),
        );
        let now = self.now();
        let written = self
            .ports
            .outbox
            .enqueue(NewOutboxMessage {
                user_id: to,
                payload,
                created_at: now,
                send_after: send_after.unwrap_or(now),
                cancel_key,
            })
            .await;
        match written {
            Ok(_) => {
                if let Some(wake) = self.outbox_wake.get() {
                    wake();
                }
            }
            Err(e) => tracing::error!(
                user = %to,
                kind = n.kind_name(),
                error = %crate::error::source_chain(&e),
                "writing a notification to the outbox failed"
            ),
        }
    }

    /// Withdraws the waiting messages under `cancel_key` (a delayed alert that no longer
    /// applies). A failure is logged: the alert then goes out.
    pub(crate) async fn withdraw(&self, cancel_key: &str) {
        if let Err(e) = self.ports.outbox.cancel(cancel_key, self.now()).await {
            tracing::warn!(error = %crate::error::source_chain(&e), "withdrawing a delayed notification failed");
        }
    }
}

/// The key of the "second step not completed" alert of the pending sign-in `p`.
pub(crate) fn second_factor_alert_key(p: &crate::machine::Pending) -> String {
    format!(
        "second-factor:{}:{}",
        p.user_id,
        p.since.unix_timestamp_nanos()
    )
}

/// The `OnceLock` the context holds for [`OutboxService::on_enqueue`].
pub(crate) type WakeSlot = OnceLock<Wake>;
