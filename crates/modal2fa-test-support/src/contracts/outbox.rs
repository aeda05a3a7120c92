use std::future::Future;
use std::sync::Arc;

use modal2fa_core::model::UserId;
use modal2fa_core::ports::{NewOutboxMessage, Outbox, OutboxOutcome};
use time::Duration;

use super::{NOW, case, e, ensure, run_cases};

type S = Arc<dyn Outbox>;

fn message(user: i64, payload: &[u8]) -> NewOutboxMessage {
    NewOutboxMessage {
        user_id: UserId(user),
        payload: payload.to_vec(),
        created_at: NOW,
        send_after: NOW,
        cancel_key: None,
    }
}

fn lease() -> time::OffsetDateTime {
    NOW + Duration::minutes(5)
}

/// Runs the [`Outbox`] contract.
pub async fn run_outbox_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_cases(
        "Outbox",
        &make,
        vec![
            case!(
                "a written message is claimed once, with its payload, and counts an attempt",
                claim_once
            ),
            case!(
                "messages are claimed oldest first, a batch at a time",
                claim_in_order
            ),
            case!(
                "a message is not claimed before its send-after time",
                not_before_send_after
            ),
            case!(
                "a claim that outlives its lease lets the message be claimed again",
                lease_expires
            ),
            case!(
                "only the claim that took a message settles it",
                settle_needs_the_claim
            ),
            case!(
                "a sent message is final and its payload erased",
                sent_is_final
            ),
            case!(
                "a message to retry waits until its retry time, then is claimed with its attempts counted",
                retry_waits
            ),
            case!(
                "cancelling withdraws the pending messages under the key, not a claimed one",
                cancel_pending_only
            ),
            case!(
                "purging removes final messages finished before the cutoff only",
                purge_finished
            ),
            case!(
                "20 concurrent claimers take each of 50 messages exactly once",
                concurrent_claims
            ),
        ],
    )
    .await;
}

async fn claim_once(s: S) -> Result<(), String> {
    let id = s.enqueue(message(7, b"sealed")).await.map_err(e)?;
    ensure!(s.pending().await.map_err(e)? == 1, "one pending");
    let got = s.claim_due(NOW, lease(), "a", 10).await.map_err(e)?;
    ensure!(got.len() == 1, "claimed {got:?}");
    let m = &got[0];
    ensure!(
        m.id == id && m.user_id == UserId(7) && m.payload == b"sealed" && m.attempts == 1,
        "claimed {m:?}"
    );
    ensure!(m.created_at == NOW, "created_at {}", m.created_at);
    let again = s.claim_due(NOW, lease(), "b", 10).await.map_err(e)?;
    ensure!(again.is_empty(), "claimed twice: {again:?}");
    Ok(())
}

async fn claim_in_order(s: S) -> Result<(), String> {
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut m = message(1, &[i]);
        m.send_after = NOW - Duration::seconds(10 - i64::from(i));
        ids.push(s.enqueue(m).await.map_err(e)?);
    }
    let first = s.claim_due(NOW, lease(), "a", 3).await.map_err(e)?;
    let got: Vec<i64> = first.iter().map(|m| m.id).collect();
    ensure!(got == ids[..3], "first batch {got:?} of {ids:?}");
    let rest = s.claim_due(NOW, lease(), "b", 3).await.map_err(e)?;
    let got: Vec<i64> = rest.iter().map(|m| m.id).collect();
    ensure!(got == ids[3..], "second batch {got:?} of {ids:?}");
    Ok(())
}

async fn not_before_send_after(s: S) -> Result<(), String> {
    let mut m = message(1, b"later");
    m.send_after = NOW + Duration::minutes(10);
    s.enqueue(m).await.map_err(e)?;
    ensure!(
        s.claim_due(NOW, lease(), "a", 10)
            .await
            .map_err(e)?
            .is_empty(),
        "claimed before its time"
    );
    let later = NOW + Duration::minutes(10);
    let got = s
        .claim_due(later, later + Duration::minutes(5), "a", 10)
        .await
        .map_err(e)?;
    ensure!(got.len() == 1, "not claimed at its time: {got:?}");
    Ok(())
}

async fn lease_expires(s: S) -> Result<(), String> {
    s.enqueue(message(1, b"x")).await.map_err(e)?;
    ensure!(
        s.claim_due(NOW, lease(), "dead", 10)
            .await
            .map_err(e)?
            .len()
            == 1,
        "first claim"
    );
    let during = NOW + Duration::minutes(4);
    ensure!(
        s.claim_due(during, during + Duration::minutes(5), "b", 10)
            .await
            .map_err(e)?
            .is_empty(),
        "claimed during another's lease"
    );
    let after = NOW + Duration::minutes(6);
    let got = s
        .claim_due(after, after + Duration::minutes(5), "b", 10)
        .await
        .map_err(e)?;
    ensure!(
        got.len() == 1 && got[0].attempts == 2,
        "after the lease: {got:?}"
    );
    ensure!(
        !s.settle(got[0].id, "dead", OutboxOutcome::Sent, None, after)
            .await
            .map_err(e)?,
        "the dead claim settled the message"
    );
    Ok(())
}

