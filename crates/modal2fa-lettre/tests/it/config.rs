//! What `LettreNotifier::new` accepts and refuses, and the template override directory.

use std::sync::Arc;

use modal2fa_core::ports::Notifier;
use modal2fa_lettre::{
    LettreNotifier, MailConfigError, MemoryTransport, SmtpConfig, SmtpSecurity, Transport,
};

use super::{INVITE_LINK, RESET_LINK, TempDir, config, invitation, reset};

fn with_templates(
    dir: &TempDir,
) -> (
    Result<LettreNotifier, MailConfigError>,
    Arc<MemoryTransport>,
) {
    let memory = Arc::new(MemoryTransport::new());
    let mut cfg = config(Transport::Memory(Arc::clone(&memory)));
    cfg.templates_dir = Some(dir.0.clone());
    (LettreNotifier::new(cfg), memory)
}

fn smtp(host: &str, security: SmtpSecurity) -> Result<LettreNotifier, MailConfigError> {
    LettreNotifier::new(config(Transport::Smtp(SmtpConfig::new(
        host, 2525, security,
    ))))
}

#[tokio::test]
async fn an_override_replaces_one_template_and_keeps_the_others() {
    let dir = TempDir::new();
    dir.write(
        "password_reset/subject.txt",
        "{{ site_name }}: new password for {{ display_name }}",
    );
    let (notifier, memory) = with_templates(&dir);
    let notifier = notifier.unwrap();
    notifier.send(reset()).await.unwrap();
    notifier.send(invitation()).await.unwrap();
    let sent = memory.sent();
    assert_eq!(
        sent[0].subject,
        "Example Site: new password for Alíce Liddell"
    );
    // The reset's bodies and every invitation template are the built-in ones.
    assert!(sent[0].text.contains(RESET_LINK));
    assert!(sent[0].html.contains("Choose a new password"));
    assert_eq!(sent[1].subject, "Welcome to Example Site, alice");
    assert!(sent[1].text.contains(INVITE_LINK));
}

#[test]
fn an_override_that_does_not_parse_is_refused_naming_its_file() {
    let dir = TempDir::new();
    dir.write("invitation/body.html", "<p>{{ link </p>");
    let err = with_templates(&dir).0.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, MailConfigError::Template { .. }), "{err:?}");
    let file = dir.0.join("invitation").join("body.html");
    assert!(text.contains(&file.display().to_string()), "{text}");
}

#[test]
fn an_override_that_uses_an_unknown_variable_is_refused_naming_its_file() {
    let dir = TempDir::new();
    dir.write(
        "security_change/body.txt",
        "{{ event_text }} {{ link.missing }}",
    );
    let err = with_templates(&dir).0.unwrap_err();
    let text = err.to_string();
    let file = dir.0.join("security_change").join("body.txt");
    assert!(text.contains(&file.display().to_string()), "{text}");
}

