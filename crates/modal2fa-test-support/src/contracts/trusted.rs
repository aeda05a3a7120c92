use std::future::Future;
use std::sync::Arc;

use modal2fa_core::model::{TrustedDevice, UserId};
use modal2fa_core::ports::{ConflictKind, PortError, Rotation, TrustedDeviceStore};
use time::Duration;

use super::{NOW, case, e, ensure, run_cases};

type S = Arc<dyn TrustedDeviceStore>;

fn device(id: &str, user: i64, minutes_ago: i64) -> TrustedDevice {
    TrustedDevice {
        id: id.into(),
        user_id: UserId(user),
        name: format!("device {id}"),
        key_hash: vec![1; 32],
        previous_key_hash: None,
        created_at: NOW - Duration::days(1),
        last_used_at: NOW - Duration::minutes(minutes_ago),
        last_ip: Some("192.0.2.1".parse().unwrap()),
        user_agent: "Firefox".into(),
    }
}

/// A rotation of user 1's device `id` now, which must have been used within a day.
fn rot<'a>(
    id: &'a str,
    expected_hash: &'a [u8],
    new_hash: Vec<u8>,
    ip: Option<std::net::IpAddr>,
    user_agent: &'a str,
) -> Rotation<'a> {
    Rotation {
        id,
        user: UserId(1),
        expected_hash,
        new_hash,
        used_after: NOW - Duration::days(1),
        created_after: NOW - Duration::days(365),
        at: NOW,
        ip,
        user_agent,
    }
}

/// Runs the [`TrustedDeviceStore`] contract.
pub async fn run_trusted_device_store_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_cases(
        "TrustedDeviceStore",
        &make,
        vec![
            case!(
                "devices read back whole, most recently used first",
                read_back_ordered
            ),
            case!("a duplicate device id is a conflict", duplicate_conflict),
            case!(
                "rotation needs the current hash and keeps the replaced one",
                rotation_cas
            ),
            case!(
                "of 50 concurrent rotations from one value exactly one succeeds",
                concurrent_rotation
            ),
            case!(
                "a device trusted before the absolute lifetime began is not rotated",
                absolute_lifetime
            ),
            case!("deletion is limited to the owner", deletion_by_owner),
        ],
    )
    .await;
}

async fn read_back_ordered(s: S) -> Result<(), String> {
    s.insert(device("old", 1, 60)).await.map_err(e)?;
    s.insert(device("new", 1, 1)).await.map_err(e)?;
    s.insert(device("theirs", 2, 0)).await.map_err(e)?;
    let list = s.list(UserId(1)).await.map_err(e)?;
    let ids: Vec<_> = list.iter().map(|d| d.id.as_str()).collect();
    ensure!(ids == ["new", "old"], "order {ids:?}");
    ensure!(list[1] == device("old", 1, 60), "read back {:?}", list[1]);
    ensure!(
        s.find("theirs").await.map_err(e)?.map(|d| d.user_id) == Some(UserId(2)),
        "find"
    );
    ensure!(s.find("missing").await.map_err(e)?.is_none(), "missing");
    Ok(())
}

async fn duplicate_conflict(s: S) -> Result<(), String> {
    s.insert(device("x", 1, 0)).await.map_err(e)?;
    match s.insert(device("x", 2, 0)).await {
        Err(PortError::Conflict(ConflictKind::TrustedDevice)) => Ok(()),
        other => Err(format!("expected a conflict, got {other:?}")),
    }
}

async fn rotation_cas(s: S) -> Result<(), String> {
    s.insert(device("d", 1, 60)).await.map_err(e)?;
    let ip = "198.51.100.2".parse().ok();
    ensure!(
        !s.rotate(rot("d", &[9; 32], vec![2; 32], ip, "Edge"))
            .await
            .map_err(e)?,
        "wrong hash must fail"
    );
    ensure!(
        s.rotate(rot("d", &[1; 32], vec![2; 32], ip, "Edge"))
            .await
            .map_err(e)?,
        "right hash"
    );
    let d = s.find("d").await.map_err(e)?.ok_or("gone")?;
    ensure!(
        d.key_hash == vec![2; 32] && d.previous_key_hash == Some(vec![1; 32]),
        "hashes {d:?}"
    );
    ensure!(
        d.last_used_at == NOW && d.last_ip == ip && d.user_agent == "Edge",
        "use recorded {d:?}"
    );
    ensure!(
        !s.rotate(rot("d", &[1; 32], vec![3; 32], ip, "Edge"))
            .await
            .map_err(e)?,
        "superseded hash must fail"
    );
    ensure!(
        !s.rotate(rot("missing", &[1; 32], vec![3; 32], ip, "Edge"))
            .await
            .map_err(e)?,
        "missing device"
    );
    // Another user's device, or one unused for too long, is never rotated.
    s.insert(device("other", 2, 1)).await.map_err(e)?;
    ensure!(
        !s.rotate(rot("other", &[1; 32], vec![3; 32], ip, "Edge"))
            .await
            .map_err(e)?,
        "another user's device"
    );
    s.insert(device("stale", 1, 2 * 24 * 60)).await.map_err(e)?;
    ensure!(
        !s.rotate(rot("stale", &[1; 32], vec![3; 32], ip, "Edge"))
            .await
            .map_err(e)?,
        "an expired device"
    );
    Ok(())
}

async fn concurrent_rotation(s: S) -> Result<(), String> {
    s.insert(device("d", 1, 60)).await.map_err(e)?;
    let tasks: Vec<_> = (0..50u8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.rotate(rot("d", &[1; 32], vec![i.wrapping_add(10); 32], None, ""))
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.map_err(e)?.map_err(e)? {
            wins += 1;
        }
    }
    ensure!(wins == 1, "{wins} of 50 concurrent rotations succeeded");
    Ok(())
}

async fn absolute_lifetime(s: S) -> Result<(), String> {
    let mut old = device("old", 1, 1);
    old.created_at = NOW - Duration::days(400);
    let key = old.key_hash.clone();
    s.insert(old).await.map_err(e)?;
    let mut r = rot("old", &key, vec![9; 32], None, "");
    r.created_after = NOW - Duration::days(365);
    ensure!(
        !s.rotate(r).await.map_err(e)?,
        "a device trusted 400 days ago was rotated under a 365-day lifetime"
    );
    Ok(())
}

async fn deletion_by_owner(s: S) -> Result<(), String> {
    s.insert(device("a", 1, 0)).await.map_err(e)?;
    s.insert(device("b", 1, 0)).await.map_err(e)?;
    s.insert(device("c", 2, 0)).await.map_err(e)?;
    ensure!(
        !s.delete(UserId(2), "a").await.map_err(e)?,
        "another user cannot delete"
    );
    ensure!(s.delete(UserId(1), "a").await.map_err(e)?, "owner deletes");
    ensure!(s.find("a").await.map_err(e)?.is_none(), "gone at once");
    ensure!(
        s.delete_all(UserId(1)).await.map_err(e)? == 1,
        "delete all count"
    );
    ensure!(
        s.list(UserId(2)).await.map_err(e)?.len() == 1,
        "other user untouched"
    );
    Ok(())
}
