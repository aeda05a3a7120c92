use std::future::Future;
use std::sync::Arc;

use modal2fa_core::model::{AuthMethod, Page, SessionRecord, UserId};
use modal2fa_core::ports::{ConflictKind, PortError, SessionStore};
use time::Duration;

use super::{NOW, case, e, ensure, run_cases};

type S = Arc<dyn SessionStore>;

fn record(id: &str, user: Option<i64>, created_min_ago: i64, expires_in_min: i64) -> SessionRecord {
    SessionRecord {
        id_hash: id.into(),
        user_id: user.map(UserId),
        method: user.map(|_| AuthMethod::TwoFactor),
        passkey_id: None,
        ip: Some("2001:db8::1".parse().unwrap()),
        user_agent: "Safari".into(),
        created_at: NOW - Duration::minutes(created_min_ago),
        last_seen_at: NOW,
        expires_at: NOW + Duration::minutes(expires_in_min),
        data: "{\"state\":\"anonymous\"}".into(),
    }
}

/// Runs the [`SessionStore`] contract.
pub async fn run_session_store_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_cases(
        "SessionStore",
        &make,
        vec![
            case!(
                "a saved session reads back whole and saving the same id again is a conflict",
                save_load_conflict
            ),
            case!("renewing moves the session to the new id", renew_moves),
            case!(
                "renewing a session that was ended stores nothing",
                renew_ended_stores_nothing
            ),
            case!(
                "replacing changes an existing session and never creates one",
                replace_existing_only
            ),
            case!(
                "touching slides the expiry up to the absolute timeout",
                touch_slides_expiry
            ),
            case!(
                "delete reports whether it removed something",
                delete_reports
            ),
            case!(
                "active sessions are signed in and unexpired, newest first, in pages",
                list_active
            ),
            case!(
                "ending a user's sessions leaves other users' alone",
                delete_for_user
            ),
            case!(
                "deleting a passkey's sessions ends only that user's sessions established with it",
                delete_for_passkey
            ),
            case!("purging removes expired sessions only", purge_expired),
        ],
    )
    .await;
}

async fn save_load_conflict(s: S) -> Result<(), String> {
    let r = record("h1", Some(1), 5, 30);
    s.save(&r).await.map_err(e)?;
    ensure!(
        s.load("h1").await.map_err(e)? == Some(r.clone()),
        "read back"
    );
    let mut r2 = r.clone();
    r2.data = "{\"x\":2}".into();
    r2.method = Some(AuthMethod::Cookie);
    match s.save(&r2).await {
        Err(PortError::Conflict(ConflictKind::Session)) => {}
        other => {
            return Err(format!(
                "saving an existing id: {other:?}, not a session conflict"
            ));
        }
    }
    ensure!(s.load("h1").await.map_err(e)? == Some(r), "left as it was");
    ensure!(s.load("nope").await.map_err(e)?.is_none(), "missing");
    Ok(())
}

async fn renew_moves(s: S) -> Result<(), String> {
    s.save(&record("old", None, 1, 30)).await.map_err(e)?;
    let new = record("new", Some(3), 1, 30);
    ensure!(s.renew("old", &new).await.map_err(e)?, "renewal reported");
    ensure!(
        s.load("old").await.map_err(e)?.is_none(),
        "old id must be gone"
    );
    ensure!(
        s.load("new").await.map_err(e)? == Some(new.clone()),
        "new id holds the session"
    );
    Ok(())
}

async fn renew_ended_stores_nothing(s: S) -> Result<(), String> {
    s.save(&record("ended", Some(3), 1, 30)).await.map_err(e)?;
    ensure!(s.delete("ended").await.map_err(e)?, "deleted");
    ensure!(
        !s.renew("ended", &record("newer", Some(3), 1, 30))
            .await
            .map_err(e)?,
        "renewing an ended session must report that nothing was renewed"
    );
    ensure!(
        s.load("newer").await.map_err(e)?.is_none(),
        "renewing an ended session must not store it under the new id"
    );
    ensure!(
        !s.touch(
            "ended",
            NOW,
            NOW + Duration::minutes(30),
            Duration::hours(1)
        )
        .await
        .map_err(e)?
            && s.load("ended").await.map_err(e)?.is_none(),
        "touching an ended session must not bring it back"
    );
    Ok(())
}

async fn replace_existing_only(s: S) -> Result<(), String> {
    let r = record("h", None, 1, 30);
    ensure!(
        !s.replace(&r).await.map_err(e)?,
        "nothing to replace: reported"
    );
    ensure!(
        s.load("h").await.map_err(e)?.is_none(),
        "and nothing stored"
    );
    s.save(&r).await.map_err(e)?;
    let mut r2 = record("h", Some(4), 1, 45);
    r2.data = "{\"x\":3}".into();
    ensure!(s.replace(&r2).await.map_err(e)?, "replaced");
    ensure!(
        s.load("h").await.map_err(e)? == Some(r2.clone()),
        "read back"
    );
    ensure!(
        s.replace(&r2).await.map_err(e)?,
        "replacing with the same contents still finds the session"
    );
    Ok(())
}

