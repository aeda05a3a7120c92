use std::future::Future;
use std::sync::Arc;

use modal2fa_core::model::{FactorCounts, NewWebAuthnCredential, UserId};
use modal2fa_core::ports::{ConflictKind, FactorStore, PortError};
use time::Duration;

use super::{NOW, case, e, ensure, run_cases};

type S = Arc<dyn FactorStore>;

/// Runs the [`FactorStore`] contract.
pub async fn run_factor_store_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_cases(
        "FactorStore",
        &make,
        vec![
            case!(
                "a new TOTP device is unconfirmed and keeps its ciphertext",
                totp_added_unconfirmed
            ),
            case!(
                "confirming sets the step and removes the user's other devices only",
                confirm_replaces
            ),
            case!("the last used step only moves forward", step_moves_forward),
            case!(
                "of 50 concurrent uses of one step exactly one succeeds",
                concurrent_step
            ),
            case!("deleting TOTP counts what it removed", delete_totp_counts),
            case!(
                "purging unconfirmed enrolments leaves confirmed and recent ones",
                purge_unconfirmed
            ),
            case!(
                "factor counts see confirmed TOTP devices and credentials of the user only",
                factor_counts
            ),
            case!(
                "WebAuthn credentials are stored, found, renamed, updated and deleted",
                webauthn_lifecycle
            ),
            case!(
                "a WebAuthn credential id registers only once across users",
                webauthn_unique
            ),
            case!(
                "recovery codes are single use and replaced as a set",
                recovery_single_use
            ),
            case!(
                "of 20 concurrent uses of one recovery code exactly one succeeds",
                concurrent_recovery
            ),
        ],
    )
    .await;
}

async fn purge_unconfirmed(s: S) -> Result<(), String> {
    let old = s
        .add_totp(UserId(1), vec![1], NOW - Duration::hours(2))
        .await
        .map_err(e)?;
    let confirmed = s
        .add_totp(UserId(2), vec![2], NOW - Duration::hours(2))
        .await
        .map_err(e)?;
    ensure!(s.confirm_totp(confirmed.id, 1).await.map_err(e)?, "confirm");
    s.add_totp(UserId(3), vec![3], NOW).await.map_err(e)?;
    let purged = s
        .purge_unconfirmed_totp(NOW - Duration::hours(1))
        .await
        .map_err(e)?;
    ensure!(
        purged == 1,
        "purged {purged}, not only the old unconfirmed one"
    );
    ensure!(
        s.totp_devices(UserId(1)).await.map_err(e)?.is_empty(),
        "device {} left",
        old.id
    );
    ensure!(
        s.totp_devices(UserId(2)).await.map_err(e)?.len() == 1,
        "confirmed kept"
    );
    ensure!(
        s.totp_devices(UserId(3)).await.map_err(e)?.len() == 1,
        "recent kept"
    );
    Ok(())
}

async fn totp_added_unconfirmed(s: S) -> Result<(), String> {
    let d = s.add_totp(UserId(1), vec![1, 2, 3], NOW).await.map_err(e)?;
    ensure!(
        !d.confirmed && d.last_used_step.is_none(),
        "new device must be unconfirmed: {d:?}"
    );
    let list = s.totp_devices(UserId(1)).await.map_err(e)?;
    ensure!(list.len() == 1 && list[0] == d, "read back {list:?}");
    ensure!(
        s.totp_devices(UserId(2)).await.map_err(e)?.is_empty(),
        "other user sees nothing"
    );
    Ok(())
}

async fn confirm_replaces(s: S) -> Result<(), String> {
    let old = s.add_totp(UserId(1), vec![1], NOW).await.map_err(e)?;
    ensure!(
        s.confirm_totp(old.id, 10).await.map_err(e)?,
        "first confirm"
    );
    let other = s.add_totp(UserId(2), vec![9], NOW).await.map_err(e)?;
    let new = s.add_totp(UserId(1), vec![2], NOW).await.map_err(e)?;
    ensure!(
        s.confirm_totp(new.id, 20).await.map_err(e)?,
        "second confirm"
    );
    let list = s.totp_devices(UserId(1)).await.map_err(e)?;
    ensure!(
        list.len() == 1 && list[0].id == new.id && list[0].confirmed,
        "old device must be gone: {list:?}"
    );
    ensure!(
        list[0].last_used_step == Some(20),
        "step set at confirmation"
    );
    ensure!(
        !s.confirm_totp(new.id, 30).await.map_err(e)?,
        "confirming twice must fail"
    );
    ensure!(
        !s.confirm_totp(old.id, 30).await.map_err(e)?,
        "confirming a deleted device must fail"
    );
    ensure!(
        s.totp_devices(UserId(2)).await.map_err(e)? == vec![other],
        "other user's device untouched"
    );
    Ok(())
}

