use std::future::Future;
use std::sync::Arc;

use modal2fa_core::lockout::{LockStatus, LockoutEntry, LockoutKey, LockoutSettings, status};
use modal2fa_core::model::Page;
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
                "a failure counted on a stale read still counts on top of the stored entry",
                stale_reads_still_count
            ),
            case!(
                "every stored write changes the revision",
                revisions_change_with_every_write
            ),
            case!(
                "settling a counted attempt restores the entry, or removes one failure after others counted",
                settle_takes_back_one
            ),
            case!(
                "30 concurrent counted attempts of which 10 are settled leave exactly 20",
                concurrent_settle
            ),
            case!("clearing removes the entry and lifts the lock", clear_lifts),
            case!(
                "keys compare exactly: a key in another case or with an accent is another counter",
                keys_compare_exactly
            ),
            case!(
                "50 concurrent failures from stale and absent reads count exactly 50 and lock once",
                concurrent_failures
            ),
            case!("entries list newest first, in pages", list_pages),
            case!(
                "an address an account signed in from is known until it is forgotten",
                known_clients
            ),
            case!(
                "purging removes entries quiet since before the cutoff only",
                purge_stale
            ),
        ],
    )
    .await;
}

async fn known_clients(s: S) -> Result<(), String> {
    let day = time::Duration::days(1);
    ensure!(
        !s.knows_client("alice", "192.0.2.1", NOW - day)
            .await
            .map_err(e)?,
        "unknown at first"
    );
    s.remember_client("alice", "192.0.2.1", NOW - 3 * day)
        .await
        .map_err(e)?;
    s.remember_client("alice", "192.0.2.1", NOW - day / 2)
        .await
        .map_err(e)?;
    s.remember_client("alíce", "192.0.2.2", NOW - 3 * day)
        .await
        .map_err(e)?;
    ensure!(
        s.knows_client("alice", "192.0.2.1", NOW - day)
            .await
            .map_err(e)?,
        "the latest success counts"
    );
    ensure!(
        !s.knows_client("alice", "192.0.2.2", NOW - 5 * day)
            .await
            .map_err(e)?,
        "another account's address (bytes compared)"
    );
    ensure!(
        !s.knows_client("alice", "192.0.2.1", NOW).await.map_err(e)?,
        "not since now"
    );
    let forgotten = s.forget_clients(NOW - day).await.map_err(e)?;
    ensure!(forgotten == 1, "forgot {forgotten}, not only the old pair");
    ensure!(
        s.knows_client("alice", "192.0.2.1", NOW - day)
            .await
            .map_err(e)?,
        "the recent pair kept"
    );
    Ok(())
}

async fn keys_compare_exactly(s: S) -> Result<(), String> {
    let settings = LockoutSettings::default();
    let alice = user("alice");
    let rule = settings.rule_for(&alice);
    let first = s.record_failure(&alice, None, NOW, rule).await.map_err(e)?;
    s.record_failure(&alice, Some(&first), NOW, rule)
        .await
        .map_err(e)?;
    let others = [user("alíce"), user("ALICE"), user("ali\u{301}ce")];
    for other in &others {
        ensure!(
            s.get(other).await.map_err(e)?.is_none(),
            "{other:?} read alice's counter"
        );
    }
    let many = s
        .get_many(&others.iter().collect::<Vec<_>>())
        .await
        .map_err(e)?;
    ensure!(many.is_empty(), "get_many read {many:?}");
    for other in &others {
        let counted = s.record_failure(other, None, NOW, rule).await.map_err(e)?;
        ensure!(
            counted.failures == 1 && counted.key == *other,
            "{other:?} counted on another row: {counted:?}"
        );
    }
    let back = s
        .get(&alice)
        .await
        .map_err(e)?
        .ok_or("alice's counter is gone")?;
    ensure!(back.failures == 2, "alice's counter changed: {back:?}");
    ensure!(
        s.clear(&others[0]).await.map_err(e)? && s.get(&alice).await.map_err(e)?.is_some(),
        "clearing alíce touched alice"
    );
    Ok(())
}

