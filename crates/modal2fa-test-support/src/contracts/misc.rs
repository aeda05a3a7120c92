use std::future::Future;
use std::sync::Arc;

use modal2fa_core::SecretString;
use modal2fa_core::model::{AuditEvent, AuditKind, Page, SecurityEventKind, UserId};
use modal2fa_core::ports::{AuditLog, Clock, Notification, Notifier, Recipient, SecretGenerator};
use time::Duration;

use super::{NOW, case, e, ensure, run_cases};

/// Runs the [`AuditLog`] contract.
pub async fn run_audit_log_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn AuditLog>>,
{
    run_cases(
        "AuditLog",
        &make,
        vec![case!(
            "events list newest first, in pages, whole",
            audit_newest_first
        )],
    )
    .await;
}

fn event(kind: AuditKind, seconds: i64) -> AuditEvent {
    AuditEvent {
        at: NOW + Duration::seconds(seconds),
        kind,
        user_id: Some(UserId(4)),
        username: Some("alice".into()),
        ip: Some("192.0.2.7".parse().unwrap()),
        user_agent: Some("curl".into()),
        detail: Some("totp".into()),
    }
}

async fn audit_newest_first(s: Arc<dyn AuditLog>) -> Result<(), String> {
    let events = [
        event(AuditKind::LoginFailed, 0),
        event(AuditKind::LoginLocked, 1),
        event(AuditKind::LoginSucceeded, 2),
    ];
    for ev in &events {
        s.record(ev.clone()).await.map_err(e)?;
    }
    let first = s.list(Page::first(2)).await.map_err(e)?;
    let rest = s
        .list(Page {
            offset: 2,
            limit: 5,
        })
        .await
        .map_err(e)?;
    let got: Vec<_> = first.into_iter().chain(rest).collect();
    let want: Vec<_> = events.iter().rev().cloned().collect();
    ensure!(got == want, "listed {got:?}");
    Ok(())
}

/// The recipient every notifier case writes to: Alice, with a name that needs encoding.
pub fn recipient() -> Recipient {
    Recipient {
        user_id: UserId(1),
        username: "alice".into(),
        first_name: "Alíce".into(),
        last_name: "Liddell".into(),
        email: "alice@example.com".into(),
    }
}

/// Runs the [`Notifier`] contract: every kind of notification is accepted.
pub async fn run_notifier_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Notifier>>,
{
    run_cases(
        "Notifier",
        &make,
        vec![case!(
            "every kind of notification is handed over",
            notifier_accepts_all
        )],
    )
    .await;
}

async fn notifier_accepts_all(s: Arc<dyn Notifier>) -> Result<(), String> {
    let link = SecretString::new("https://example.com/auth/reset/1.2.abc");
    s.send(Notification::Invitation {
        to: recipient(),
        link: link.clone(),
    })
    .await
    .map_err(e)?;
    s.send(Notification::PasswordReset {
        to: recipient(),
        link,
    })
    .await
    .map_err(e)?;
    s.send(Notification::SecurityChange {
        to: recipient(),
        kind: SecurityEventKind::PasswordChanged,
        at: NOW,
        ip: Some("192.0.2.1".parse().unwrap()),
        user_agent: "Firefox".into(),
    })
    .await
    .map_err(e)?;
    Ok(())
}

/// Runs the [`SecretGenerator`] contract: whole buffers, never the same twice.
pub fn run_secret_generator_contract(g: &dyn SecretGenerator) {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let mut buf = [0u8; 16];
        g.fill(&mut buf);
        assert!(
            seen.insert(buf),
            "SecretGenerator contract: a 16-byte value repeated"
        );
    }
    let mut big = vec![0u8; 4096];
    g.fill(&mut big);
    assert!(
        big[4000..].iter().any(|b| *b != 0),
        "SecretGenerator contract: the end of a buffer was not filled"
    );
    let mut empty: [u8; 0] = [];
    g.fill(&mut empty);
}

/// Runs the [`Clock`] contract: UTC, and never going backwards between two reads.
pub fn run_clock_contract(c: &dyn Clock) {
    let a = c.now();
    let b = c.now();
    assert!(a.offset().is_utc(), "Clock contract: not UTC");
    assert!(b >= a, "Clock contract: went backwards");
}