async fn step_moves_forward(s: S) -> Result<(), String> {
    let d = s.add_totp(UserId(1), vec![1], NOW).await.map_err(e)?;
    ensure!(
        s.advance_totp_step(d.id, 100).await.map_err(e)?,
        "first use"
    );
    ensure!(
        !s.advance_totp_step(d.id, 100).await.map_err(e)?,
        "same step twice"
    );
    ensure!(
        !s.advance_totp_step(d.id, 99).await.map_err(e)?,
        "older step"
    );
    ensure!(
        s.advance_totp_step(d.id, 101).await.map_err(e)?,
        "newer step"
    );
    ensure!(
        !s.advance_totp_step(d.id + 1000, 500).await.map_err(e)?,
        "missing device"
    );
    Ok(())
}

async fn concurrent_step(s: S) -> Result<(), String> {
    let d = s.add_totp(UserId(1), vec![1], NOW).await.map_err(e)?;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.advance_totp_step(d.id, 7).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.map_err(e)?.map_err(e)? {
            wins += 1;
        }
    }
    ensure!(wins == 1, "{wins} of 50 concurrent uses succeeded");
    Ok(())
}

async fn delete_totp_counts(s: S) -> Result<(), String> {
    s.add_totp(UserId(1), vec![1], NOW).await.map_err(e)?;
    s.add_totp(UserId(1), vec![2], NOW).await.map_err(e)?;
    s.add_totp(UserId(2), vec![3], NOW).await.map_err(e)?;
    ensure!(s.delete_totp(UserId(1)).await.map_err(e)? == 2, "count");
    ensure!(
        s.totp_devices(UserId(2)).await.map_err(e)?.len() == 1,
        "other user untouched"
    );
    Ok(())
}

async fn factor_counts(s: S) -> Result<(), String> {
    let none = s.count_factors(UserId(1)).await.map_err(e)?;
    ensure!(none == FactorCounts::default(), "nothing yet: {none:?}");
    let d = s.add_totp(UserId(1), vec![1], NOW).await.map_err(e)?;
    s.add_totp(UserId(2), vec![2], NOW).await.map_err(e)?;
    let unconfirmed = s.count_factors(UserId(1)).await.map_err(e)?;
    ensure!(
        unconfirmed.confirmed_totp == 0,
        "an unconfirmed device is no factor: {unconfirmed:?}"
    );
    ensure!(s.confirm_totp(d.id, 3).await.map_err(e)?, "confirm");
    s.add_webauthn(cred(1, b"a")).await.map_err(e)?;
    s.add_webauthn(cred(1, b"b")).await.map_err(e)?;
    s.add_webauthn(cred(2, b"c")).await.map_err(e)?;
    let n = s.count_factors(UserId(1)).await.map_err(e)?;
    ensure!(
        n == FactorCounts {
            confirmed_totp: 1,
            webauthn: 2
        },
        "counts of user 1: {n:?}"
    );
    Ok(())
}

fn cred(user: i64, id: &[u8]) -> NewWebAuthnCredential {
    NewWebAuthnCredential {
        user_id: UserId(user),
        name: "key".into(),
        credential_id: id.to_vec(),
        credential: "{\"k\":1}".into(),
        sign_count: 5,
        transports: vec!["usb".into(), "nfc".into()],
        backup_eligible: true,
        backup_state: false,
        created_at: NOW,
    }
}

