use std::future::Future;
use std::sync::Arc;

use modal2fa_core::lockout::{LockStatus, LockoutSettings, status};
use modal2fa_core::model::{LockoutKey, Page};
use modal2fa_core::ports::LockoutStore;
use time::Duration;

use super::{NOW, case, e, ensure, run_cases};

type S = Arc<dyn LockoutStore>;

fn user(name: &str) -> LockoutKey {
    LockoutKey::User(name.into())
}

/// Runs the [`LockoutStore`] contract.
pub async fn run_lockout_store_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_cases(
        "LockoutStore",
        &make,
        vec![
            case!(
                "failures accumulate per key and lock at the threshold",
                accumulate_and_lock
            ),
            case!(
                "reading several keys at once returns exactly the entries that exist",
                get_many_returns_existing_entries
            ),
            case!(
                "a first failure is stored by insert only when the key has no entry",
                first_failure_inserts_only_when_absent
            ),
            case!("clearing removes the entry and lifts the lock", clear_lifts),
            case!(
                "50 concurrent failures, first-failure inserts among them, count exactly 50 and lock once",
                concurrent_failures
            ),
            case!("entries list newest first, in pages", list_pages),
            case!(
                "purging removes entries quiet since before the cutoff only",
                purge_stale
            ),
        ],
    )
    .await;
}

async fn accumulate_and_lock(s: S) -> Result<(), String> {
    let settings = LockoutSettings::default();
    let key = user("alice");
    let rule = settings.rule_for(&key);
    for i in 1..=9 {
        let entry = s.record_failure(&key, NOW, rule).await.map_err(e)?;
        ensure!(entry.failures == i, "failure {i}: {entry:?}");
    }
    let other = LockoutKey::Ip("192.0.2.1".into());
    s.record_failure(&other, NOW, settings.rule_for(&other))
        .await
        .map_err(e)?;
    let tenth = s.record_failure(&key, NOW, rule).await.map_err(e)?;
    ensure!(
        status(Some(&tenth), NOW)
            == LockStatus::Locked {
                until: NOW + Duration::seconds(30)
            },
        "tenth locks: {tenth:?}"
    );
    let stored = s.get(&key).await.map_err(e)?.ok_or("entry missing")?;
    ensure!(stored == tenth, "stored {stored:?} != returned {tenth:?}");
    ensure!(
        s.get(&other).await.map_err(e)?.map(|x| x.failures) == Some(1),
        "keys are independent"
    );
    Ok(())
}

async fn get_many_returns_existing_entries(s: S) -> Result<(), String> {
    let settings = LockoutSettings::default();
    let carol = user("carol");
    let ip = LockoutKey::Ip("198.51.100.7".into());
    let absent = user("nobody");
    let unrelated = user("dave");
    for key in [&carol, &ip, &ip, &unrelated] {
        s.record_failure(key, NOW, settings.rule_for(key))
            .await
            .map_err(e)?;
    }
    ensure!(
        s.get_many(&[]).await.map_err(e)?.is_empty(),
        "no keys, no entries"
    );
    let mut got = s.get_many(&[&carol, &absent, &ip]).await.map_err(e)?;
    got.sort_by_key(|x| x.failures);
    let summary: Vec<(LockoutKey, u32)> = got.into_iter().map(|x| (x.key, x.failures)).collect();
    ensure!(
        summary == vec![(carol, 1), (ip, 2)],
        "existing entries of the asked keys only: {summary:?}"
    );
    Ok(())
}

async fn first_failure_inserts_only_when_absent(s: S) -> Result<(), String> {
    let settings = LockoutSettings::default();
    let fresh = user("erin");
    let rule = settings.rule_for(&fresh);
    // A store may always decline (the default); one that accepts stores one failure.
    if let Some(entry) = s.record_first_failure(&fresh, NOW, rule).await.map_err(e)? {
        ensure!(
            entry.failures == 1 && entry.key == fresh,
            "one failure: {entry:?}"
        );
        let stored = s.get(&fresh).await.map_err(e)?;
        ensure!(stored == Some(entry), "stored as returned: {stored:?}");
    } else {
        s.record_failure(&fresh, NOW, rule).await.map_err(e)?;
    }
    let before = s.get(&fresh).await.map_err(e)?;
    ensure!(
        s.record_first_failure(&fresh, NOW, rule)
            .await
            .map_err(e)?
            .is_none(),
        "a key with an entry is declined"
    );
    ensure!(
        s.get(&fresh).await.map_err(e)? == before,
        "and its entry is unchanged"
    );
    Ok(())
}

