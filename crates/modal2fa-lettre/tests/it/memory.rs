//! Rendering and message assembly, seen through the memory transport.

use std::sync::Arc;

use modal2fa_core::PortError;
use modal2fa_core::model::SecurityEventKind;
use modal2fa_core::ports::{Notification, Notifier};
use modal2fa_lettre::templates::event_text;
use modal2fa_lettre::testing::ParsedMail;
use modal2fa_lettre::{LettreNotifier, MemoryTransport, Transport};
use modal2fa_test_support::contracts::recipient;

use super::{
    INVITE_LINK, RESET_LINK, TempDir, config, invitation, memory_notifier, reset, security,
};

const ALL_KINDS: [SecurityEventKind; 14] = [
    SecurityEventKind::PasskeyAdded,
    SecurityEventKind::PasskeyRemoved,
    SecurityEventKind::TotpAdded,
    SecurityEventKind::TotpRemoved,
    SecurityEventKind::TrustedDeviceAdded,
    SecurityEventKind::TrustedDeviceRemoved,
    SecurityEventKind::TwoFactorRemoved,
    SecurityEventKind::TwoFactorResetByAdmin,
    SecurityEventKind::PasswordChanged,
    SecurityEventKind::CodeReplayed,
    SecurityEventKind::SecondFactorFailures,
    SecurityEventKind::TrustedDeviceCookieReused,
    SecurityEventKind::RecoveryCodeUsed,
    SecurityEventKind::PasskeyCounterRegressed,
];

#[tokio::test]
async fn an_invitation_carries_its_link_to_the_invited_user() {
    let (notifier, memory) = memory_notifier();
    notifier.send(invitation()).await.unwrap();
    let sent = memory.sent();
    assert_eq!(sent.len(), 1);
    let mail = &sent[0];
    assert_eq!(mail.to, "alice@example.com");
    assert_eq!(mail.from, "noreply@example.com");
    assert_eq!(mail.subject, "Welcome to Example Site, alice");
    assert!(mail.text.contains(INVITE_LINK), "{}", mail.text);
    assert!(mail.text.contains("Hello Alíce,"), "{}", mail.text);
    assert!(
        mail.html.contains(&format!("href=\"{INVITE_LINK}\"")),
        "{}",
        mail.html
    );
    let parsed = ParsedMail::parse(&mail.raw).unwrap();
    assert_eq!(
        parsed.text.as_deref(),
        Some(mail.text.replace("\r\n", "\n").as_str())
    );
}

#[tokio::test]
async fn a_password_reset_carries_its_link_to_the_user() {
    let (notifier, memory) = memory_notifier();
    notifier.send(reset()).await.unwrap();
    let mail = &memory.sent()[0];
    assert_eq!(mail.to, "alice@example.com");
    assert_eq!(mail.subject, "Reset your Example Site password");
    // The `&` of the query is escaped in HTML and kept as is in text.
    assert!(mail.text.contains(RESET_LINK), "{}", mail.text);
    assert!(
        mail.html.contains(&RESET_LINK.replace('&', "&amp;")),
        "{}",
        mail.html
    );
    let parsed = ParsedMail::parse(&mail.raw).unwrap();
    assert!(parsed.text.unwrap().contains(RESET_LINK));
}

#[tokio::test]
async fn a_security_notice_says_what_changed_when_from_where_and_with_which_browser() {
    let (notifier, memory) = memory_notifier();
    notifier
        .send(security(SecurityEventKind::PasskeyAdded))
        .await
        .unwrap();
    let mail = &memory.sent()[0];
    assert_eq!(mail.to, "alice@example.com");
    assert_eq!(mail.subject, "Security notice: passkey added");
    for body in [&mail.text, &mail.html] {
        assert!(
            body.contains("A passkey was added to your account."),
            "{body}"
        );
        assert!(body.contains("2026-05-01 10:00 UTC"), "{body}");
        assert!(body.contains("192.0.2.7"), "{body}");
        assert!(body.contains("Firefox/140.0"), "{body}");
    }
}

#[tokio::test]
async fn a_security_notice_without_an_address_says_so() {
    let (notifier, memory) = memory_notifier();
    let Notification::SecurityChange { to, kind, at, .. } =
        security(SecurityEventKind::PasswordChanged)
    else {
        unreachable!()
    };
    notifier
        .send(Notification::SecurityChange {
            to,
            kind,
            at,
            ip: None,
            user_agent: String::new(),
        })
        .await
        .unwrap();
    let mail = &memory.sent()[0];
    assert!(
        mail.text.contains("From: an unknown address"),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains("Browser: an unknown browser"),
        "{}",
        mail.text
    );
}

#[test]
fn every_security_event_has_a_sentence_of_its_own() {
    let texts: std::collections::HashSet<_> = ALL_KINDS.iter().map(|k| event_text(*k)).collect();
    assert_eq!(texts.len(), ALL_KINDS.len());
    assert!(texts.iter().all(|t| t.ends_with('.')));
}

#[tokio::test]
async fn every_security_event_renders_a_notice() {
    let (notifier, memory) = memory_notifier();
    for kind in ALL_KINDS {
        notifier.send(security(kind)).await.unwrap();
    }
    let sent = memory.sent();
    assert_eq!(sent.len(), ALL_KINDS.len());
    for (mail, kind) in sent.iter().zip(ALL_KINDS) {
        assert!(
            mail.subject.starts_with("Security notice: "),
            "{}",
            mail.subject
        );
        assert!(mail.text.contains(event_text(kind)), "{kind:?}");
    }
}

