//! Delivery to a real SMTP server: aiosmtpd, run by `modal2fa_lettre::testing::SmtpSink`.

use std::time::{Duration, Instant};

use modal2fa_core::PortError;
use modal2fa_core::model::SecurityEventKind;
use modal2fa_core::ports::Notifier;
use modal2fa_lettre::testing::SmtpSink;
use modal2fa_lettre::{LettreNotifier, SendError, SmtpConfig, SmtpSecurity, Transport};

use super::{INVITE_LINK, RESET_LINK, config, invitation, reset, security};

const WAIT: Duration = Duration::from_secs(10);

fn notifier_for(port: u16, credentials: Option<(&str, &str)>, timeout: Duration) -> LettreNotifier {
    let mut smtp = SmtpConfig::new("127.0.0.1", port, SmtpSecurity::Plain);
    smtp.timeout = timeout;
    if let Some((user, pass)) = credentials {
        smtp.username = Some(user.into());
        smtp.password = Some(pass.into());
    }
    LettreNotifier::new(config(Transport::Smtp(smtp))).unwrap()
}

#[tokio::test]
async fn every_kind_is_delivered_over_smtp_with_its_envelope_and_link() {
    let sink = SmtpSink::start(None);
    let notifier = notifier_for(sink.port(), None, Duration::from_secs(5));
    notifier.send(invitation()).await.unwrap();
    notifier.send(reset()).await.unwrap();
    notifier
        .send(security(SecurityEventKind::RecoveryCodeUsed))
        .await
        .unwrap();
    let mails = sink.wait_for(3, WAIT).await;
    assert_eq!(mails.len(), 3);
    for mail in &mails {
        assert_eq!(mail.mail_from(), Some("noreply@example.com"));
        assert_eq!(mail.rcpt_tos(), vec!["alice@example.com".to_owned()]);
        assert_eq!(mail.auth_user(), None);
        let parsed = mail.parsed();
        assert_eq!(
            parsed.header("To").unwrap(),
            "Alíce Liddell <alice@example.com>"
        );
        // Lettre quotes a display name with a space in it.
        assert_eq!(
            parsed.header("From").unwrap(),
            "\"Example Site\" <noreply@example.com>"
        );
        assert!(
            parsed
                .header("Message-ID")
                .unwrap()
                .ends_with("@example.com>")
        );
        assert!(parsed.header("Date").is_some());
    }
    let invitation = mails[0].parsed();
    assert_eq!(
        invitation.header("Subject").unwrap(),
        "Welcome to Example Site, alice"
    );
    assert!(invitation.text.unwrap().contains(INVITE_LINK));
    assert!(invitation.html.unwrap().contains(INVITE_LINK));
    let reset = mails[1].parsed();
    assert_eq!(
        reset.header("Subject").unwrap(),
        "Reset your Example Site password"
    );
    // The long link survives the transfer encoding (quoted-printable soft breaks).
    assert!(reset.text.unwrap().contains(RESET_LINK));
    assert!(
        reset
            .html
            .unwrap()
            .contains(&RESET_LINK.replace('&', "&amp;"))
    );
    let notice = mails[2].parsed();
    assert_eq!(
        notice.header("Subject").unwrap(),
        "Security notice: recovery code used"
    );
    let text = notice.text.unwrap();
    assert!(text.contains("A recovery code was used to sign in to your account."));
    assert!(text.contains("Alíce"));
}

#[tokio::test]
async fn pooled_connections_deliver_many_messages_in_a_row() {
    let sink = SmtpSink::start(None);
    let notifier = notifier_for(sink.port(), None, Duration::from_secs(5));
    for _ in 0..5 {
        notifier.send(reset()).await.unwrap();
    }
    assert_eq!(sink.wait_for(5, WAIT).await.len(), 5);
}

#[tokio::test]
async fn the_right_credentials_log_in_and_deliver() {
    let sink = SmtpSink::start(Some(("mailer", "correct horse")));
    let notifier = notifier_for(
        sink.port(),
        Some(("mailer", "correct horse")),
        Duration::from_secs(5),
    );
    notifier.send(invitation()).await.unwrap();
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].auth_user(), Some("mailer"));
    assert!(mails[0].parsed().text.unwrap().contains(INVITE_LINK));
}

#[tokio::test]
async fn a_wrong_password_is_a_permanent_failure_that_does_not_hang() {
    let sink = SmtpSink::start(Some(("mailer", "correct horse")));
    let notifier = notifier_for(
        sink.port(),
        Some(("mailer", "battery staple")),
        Duration::from_secs(5),
    );
    let started = Instant::now();
    let err = notifier.send(reset()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let PortError::Unexpected(cause) = &err else {
        panic!("expected a permanent failure, got {err:?}");
    };
    let send_error = cause.downcast_ref::<SendError>().expect("a SendError");
    assert!(!send_error.is_transient());
    let mut text = format!("{cause:?}");
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(send_error);
    while let Some(e) = source {
        text.push_str(&format!(" | {e}"));
        source = e.source();
    }
    for secret in ["battery", "staple", RESET_LINK, "auth/reset"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_server_that_is_not_listening_is_unavailable_within_the_timeout() {
    // A port that was free a moment ago, with nothing listening on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let timeout = Duration::from_secs(3);
    let notifier = notifier_for(port, None, timeout);
    let started = Instant::now();
    let err = notifier.send(invitation()).await.unwrap_err();
    assert!(started.elapsed() <= timeout + Duration::from_secs(1));
    let PortError::Unavailable(cause) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(cause.downcast_ref::<SendError>().unwrap().is_transient());
}

#[tokio::test]
async fn a_server_that_never_greets_is_unavailable_after_the_timeout() {
    // The kernel completes the connection, but nothing ever answers it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let timeout = Duration::from_secs(1);
    let notifier = notifier_for(port, None, timeout);
    let started = Instant::now();
    let err = notifier.send(reset()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout && elapsed < timeout * 4, "{elapsed:?}");
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    drop(silent);
}

#[tokio::test]
async fn starttls_is_required_so_a_server_without_it_gets_nothing() {
    let sink = SmtpSink::start(Some(("mailer", "correct horse")));
    let mut smtp = SmtpConfig::new("127.0.0.1", sink.port(), SmtpSecurity::StartTls);
    smtp.username = Some("mailer".into());
    smtp.password = Some("correct horse".into());
    smtp.timeout = Duration::from_secs(5);
    let notifier = LettreNotifier::new(config(Transport::Smtp(smtp))).unwrap();
    let err = notifier.send(reset()).await.unwrap_err();
    assert!(matches!(err, PortError::Unexpected(_)), "{err:?}");
    assert!(sink.messages().is_empty());
}