async fn clear_lifts(s: S) -> Result<(), String> {
    let key = user("bob");
    s.record_failure(&key, NOW, LockoutSettings::default().rule_for(&key))
        .await
        .map_err(e)?;
    ensure!(s.clear(&key).await.map_err(e)?, "clear existing");
    ensure!(s.get(&key).await.map_err(e)?.is_none(), "gone");
    ensure!(!s.clear(&key).await.map_err(e)?, "clear missing");
    Ok(())
}

async fn concurrent_failures(s: S) -> Result<(), String> {
    let key = user("carol");
    let settings = LockoutSettings {
        user_failed_attempts: 50,
        ..Default::default()
    };
    let rule = settings.rule_for(&key);
    // Half go the way the login service goes for a key it saw without a counter: a first
    // failure by insert, falling back to the read-and-compare-and-set when declined.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                if i % 2 == 0
                    && let Some(entry) = s.record_first_failure(&key, NOW, rule).await?
                {
                    return Ok(entry);
                }
                s.record_failure(&key, NOW, rule).await
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.map_err(e)?.map_err(e)?.failures);
    }
    let entry = s.get(&key).await.map_err(e)?.ok_or("missing")?;
    ensure!(
        entry.failures == 50,
        "counter is {} after 50 concurrent failures",
        entry.failures
    );
    ensure!(
        entry.lock_count == 1 && entry.locked_until.is_some(),
        "locked once: {entry:?}"
    );
    seen.sort_unstable();
    ensure!(
        seen == (1..=50).collect::<Vec<_>>(),
        "each call returns its own count: {seen:?}"
    );
    Ok(())
}

async fn list_pages(s: S) -> Result<(), String> {
    let settings = LockoutSettings::default();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let key = user(name);
        s.record_failure(
            &key,
            NOW + Duration::seconds(i as i64),
            settings.rule_for(&key),
        )
        .await
        .map_err(e)?;
    }
    let first = s.list(Page::first(2)).await.map_err(e)?;
    let rest = s
        .list(Page {
            offset: 2,
            limit: 5,
        })
        .await
        .map_err(e)?;
    let keys: Vec<_> = first
        .iter()
        .chain(rest.iter())
        .map(|x| x.key.clone())
        .collect();
    ensure!(
        keys == vec![user("c"), user("b"), user("a")],
        "order {keys:?}"
    );
    Ok(())
}

async fn purge_stale(s: S) -> Result<(), String> {
    let settings = LockoutSettings::default();
    let stale = user("stale");
    let recent = user("recent");
    let locked = user("locked");
    let old = NOW - Duration::days(2);
    s.record_failure(&stale, old, settings.rule_for(&stale))
        .await
        .map_err(e)?;
    s.record_failure(&recent, NOW, settings.rule_for(&recent))
        .await
        .map_err(e)?;
    let long_lock = LockoutSettings {
        user_failed_attempts: 1,
        lockout_seconds: 7 * 86_400,
        max_lockout_seconds: 7 * 86_400,
        ..Default::default()
    };
    s.record_failure(&locked, old, long_lock.rule_for(&locked))
        .await
        .map_err(e)?;
    let removed = s
        .purge_expired(settings.purge_cutoff(NOW))
        .await
        .map_err(e)?;
    ensure!(removed == 1, "removed {removed}");
    ensure!(s.get(&stale).await.map_err(e)?.is_none(), "stale gone");
    ensure!(s.get(&recent).await.map_err(e)?.is_some(), "recent kept");
    ensure!(
        s.get(&locked).await.map_err(e)?.is_some(),
        "still locked kept"
    );
    Ok(())
}