#[test]
fn an_unreadable_override_is_refused_naming_its_file() {
    let dir = TempDir::new();
    // A directory where the file should be cannot be read as a template.
    std::fs::create_dir_all(dir.0.join("invitation").join("subject.txt")).unwrap();
    let err = with_templates(&dir).0.unwrap_err();
    assert!(
        matches!(err, MailConfigError::TemplateRead { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("subject.txt"), "{err}");
}

#[test]
fn a_missing_templates_directory_is_refused() {
    let dir = TempDir::new();
    let memory = Arc::new(MemoryTransport::new());
    let mut cfg = config(Transport::Memory(memory));
    cfg.templates_dir = Some(dir.0.join("nope"));
    let err = LettreNotifier::new(cfg).unwrap_err();
    assert!(
        matches!(err, MailConfigError::TemplatesDir { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope"));
}

#[tokio::test]
async fn a_subject_with_a_line_break_from_a_template_is_flattened() {
    let dir = TempDir::new();
    dir.write(
        "invitation/subject.txt",
        "Welcome\r\nBcc: victim@example.org\n\n  to {{ site_name }}\t!\n",
    );
    let (notifier, memory) = with_templates(&dir);
    notifier.unwrap().send(invitation()).await.unwrap();
    let mail = &memory.sent()[0];
    assert_eq!(
        mail.subject,
        "Welcome Bcc: victim@example.org to Example Site !"
    );
    let parsed = modal2fa_lettre::testing::ParsedMail::parse(&mail.raw).unwrap();
    assert_eq!(parsed.header_count("Bcc"), 0);
    assert_eq!(parsed.header("Subject").unwrap(), mail.subject);
}

#[test]
fn plain_smtp_to_another_machine_is_refused() {
    for host in ["smtp.example.com", "192.0.2.10", "localhost.example.com"] {
        let err = smtp(host, SmtpSecurity::Plain).unwrap_err();
        assert!(
            matches!(err, MailConfigError::PlainToRemoteHost { .. }),
            "{host}: {err:?}"
        );
        assert!(err.to_string().contains(host));
    }
}

#[test]
fn plain_smtp_to_this_machine_is_accepted_outside_a_runtime() {
    // No Tokio runtime here: the connection pool is only built on the first send.
    for host in ["localhost", "127.0.0.1", "::1", "LOCALHOST"] {
        let notifier = smtp(host, SmtpSecurity::Plain).unwrap();
        drop(notifier);
    }
}

#[test]
fn encrypted_smtp_to_another_machine_is_accepted() {
    smtp("smtp.example.com", SmtpSecurity::StartTls).unwrap();
    smtp("smtp.example.com", SmtpSecurity::Tls).unwrap();
}

#[test]
fn half_credentials_are_refused_without_echoing_the_password() {
    let mut c = SmtpConfig::new("smtp.example.com", 587, SmtpSecurity::StartTls);
    c.password = Some("hunter2-very-secret".into());
    let err = LettreNotifier::new(config(Transport::Smtp(c.clone()))).unwrap_err();
    assert!(
        matches!(err, MailConfigError::HalfCredentials { set: "password" }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    assert!(!format!("{c:?}").contains("hunter2"));

    let mut c = SmtpConfig::new("smtp.example.com", 587, SmtpSecurity::StartTls);
    c.username = Some("mailer".into());
    let err = LettreNotifier::new(config(Transport::Smtp(c))).unwrap_err();
    assert!(
        matches!(err, MailConfigError::HalfCredentials { set: "username" }),
        "{err:?}"
    );
}

#[test]
fn smtp_settings_that_cannot_work_are_refused_naming_the_key() {
    let mut c = SmtpConfig::new("", 587, SmtpSecurity::StartTls);
    let err = LettreNotifier::new(config(Transport::Smtp(c.clone()))).unwrap_err();
    assert!(err.to_string().contains("`host`"), "{err}");
    c.host = "smtp.example.com".into();
    c.pool_size = 0;
    let err = LettreNotifier::new(config(Transport::Smtp(c.clone()))).unwrap_err();
    assert!(err.to_string().contains("`pool_size`"), "{err}");
    c.pool_size = 4;
    c.port = 0;
    let err = LettreNotifier::new(config(Transport::Smtp(c))).unwrap_err();
    assert!(err.to_string().contains("`port`"), "{err}");
}

#[test]
fn the_smtp_defaults_are_a_ten_second_timeout_and_four_connections() {
    let c = SmtpConfig::default();
    assert_eq!(c.timeout, std::time::Duration::from_secs(10));
    assert_eq!(c.pool_size, 4);
    assert_eq!(c.security, SmtpSecurity::StartTls);
}

#[test]
fn a_sender_that_is_not_an_address_is_refused() {
    for from in ["", "Example Site", "Site <not-an-address>", "a@b@c"] {
        let mut cfg = config(Transport::Console);
        cfg.from = from.into();
        let err = LettreNotifier::new(cfg).unwrap_err();
        assert!(
            matches!(err, MailConfigError::From { .. }),
            "{from}: {err:?}"
        );
        assert!(err.to_string().contains("`from`"));
    }
}

#[test]
fn a_missing_file_transport_directory_is_refused() {
    let dir = TempDir::new();
    let err = LettreNotifier::new(config(Transport::File {
        dir: dir.0.join("absent"),
    }))
    .unwrap_err();
    assert!(matches!(err, MailConfigError::FileDir { .. }), "{err:?}");
}
