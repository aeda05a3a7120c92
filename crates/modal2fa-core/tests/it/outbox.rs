//! The notification outbox: requests write, the sender delivers, retries back off, and a
//! failure never undoes the change it announces.

use std::sync::Arc;

use modal2fa_core::model::SecurityEventKind;
use modal2fa_core::ports::Notification;
use modal2fa_core::services::Delivered;
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryOutboxState;

use crate::world::*;

#[tokio::test]
async fn a_request_writes_its_notification_to_the_outbox_and_sends_nothing_itself() {
    let w = world();
    w.user("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    assert!(w.mem.notifier.sent().is_empty(), "the request sent mail");
    assert_eq!(w.auth.outbox.pending().await.unwrap(), 1);
    let d = w.auth.outbox.deliver_due().await.unwrap();
    assert_eq!(
        d,
        Delivered {
            claimed: 1,
            sent: 1,
            ..Delivered::default()
        }
    );
    assert!(matches!(
        w.mem.notifier.sent().as_slice(),
        [Notification::PasswordReset { to, link }]
            if to.email == "alice@example.com" && link.expose().starts_with("https://x/reset/")
    ));
    assert_eq!(w.auth.outbox.pending().await.unwrap(), 0);
}

#[tokio::test]
async fn the_link_never_rests_in_the_outbox_in_the_clear_and_is_erased_once_sent() {
    let w = world();
    w.user("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let row = w.mem.outbox.rows().remove(0);
    let haystack = String::from_utf8_lossy(&row.payload);
    assert!(
        !haystack.contains("https://x/reset/") && !haystack.contains("alice"),
        "the payload is readable"
    );
    w.auth.outbox.deliver_due().await.unwrap();
    let row = w.mem.outbox.rows().remove(0);
    assert_eq!(row.state, MemoryOutboxState::Sent);
    assert!(row.payload.is_empty(), "a sent message keeps its payload");
}

#[tokio::test]
async fn a_failing_transport_is_retried_with_backoff_then_marked_failed_and_the_change_stands() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let state = w.sign_in_2fa("alice", &secret).await.state;
    w.auth.outbox.deliver_all_due().await.unwrap();
    w.mem.notifier.fail_from_now();
    w.auth
        .account
        .change_password(
            &state,
            &PASSWORD.into(),
            &"a brand new passphrase".into(),
            false,
            &ctx(),
        )
        .await
        .expect("the change does not wait for the mail");
    let outbox = w.auth.settings().outbox;
    let mut waits = Vec::new();
    for attempt in 1..=outbox.max_attempts {
        let d = w.auth.outbox.deliver_due().await.unwrap();
        assert_eq!(d.claimed, 1, "attempt {attempt} not claimed");
        let row = w.mem.outbox.rows().pop().unwrap();
        assert!(matches!(
            row.state,
            MemoryOutboxState::Pending | MemoryOutboxState::Failed
        ));
        assert_eq!(row.attempts, attempt);
        assert!(row.last_error.as_deref().unwrap().contains("unavailable"));
        if attempt < outbox.max_attempts {
            assert_eq!(d.retried, 1);
            assert!(
                w.auth.outbox.deliver_due().await.unwrap().claimed == 0,
                "retried before its time"
            );
            let wait = row.send_after - w.auth.now();
            waits.push(wait);
            w.mem.clock.advance(wait);
        } else {
            assert_eq!(d.failed, 1);
            assert_eq!(row.state, MemoryOutboxState::Failed);
            assert!(row.payload.is_empty());
        }
    }
    assert_eq!(waits[0], outbox.first_retry);
    assert_eq!(waits[1], outbox.first_retry * 2);
    assert!(waits.iter().all(|w| *w <= outbox.max_retry));
    w.try_password(
        &modal2fa_core::machine::LoginState::Anonymous,
        "alice",
        "a brand new passphrase",
        None,
        &ctx(),
    )
    .await
    .expect("the new password works");
}

#[tokio::test]
async fn a_reset_request_for_an_unknown_address_waits_as_long_as_one_for_a_known_address() {
    let w = world();
    w.user("alice").await;
    let floor = std::time::Duration::from_millis(50);
    let auth = Modal2fa::new(
        w.mem.ports.clone(),
        Arc::new(DefaultPolicy),
        Settings {
            password_answer_floor: floor,
            ..settings()
        },
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    for email in ["alice@example.com", "nobody@example.com"] {
        w.mem.delay.clear();
        auth.account
            .request_password_reset(email, "https://x/reset/", &ctx_from("192.0.2.7"))
            .await
            .unwrap();
        assert_eq!(w.mem.delay.sleeps(), vec![floor], "{email}");
    }
    assert_eq!(auth.outbox.pending().await.unwrap(), 1);
}

#[tokio::test]
async fn a_message_sealed_under_another_server_secret_is_marked_failed_not_retried_forever() {
    let w = world();
    w.user("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let other = Modal2fa::new(
        w.mem.ports.clone(),
        Arc::new(DefaultPolicy),
        Settings::default(),
        &ServerSecret::new(vec![9; 32]).unwrap(),
    );
    let d = other.outbox.deliver_due().await.unwrap();
    assert_eq!(d.failed, 1);
    assert!(w.mem.notifier.sent().is_empty());
    assert_eq!(w.mem.outbox.rows()[0].state, MemoryOutboxState::Failed);
}

#[tokio::test]
async fn the_sender_is_woken_by_every_write() {
    let w = world();
    let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = woken.clone();
    assert!(w.auth.outbox.on_enqueue(move || {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }));
    assert!(
        !w.auth.outbox.on_enqueue(|| {}),
        "a second wake-up was taken"
    );
    w.user("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_account_without_an_address_gets_no_message_and_the_change_stands() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    w.auth.outbox.deliver_all_due().await.unwrap();
    let id = r.state.signed_in().unwrap().user_id;
    w.mem.users.edit(id, |u| u.email = None);
    let state = r.state;
    w.auth
        .account
        .change_password(
            &state,
            &PASSWORD.into(),
            &"another long passphrase".into(),
            false,
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(w.auth.outbox.pending().await.unwrap(), 0);
    assert_eq!(w.notified(SecurityEventKind::PasswordChanged).await, 0);
}

#[tokio::test]
async fn the_owner_is_told_once_when_failed_sign_ins_lock_the_account() {
    let w = world();
    w.user("alice").await;
    let threshold = w.auth.settings().lockout.user_failed_attempts;
    for i in 0..threshold + 5 {
        let _ = w
            .try_password(
                &modal2fa_core::machine::LoginState::Anonymous,
                "alice",
                "not the password",
                None,
                &ctx_from(&format!("198.51.100.{}", i + 1)),
            )
            .await;
    }
    assert_eq!(w.notified(SecurityEventKind::AccountLocked).await, 1);
}

#[tokio::test]
async fn generating_recovery_codes_tells_the_owner() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let state = w.sign_in_2fa("alice", &secret).await.state;
    w.auth
        .factors
        .generate_recovery_codes(&state, &ctx())
        .await
        .unwrap();
    assert_eq!(
        w.notified(SecurityEventKind::RecoveryCodesGenerated).await,
        1
    );
}

#[tokio::test]
async fn a_right_password_without_the_second_step_alerts_the_owner_after_the_delay_only() {
    let w = world();
    let (_, _secret) = w.enrolled("alice").await;
    w.sent().await;
    w.password(
        &modal2fa_core::machine::LoginState::Anonymous,
        "alice",
        PASSWORD,
        None,
    )
    .await;
    let after = w.auth.settings().second_factor_alert_after.unwrap();
    w.mem.clock.advance(after - time::Duration::seconds(1));
    assert_eq!(
        w.notified(SecurityEventKind::SecondFactorNotCompleted)
            .await,
        0,
        "sent before its time"
    );
    w.mem.clock.advance(time::Duration::seconds(1));
    assert_eq!(
        w.notified(SecurityEventKind::SecondFactorNotCompleted)
            .await,
        1
    );
}

#[tokio::test]
async fn completing_the_second_step_withdraws_the_alert() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.sign_in_2fa("alice", &secret).await;
    w.mem.clock.advance(time::Duration::hours(1));
    assert_eq!(
        w.notified(SecurityEventKind::SecondFactorNotCompleted)
            .await,
        0
    );
    assert!(
        w.mem
            .outbox
            .rows()
            .iter()
            .all(|r| r.state != MemoryOutboxState::Pending)
    );
}

#[tokio::test]
async fn a_message_the_transport_refuses_is_marked_failed_at_once_with_the_error() {
    let w = world();
    w.user("alice").await;
    w.mem.notifier.refuse_from_now();
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let d = w.auth.outbox.deliver_due().await.unwrap();
    assert_eq!((d.claimed, d.failed, d.retried), (1, 1, 0));
    let row = w.mem.outbox.rows().remove(0);
    assert_eq!(row.state, MemoryOutboxState::Failed);
    assert!(row.last_error.unwrap().contains("535"));
    assert!(row.payload.is_empty());
}
