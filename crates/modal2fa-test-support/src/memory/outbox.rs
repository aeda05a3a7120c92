//! [`Outbox`] in memory: one mutex makes every claim a compare-and-set.

use std::sync::Mutex;

use async_trait::async_trait;
use modal2fa_core::model::UserId;
use modal2fa_core::ports::{NewOutboxMessage, Outbox, OutboxMessage, OutboxOutcome, PortResult};
use time::OffsetDateTime;

/// Where a stored message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryOutboxState {
    /// Waiting, to be sent at `send_after`.
    Pending,
    /// Sent.
    Sent,
    /// Given up.
    Failed,
}

/// One stored message, as tests inspect it.
#[derive(Debug, Clone)]
pub struct MemoryOutboxRow {
    /// Its id.
    pub id: i64,
    /// The account.
    pub user_id: UserId,
    /// The sealed payload (empty once final).
    pub payload: Vec<u8>,
    /// Written at.
    pub created_at: OffsetDateTime,
    /// Not before.
    pub send_after: OffsetDateTime,
    /// The withdrawal key.
    pub cancel_key: Option<String>,
    /// Where it stands.
    pub state: MemoryOutboxState,
    /// Claims so far.
    pub attempts: u32,
    /// The live claim and its end.
    pub claim: Option<(String, OffsetDateTime)>,
    /// The last failure's description.
    pub last_error: Option<String>,
    /// When it became final.
    pub finished_at: Option<OffsetDateTime>,
}

/// The outbox in memory.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    rows: Mutex<Vec<MemoryOutboxRow>>,
    last_id: std::sync::atomic::AtomicI64,
}

impl MemoryOutbox {
    /// Every message, oldest first.
    pub fn rows(&self) -> Vec<MemoryOutboxRow> {
        self.rows.lock().unwrap().clone()
    }
}

fn claimable(r: &MemoryOutboxRow, now: OffsetDateTime) -> bool {
    r.state == MemoryOutboxState::Pending && r.claim.as_ref().is_none_or(|(_, until)| *until < now)
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn enqueue(&self, m: NewOutboxMessage) -> PortResult<i64> {
        let mut rows = self.rows.lock().unwrap();
        let id = 1 + self
            .last_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        rows.push(MemoryOutboxRow {
            id,
            user_id: m.user_id,
            payload: m.payload,
            created_at: m.created_at,
            send_after: m.send_after,
            cancel_key: m.cancel_key,
            state: MemoryOutboxState::Pending,
            attempts: 0,
            claim: None,
            last_error: None,
            finished_at: None,
        });
        Ok(id)
    }

    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        claim: &str,
        limit: u64,
    ) -> PortResult<Vec<OutboxMessage>> {
        let mut rows = self.rows.lock().unwrap();
        let mut due: Vec<&mut MemoryOutboxRow> = rows
            .iter_mut()
            .filter(|r| r.send_after <= now && claimable(r, now))
            .collect();
        due.sort_by_key(|r| (r.send_after, r.id));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                r.claim = Some((claim.to_owned(), lease_until));
                r.attempts += 1;
                OutboxMessage {
                    id: r.id,
                    user_id: r.user_id,
                    payload: r.payload.clone(),
                    created_at: r.created_at,
                    attempts: r.attempts,
                }
            })
            .collect())
    }

    async fn settle(
        &self,
        id: i64,
        claim: &str,
        outcome: OutboxOutcome,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> PortResult<bool> {
        let mut rows = self.rows.lock().unwrap();
        let Some(r) = rows.iter_mut().find(|r| {
            r.id == id
                && r.state == MemoryOutboxState::Pending
                && r.claim.as_ref().is_some_and(|(c, _)| c == claim)
        }) else {
            return Ok(false);
        };
        r.claim = None;
        r.last_error = error.map(str::to_owned);
        match outcome {
            OutboxOutcome::Sent | OutboxOutcome::Failed => {
                r.state = if outcome == OutboxOutcome::Sent {
                    MemoryOutboxState::Sent
                } else {
                    MemoryOutboxState::Failed
                };
                r.payload.clear();
                r.finished_at = Some(now);
            }
            OutboxOutcome::RetryAt(at) => r.send_after = at,
        }
        Ok(true)
    }

    async fn cancel(&self, cancel_key: &str, now: OffsetDateTime) -> PortResult<u64> {
        let mut rows = self.rows.lock().unwrap();
        let before = rows.len();
        rows.retain(|r| !(r.cancel_key.as_deref() == Some(cancel_key) && claimable(r, now)));
        Ok((before - rows.len()) as u64)
    }

    async fn pending(&self) -> PortResult<u64> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|r| r.state == MemoryOutboxState::Pending)
            .count() as u64)
    }

    async fn purge_finished(&self, before: OffsetDateTime) -> PortResult<u64> {
        let mut rows = self.rows.lock().unwrap();
        let n = rows.len();
        rows.retain(|r| r.finished_at.is_none_or(|f| f >= before));
        Ok((n - rows.len()) as u64)
    }
}
