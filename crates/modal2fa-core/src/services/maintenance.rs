//! Housekeeping the server runs in the background: expired sessions, lockout counters that
//! have been quiet for the longest lock, addresses not signed in from for
//! `known_client_days`, and authenticator-app enrolments that were never
//! confirmed, and outbox messages sent or failed longer ago than the outbox's
//! `keep_finished` (today's enrolment stores nothing until it is confirmed; rows left by an
//! earlier version, or by a request cut off between storing and confirming, go here).

use std::sync::Arc;

use super::Context;
use crate::error::ServiceResult;

/// How long an unconfirmed enrolment row may wait before it is purged.
pub const UNCONFIRMED_ENROLMENT_TTL: time::Duration = time::Duration::hours(1);

/// What one purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Sessions past their expiry.
    pub sessions: u64,
    /// Lockout counters quiet for the longest lock.
    pub lockout_counters: u64,
    /// Unconfirmed enrolments older than [`UNCONFIRMED_ENROLMENT_TTL`].
    pub enrolments: u64,
    /// Addresses not signed in from for `known_client_days`.
    pub known_clients: u64,
    /// Outbox messages final for longer than `OutboxSettings::keep_finished`.
    pub outbox_messages: u64,
}

/// Background housekeeping.
#[derive(Clone)]
pub struct MaintenanceService(pub(crate) Arc<Context>);

impl MaintenanceService {
    /// Removes what has expired; each store is purged in one statement.
    pub async fn purge(&self) -> ServiceResult<Purged> {
        let c = &self.0;
        let now = c.now();
        Ok(Purged {
            sessions: c.ports.sessions.purge_expired(now).await?,
            lockout_counters: c
                .ports
                .lockout
                .purge_expired(c.settings.lockout.purge_cutoff(now))
                .await?,
            enrolments: c
                .ports
                .factors
                .purge_unconfirmed_totp(now - UNCONFIRMED_ENROLMENT_TTL)
                .await?,
            known_clients: c
                .ports
                .lockout
                .forget_clients(
                    now - time::Duration::days(i64::from(c.settings.lockout.known_client_days)),
                )
                .await?,
            outbox_messages: c
                .ports
                .outbox
                .purge_finished(now - c.settings.outbox.keep_finished)
                .await?,
        })
    }
}