async fn webauthn_lifecycle(s: S) -> Result<(), String> {
    let c = s.add_webauthn(cred(1, b"cred-1")).await.map_err(e)?;
    ensure!(
        c.transports == vec!["usb".to_string(), "nfc".to_string()] && c.backup_eligible,
        "fields kept: {c:?}"
    );
    let found = s
        .find_webauthn(b"cred-1")
        .await
        .map_err(e)?
        .ok_or("not found")?;
    ensure!(found == c, "find read back {found:?}");
    ensure!(
        s.rename_webauthn(UserId(1), c.id, "YubiKey")
            .await
            .map_err(e)?,
        "rename"
    );
    ensure!(
        !s.rename_webauthn(UserId(2), c.id, "stolen")
            .await
            .map_err(e)?,
        "rename by another user"
    );
    ensure!(
        s.update_webauthn_use(c.id, 9, true, "{\"k\":2}".into(), NOW)
            .await
            .map_err(e)?,
        "update"
    );
    let list = s.webauthn_credentials(UserId(1)).await.map_err(e)?;
    ensure!(
        list.len() == 1
            && list[0].name == "YubiKey"
            && list[0].sign_count == 9
            && list[0].backup_state
            && list[0].credential == "{\"k\":2}"
            && list[0].last_used_at == Some(NOW),
        "after update: {list:?}"
    );
    ensure!(
        !s.delete_webauthn(UserId(2), c.id).await.map_err(e)?,
        "delete by another user"
    );
    ensure!(
        s.delete_webauthn(UserId(1), c.id).await.map_err(e)?,
        "delete"
    );
    ensure!(
        s.find_webauthn(b"cred-1").await.map_err(e)?.is_none(),
        "gone"
    );
    s.add_webauthn(cred(1, b"a")).await.map_err(e)?;
    s.add_webauthn(cred(1, b"b")).await.map_err(e)?;
    ensure!(
        s.delete_all_webauthn(UserId(1)).await.map_err(e)? == 2,
        "delete all count"
    );
    Ok(())
}

async fn webauthn_unique(s: S) -> Result<(), String> {
    s.add_webauthn(cred(1, b"same")).await.map_err(e)?;
    match s.add_webauthn(cred(2, b"same")).await {
        Err(PortError::Conflict(ConflictKind::WebAuthnCredential)) => Ok(()),
        other => Err(format!("expected a conflict, got {other:?}")),
    }
}

async fn recovery_single_use(s: S) -> Result<(), String> {
    s.replace_recovery_codes(UserId(1), vec![b"h1".to_vec(), b"h2".to_vec()], NOW)
        .await
        .map_err(e)?;
    s.replace_recovery_codes(UserId(2), vec![b"h1".to_vec()], NOW)
        .await
        .map_err(e)?;
    ensure!(
        s.count_recovery_codes(UserId(1)).await.map_err(e)? == 2,
        "count"
    );
    ensure!(
        s.consume_recovery_code(UserId(1), b"h1").await.map_err(e)?,
        "first use"
    );
    ensure!(
        !s.consume_recovery_code(UserId(1), b"h1").await.map_err(e)?,
        "second use"
    );
    ensure!(
        s.count_recovery_codes(UserId(1)).await.map_err(e)? == 1,
        "one left"
    );
    ensure!(
        s.count_recovery_codes(UserId(2)).await.map_err(e)? == 1,
        "other user's code untouched"
    );
    ensure!(
        !s.consume_recovery_code(UserId(1), b"nope")
            .await
            .map_err(e)?,
        "unknown code"
    );
    s.replace_recovery_codes(UserId(1), vec![b"h3".to_vec()], NOW)
        .await
        .map_err(e)?;
    ensure!(
        !s.consume_recovery_code(UserId(1), b"h2").await.map_err(e)?,
        "old set must be gone"
    );
    ensure!(
        s.consume_recovery_code(UserId(1), b"h3").await.map_err(e)?,
        "new set works"
    );
    Ok(())
}

async fn concurrent_recovery(s: S) -> Result<(), String> {
    s.replace_recovery_codes(UserId(1), vec![b"only".to_vec()], NOW)
        .await
        .map_err(e)?;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.consume_recovery_code(UserId(1), b"only").await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.map_err(e)?.map_err(e)? {
            wins += 1;
        }
    }
    ensure!(wins == 1, "{wins} of 20 concurrent uses succeeded");
    Ok(())
}