async fn accumulate_and_lock(s: S) -> Result<(), String> {
    let settings = LockoutSettings::default();
    let key = user("alice");
    let rule = settings.rule_for(&key);
    let mut seen: Option<LockoutEntry> = None;
    for i in 1..=9 {
        let entry = s
            .record_failure(&key, seen.as_ref(), NOW, rule)
            .await
            .map_err(e)?;
        ensure!(entry.failures == i, "failure {i}: {entry:?}");
        seen = Some(entry);
    }
    let other = LockoutKey::Ip("192.0.2.1".into());
    s.record_failure(&other, None, NOW, settings.rule_for(&other))
        .await
        .map_err(e)?;
    let tenth = s
        .record_failure(&key, seen.as_ref(), NOW, rule)
        .await
        .map_err(e)?;
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
        s.record_failure(key, None, NOW, settings.rule_for(key))
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

async fn stale_reads_still_count(s: S) -> Result<(), String> {
    let key = user("erin");
    let rule = LockoutSettings::default().rule_for(&key);
    let first = s.record_failure(&key, None, NOW, rule).await.map_err(e)?;
    ensure!(first.failures == 1, "first: {first:?}");
    // Another writer counts meanwhile; this caller still holds the first read.
    s.record_failure(&key, Some(&first), NOW, rule)
        .await
        .map_err(e)?;
    let third = s
        .record_failure(&key, Some(&first), NOW, rule)
        .await
        .map_err(e)?;
    ensure!(
        third.failures == 3,
        "counted on top of the stored entry: {third:?}"
    );
    // A caller that read no entry while one exists is counted on top of it too.
    let fourth = s.record_failure(&key, None, NOW, rule).await.map_err(e)?;
    ensure!(
        fourth.failures == 4,
        "absent read, existing entry: {fourth:?}"
    );
    let stored = s.get(&key).await.map_err(e)?;
    ensure!(stored == Some(fourth), "stored as returned: {stored:?}");
    Ok(())
}

async fn settle_takes_back_one(s: S) -> Result<(), String> {
    let key = user("gina");
    let rule = LockoutSettings::default().rule_for(&key);
    // A fresh key: the reserved row goes again.
    let reserved = s.record_failure(&key, None, NOW, rule).await.map_err(e)?;
    s.settle(&key, &reserved, None).await.map_err(e)?;
    ensure!(s.get(&key).await.map_err(e)?.is_none(), "the row is gone");
    // An existing entry comes back exactly (but for its revision).
    let before = s.record_failure(&key, None, NOW, rule).await.map_err(e)?;
    let reserved = s
        .record_failure(&key, Some(&before), NOW, rule)
        .await
        .map_err(e)?;
    s.settle(&key, &reserved, Some(&before)).await.map_err(e)?;
    let back = s.get(&key).await.map_err(e)?.ok_or("missing")?;
    ensure!(
        back.failures == before.failures
            && back.lock_count == before.lock_count
            && back.locked_until == before.locked_until,
        "restored: {back:?}, was {before:?}"
    );
    ensure!(
        back.revision != reserved.revision,
        "a new revision: {back:?}"
    );
    // Someone counted after the reservation: only this one failure is taken back.
    let reserved = s
        .record_failure(&key, Some(&back), NOW, rule)
        .await
        .map_err(e)?;
    let other = s
        .record_failure(&key, Some(&reserved), NOW, rule)
        .await
        .map_err(e)?;
    s.settle(&key, &reserved, Some(&back)).await.map_err(e)?;
    let now = s.get(&key).await.map_err(e)?.ok_or("missing")?;
    ensure!(
        now.failures == other.failures - 1,
        "one failure taken back: {now:?} after {other:?}"
    );
    // A reservation that had to retry (its read was overtaken) takes back one failure,
    // never the overtaken read's values.
    let stale = now.clone();
    s.record_failure(&key, Some(&now), NOW, rule)
        .await
        .map_err(e)?;
    let retried = s
        .record_failure(&key, Some(&stale), NOW, rule)
        .await
        .map_err(e)?;
    s.settle(&key, &retried, Some(&stale)).await.map_err(e)?;
    let after = s.get(&key).await.map_err(e)?.ok_or("missing")?;
    ensure!(
        after.failures == stale.failures + 1,
        "the other writer's failure stays: {after:?}, read {stale:?}"
    );
    Ok(())
}

async fn concurrent_settle(s: S) -> Result<(), String> {
    let key = user("hank");
    let rule = LockoutSettings {
        user_failed_attempts: 1_000,
        ..Default::default()
    }
    .rule_for(&key);
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                let before = s.get(&key).await?;
                let reserved = s.record_failure(&key, before.as_ref(), NOW, rule).await?;
                if i % 3 == 0 {
                    s.settle(&key, &reserved, before.as_ref()).await?;
                }
                Ok::<_, modal2fa_core::PortError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(e)?.map_err(e)?;
    }
    let entry = s.get(&key).await.map_err(e)?.ok_or("missing")?;
    ensure!(
        entry.failures == 20,
        "counter is {} (want 20)",
        entry.failures
    );
    Ok(())
}

async fn revisions_change_with_every_write(s: S) -> Result<(), String> {
    let key = user("frank");
    let rule = LockoutSettings::default().rule_for(&key);
    let a = s.record_failure(&key, None, NOW, rule).await.map_err(e)?;
    let b = s
        .record_failure(&key, Some(&a), NOW, rule)
        .await
        .map_err(e)?;
    ensure!(a.revision != b.revision, "{a:?} then {b:?}");
    let read = s.get(&key).await.map_err(e)?.ok_or("missing")?;
    ensure!(read.revision == b.revision, "read {read:?}, wrote {b:?}");
    Ok(())
}

async fn clear_lifts(s: S) -> Result<(), String> {
    let key = user("bob");
    s.record_failure(&key, None, NOW, LockoutSettings::default().rule_for(&key))
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
    // Half read no entry (the way a first failure goes); half hold a read that another
    // writer has already overtaken.
    let early = s.record_failure(&key, None, NOW, rule).await.map_err(e)?;
    let tasks: Vec<_> = (1..50)
        .map(|i| {
            let (s, key, early) = (s.clone(), key.clone(), early.clone());
            tokio::spawn(async move {
                let seen = (i % 2 == 0).then_some(&early);
                s.record_failure(&key, seen, NOW, rule).await
            })
        })
        .collect();
    let mut seen = vec![early.failures];
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
            None,
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
    s.record_failure(&stale, None, old, settings.rule_for(&stale))
        .await
        .map_err(e)?;
    s.record_failure(&recent, None, NOW, settings.rule_for(&recent))
        .await
        .map_err(e)?;
    let long_lock = LockoutSettings {
        user_failed_attempts: 1,
        lockout_seconds: 7 * 86_400,
        max_lockout_seconds: 7 * 86_400,
        ..Default::default()
    };
    s.record_failure(&locked, None, old, long_lock.rule_for(&locked))
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