async fn touch_slides_expiry(s: S) -> Result<(), String> {
    let absolute = Duration::hours(1);
    // Created 10 minutes ago: an idle expiry 30 minutes out fits the absolute timeout.
    s.save(&record("young", Some(1), 10, 5)).await.map_err(e)?;
    let later = NOW + Duration::minutes(2);
    ensure!(
        s.touch("young", later, later + Duration::minutes(30), absolute)
            .await
            .map_err(e)?,
        "touched"
    );
    let young = s.load("young").await.map_err(e)?.ok_or("young gone")?;
    ensure!(
        young.last_seen_at == later && young.expires_at == later + Duration::minutes(30),
        "sliding expiry: {young:?}"
    );
    // Created 50 minutes ago: capped at creation + 1 hour.
    let old = record("old", Some(1), 50, 5);
    s.save(&old).await.map_err(e)?;
    ensure!(
        s.touch("old", later, later + Duration::minutes(30), absolute)
            .await
            .map_err(e)?,
        "touched"
    );
    let old_now = s.load("old").await.map_err(e)?.ok_or("old gone")?;
    ensure!(
        old_now.expires_at == old.created_at + absolute,
        "capped expiry: {old_now:?}"
    );
    ensure!(
        old_now.data == old.data && old_now.user_id == old.user_id,
        "contents untouched"
    );
    ensure!(
        !s.touch("absent", later, later, absolute).await.map_err(e)?,
        "no such session"
    );
    ensure!(s.load("absent").await.map_err(e)?.is_none(), "none created");
    Ok(())
}

async fn delete_reports(s: S) -> Result<(), String> {
    s.save(&record("h", None, 1, 30)).await.map_err(e)?;
    ensure!(s.delete("h").await.map_err(e)?, "first delete");
    ensure!(!s.delete("h").await.map_err(e)?, "second delete");
    Ok(())
}

async fn list_active(s: S) -> Result<(), String> {
    s.save(&record("anon", None, 1, 30)).await.map_err(e)?;
    s.save(&record("expired", Some(1), 1, -1))
        .await
        .map_err(e)?;
    s.save(&record("older", Some(1), 20, 30)).await.map_err(e)?;
    s.save(&record("newer", Some(2), 10, 30)).await.map_err(e)?;
    s.save(&record("newest", Some(2), 1, 30)).await.map_err(e)?;
    let first = s.list_active(NOW, Page::first(2)).await.map_err(e)?;
    let rest = s
        .list_active(
            NOW,
            Page {
                offset: 2,
                limit: 10,
            },
        )
        .await
        .map_err(e)?;
    let ids: Vec<_> = first
        .iter()
        .chain(rest.iter())
        .map(|r| r.id_hash.as_str())
        .collect();
    ensure!(ids == ["newest", "newer", "older"], "listed {ids:?}");
    Ok(())
}

async fn delete_for_user(s: S) -> Result<(), String> {
    s.save(&record("a1", Some(1), 1, 30)).await.map_err(e)?;
    s.save(&record("a2", Some(1), 1, 30)).await.map_err(e)?;
    s.save(&record("b1", Some(2), 1, 30)).await.map_err(e)?;
    ensure!(s.delete_for_user(UserId(1)).await.map_err(e)? == 2, "count");
    ensure!(
        s.load("a1").await.map_err(e)?.is_none() && s.load("a2").await.map_err(e)?.is_none(),
        "user 1 gone"
    );
    ensure!(s.load("b1").await.map_err(e)?.is_some(), "user 2 kept");
    Ok(())
}

async fn delete_for_passkey(s: S) -> Result<(), String> {
    let with = |id: &str, user: i64, passkey: Option<i64>| SessionRecord {
        passkey_id: passkey,
        ..record(id, Some(user), 1, 30)
    };
    s.save(&with("key7", 1, Some(7))).await.map_err(e)?;
    s.save(&with("key7-too", 1, Some(7))).await.map_err(e)?;
    s.save(&with("key8", 1, Some(8))).await.map_err(e)?;
    s.save(&with("code", 1, None)).await.map_err(e)?;
    s.save(&with("other-user", 2, Some(7))).await.map_err(e)?;
    ensure!(
        s.load("key8").await.map_err(e)?.and_then(|r| r.passkey_id) == Some(8),
        "the passkey id reads back"
    );
    let n = s.delete_for_passkey(UserId(1), 7).await.map_err(e)?;
    ensure!(n == 2, "deleted {n}, expected 2");
    for gone in ["key7", "key7-too"] {
        ensure!(
            s.load(gone).await.map_err(e)?.is_none(),
            "{gone} still there"
        );
    }
    for kept in ["key8", "code", "other-user"] {
        ensure!(
            s.load(kept).await.map_err(e)?.is_some(),
            "{kept} was deleted"
        );
    }
    Ok(())
}

async fn purge_expired(s: S) -> Result<(), String> {
    s.save(&record("live", Some(1), 1, 30)).await.map_err(e)?;
    s.save(&record("dead", Some(1), 1, -5)).await.map_err(e)?;
    s.save(&record("edge", None, 1, 0)).await.map_err(e)?;
    ensure!(s.purge_expired(NOW).await.map_err(e)? == 2, "purged count");
    ensure!(s.load("live").await.map_err(e)?.is_some(), "live kept");
    Ok(())
}