async fn settle_needs_the_claim(s: S) -> Result<(), String> {
    let id = s.enqueue(message(1, b"x")).await.map_err(e)?;
    ensure!(
        !s.settle(id, "a", OutboxOutcome::Sent, None, NOW)
            .await
            .map_err(e)?,
        "settled without a claim"
    );
    s.claim_due(NOW, lease(), "a", 10).await.map_err(e)?;
    ensure!(
        !s.settle(id, "b", OutboxOutcome::Sent, None, NOW)
            .await
            .map_err(e)?,
        "settled under another claim"
    );
    ensure!(
        s.settle(id, "a", OutboxOutcome::Sent, None, NOW)
            .await
            .map_err(e)?,
        "its own claim did not settle it"
    );
    Ok(())
}

async fn sent_is_final(s: S) -> Result<(), String> {
    let id = s.enqueue(message(1, b"link")).await.map_err(e)?;
    s.claim_due(NOW, lease(), "a", 10).await.map_err(e)?;
    s.settle(id, "a", OutboxOutcome::Sent, None, NOW)
        .await
        .map_err(e)?;
    ensure!(s.pending().await.map_err(e)? == 0, "still pending");
    let later = NOW + Duration::hours(1);
    ensure!(
        s.claim_due(later, later + Duration::minutes(5), "b", 10)
            .await
            .map_err(e)?
            .is_empty(),
        "a sent message was claimed again"
    );
    ensure!(
        !s.settle(id, "a", OutboxOutcome::Failed, Some("x"), NOW)
            .await
            .map_err(e)?,
        "a final message settled again"
    );
    Ok(())
}

async fn retry_waits(s: S) -> Result<(), String> {
    let id = s.enqueue(message(1, b"x")).await.map_err(e)?;
    s.claim_due(NOW, lease(), "a", 10).await.map_err(e)?;
    let at = NOW + Duration::seconds(30);
    ensure!(
        s.settle(
            id,
            "a",
            OutboxOutcome::RetryAt(at),
            Some("connection refused"),
            NOW
        )
        .await
        .map_err(e)?,
        "retry not recorded"
    );
    ensure!(s.pending().await.map_err(e)? == 1, "not pending");
    let before = NOW + Duration::seconds(29);
    ensure!(
        s.claim_due(before, before + Duration::minutes(5), "b", 10)
            .await
            .map_err(e)?
            .is_empty(),
        "claimed before its retry time"
    );
    let got = s
        .claim_due(at, at + Duration::minutes(5), "b", 10)
        .await
        .map_err(e)?;
    ensure!(
        got.len() == 1 && got[0].attempts == 2 && got[0].payload == b"x",
        "retry: {got:?}"
    );
    Ok(())
}

async fn cancel_pending_only(s: S) -> Result<(), String> {
    let mut waiting = message(1, b"alert");
    waiting.send_after = NOW + Duration::minutes(10);
    waiting.cancel_key = Some("alert:1".into());
    s.enqueue(waiting.clone()).await.map_err(e)?;
    let mut other = waiting.clone();
    other.cancel_key = Some("alert:2".into());
    s.enqueue(other).await.map_err(e)?;
    ensure!(
        s.cancel("alert:1", NOW).await.map_err(e)? == 1,
        "not withdrawn"
    );
    ensure!(
        s.pending().await.map_err(e)? == 1,
        "the other key's message went too"
    );
    let mut due = waiting;
    due.send_after = NOW;
    due.cancel_key = Some("alert:3".into());
    s.enqueue(due).await.map_err(e)?;
    s.claim_due(NOW, lease(), "a", 10).await.map_err(e)?;
    ensure!(
        s.cancel("alert:3", NOW).await.map_err(e)? == 0,
        "a claimed message was withdrawn"
    );
    Ok(())
}

async fn purge_finished(s: S) -> Result<(), String> {
    let old = s.enqueue(message(1, b"old")).await.map_err(e)?;
    let new = s.enqueue(message(1, b"new")).await.map_err(e)?;
    s.enqueue(message(1, b"pending")).await.map_err(e)?;
    s.claim_due(NOW, lease(), "a", 2).await.map_err(e)?;
    s.settle(old, "a", OutboxOutcome::Sent, None, NOW)
        .await
        .map_err(e)?;
    s.settle(
        new,
        "a",
        OutboxOutcome::Failed,
        Some("bad address"),
        NOW + Duration::days(2),
    )
    .await
    .map_err(e)?;
    let purged = s.purge_finished(NOW + Duration::days(1)).await.map_err(e)?;
    ensure!(purged == 1, "purged {purged}");
    ensure!(s.pending().await.map_err(e)? == 1, "the pending one went");
    Ok(())
}

async fn concurrent_claims(s: S) -> Result<(), String> {
    for i in 0..50u8 {
        s.enqueue(message(1, &[i])).await.map_err(e)?;
    }
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let claim = format!("claimer-{i}");
                let mut mine = Vec::new();
                loop {
                    let got = s.claim_due(NOW, lease(), &claim, 3).await?;
                    if got.is_empty() {
                        return Ok::<_, modal2fa_core::ports::PortError>(mine);
                    }
                    mine.extend(got.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(e)?.map_err(e)?);
    }
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    ensure!(
        n == 50 && all.len() == 50,
        "{n} claims of {} distinct messages",
        all.len()
    );
    Ok(())
}