#[tokio::test]
async fn a_non_ascii_name_and_subject_are_encoded_and_read_back() {
    let memory = Arc::new(MemoryTransport::new());
    let mut cfg = config(Transport::Memory(Arc::clone(&memory)));
    cfg.site_name = "Café Ünïcode".into();
    cfg.from = "Café Ünïcode <noreply@example.com>".into();
    let notifier = LettreNotifier::new(cfg).unwrap();
    notifier.send(reset()).await.unwrap();
    let mail = &memory.sent()[0];
    let parsed = ParsedMail::parse(&mail.raw).unwrap();
    // On the wire, headers are ASCII: RFC 2047 encoded words.
    let raw_to = parsed.raw_header("To").unwrap();
    assert!(raw_to.is_ascii() && raw_to.contains("=?utf-8?"), "{raw_to}");
    let raw_subject = parsed.raw_header("Subject").unwrap();
    assert!(
        raw_subject.is_ascii() && raw_subject.contains("=?utf-8?"),
        "{raw_subject}"
    );
    assert_eq!(
        parsed.header("To").unwrap(),
        "Alíce Liddell <alice@example.com>",
        "{raw_to}"
    );
    assert_eq!(
        parsed.header("Subject").unwrap(),
        "Reset your Café Ünïcode password"
    );
    assert!(parsed.header("From").unwrap().starts_with("Café Ünïcode"));
    let content_type = parsed.header("Content-Type").unwrap();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let text = parsed.text.unwrap();
    assert!(text.contains("Hello Alíce,"), "{text}");
    assert!(parsed.html.unwrap().contains("Alíce"));
}

#[tokio::test]
async fn a_name_with_a_line_break_cannot_add_a_header() {
    let (notifier, memory) = memory_notifier();
    let mut to = recipient();
    to.first_name = "Eve\r\nBcc: victim@example.org".into();
    notifier
        .send(Notification::Invitation {
            to,
            link: INVITE_LINK.into(),
        })
        .await
        .unwrap();
    let mail = &memory.sent()[0];
    let parsed = ParsedMail::parse(&mail.raw).unwrap();
    assert_eq!(parsed.header_count("Bcc"), 0);
    assert_eq!(parsed.header_count("To"), 1);
    assert_eq!(mail.to, "alice@example.com");
}

#[tokio::test]
async fn values_are_escaped_in_the_html_body() {
    let (notifier, memory) = memory_notifier();
    let mut to = recipient();
    to.username = "<b>al&ice</b>".into();
    notifier
        .send(Notification::Invitation {
            to,
            link: INVITE_LINK.into(),
        })
        .await
        .unwrap();
    let mail = &memory.sent()[0];
    assert!(
        mail.html.contains("&lt;b&gt;al&amp;ice&lt;/b&gt;"),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("<b>al"));
    assert!(mail.text.contains("<b>al&ice</b>"));
}

#[tokio::test]
async fn the_recipient_without_a_name_is_addressed_by_username() {
    let (notifier, memory) = memory_notifier();
    let mut to = recipient();
    to.first_name.clear();
    to.last_name.clear();
    notifier
        .send(Notification::PasswordReset {
            to,
            link: RESET_LINK.into(),
        })
        .await
        .unwrap();
    let parsed = ParsedMail::parse(&memory.sent()[0].raw).unwrap();
    assert_eq!(parsed.header("To").unwrap(), "alice <alice@example.com>");
    assert!(parsed.text.unwrap().contains("Hello alice,"));
}

#[tokio::test]
async fn an_invalid_recipient_address_is_a_permanent_failure_that_hides_the_link() {
    let (notifier, memory) = memory_notifier();
    let mut to = recipient();
    to.email = "not an address".into();
    let err = notifier
        .send(Notification::PasswordReset {
            to,
            link: RESET_LINK.into(),
        })
        .await
        .unwrap_err();
    let PortError::Unexpected(cause) = &err else {
        panic!("expected Unexpected, got {err:?}");
    };
    assert!(!format!("{cause} {cause:?}").contains("reset"));
    assert!(memory.sent().is_empty());
}

#[tokio::test]
async fn the_file_transport_writes_one_eml_per_message() {
    let dir = TempDir::new();
    let notifier = LettreNotifier::new(config(Transport::File { dir: dir.0.clone() })).unwrap();
    notifier.send(invitation()).await.unwrap();
    notifier.send(reset()).await.unwrap();
    let emls: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(emls.len(), 2);
    let texts: Vec<String> = emls
        .iter()
        .map(|e| {
            ParsedMail::parse(&std::fs::read(e.path()).unwrap())
                .unwrap()
                .text
                .unwrap()
        })
        .collect();
    assert!(texts.iter().any(|t| t.contains(INVITE_LINK)));
    assert!(texts.iter().any(|t| t.contains(RESET_LINK)));
}

#[test]
fn the_console_transport_is_accepted() {
    // Not sent to here: it would print into the test output.
    LettreNotifier::new(config(Transport::Console)).unwrap();
}

#[test]
fn templates_render_for_a_preview_without_sending() {
    let (notifier, memory) = memory_notifier();
    let rendered = notifier.templates().render(&invitation()).unwrap();
    assert_eq!(rendered.subject, "Welcome to Example Site, alice");
    assert!(rendered.text.contains(INVITE_LINK));
    assert!(memory.sent().is_empty());
}
