//! Mail through a real SMTP server (aiosmtpd on loopback, started per test): `user invite`
//! sends at once; an SMTP outage loses nothing (the message waits in the outbox, and a
//! server started later delivers it); two server processes on one database (SQLite, and
//! PostgreSQL when `MODAL2FA_TEST_POSTGRES_URL` is set) deliver each waiting message
//! exactly once; SMTP `AUTH`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use modal2fa_lettre::testing::SmtpSink;

use crate::cli::{Dir, modal2fa_with_env, start_serve};

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mail_config(dir: &Dir, port: u16) -> std::path::PathBuf {
    dir.config(&format!(
        "public_url = \"https://app.example.test\"\n\
         [mail]\ntransport = \"smtp\"\nfrom = \"Example <noreply@example.test>\"\n\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\ntimeout_seconds = 5\n\
         [mail.outbox]\npoll_seconds = 1\nfirst_retry_seconds = 1\n"
    ))
}

fn invite(cfg: &std::path::PathBuf, email: &str, env: &[(&str, &str)]) -> String {
    let (code, out, err) = modal2fa_with_env(cfg, &["user", "invite", email], "", env);
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// `modal2fa serve` with `env`, once it listens.
fn serve(cfg: &std::path::PathBuf, env: &[(&str, &str)]) -> Child {
    start_serve(cfg, env, Stdio::null()).0
}

/// The link in the text part of `mail`.
fn link_in(mail: &modal2fa_lettre::testing::CapturedMail) -> String {
    let text = mail.parsed().text.expect("no text part");
    let start = text.find("https://").expect("no link");
    text[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_invite_sends_the_invitation_at_once_with_a_link_under_the_public_url() {
    let sink = SmtpSink::start(None);
    let dir = Dir::new("mail-invite");
    let cfg = mail_config(&dir, sink.port());
    let out = invite(&cfg, "nova@example.test", &[]);
    assert!(out.contains("the invitation was sent"), "{out}");
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].rcpt_tos(), vec!["nova@example.test".to_owned()]);
    assert_eq!(mails[0].mail_from(), Some("noreply@example.test"));
    let link = link_in(&mails[0]);
    assert!(
        link.starts_with("https://app.example.test/auth/invitation/"),
        "{link}"
    );
    assert!(!out.contains(&link), "the link was printed: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_loses_nothing_and_a_server_started_later_delivers_the_message() {
    let dir = Dir::new("mail-outage");
    let cfg = mail_config(&dir, dead_port());
    let out = invite(&cfg, "late@example.test", &[]);
    assert!(out.contains("waits in the outbox"), "{out}");
    let sink = SmtpSink::start(None);
    let port = sink.port().to_string();
    let mut server = serve(&cfg, &[("MODAL2FA_MAIL__SMTP__PORT", &port)]);
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_tos(), vec!["late@example.test".to_owned()]);
}

/// A fresh PostgreSQL database when `MODAL2FA_TEST_POSTGRES_URL` is set (dropped with the
/// guard), made and dropped with `psql`.
struct Postgres {
    admin: String,
    name: String,
}

impl Postgres {
    fn create(tag: &str) -> Option<Self> {
        let admin = std::env::var("MODAL2FA_TEST_POSTGRES_URL").ok()?;
        let name = format!("modal2fa_mail_{tag}_{}", std::process::id());
        let pg = Self { admin, name };
        pg.psql(&format!("DROP DATABASE IF EXISTS {}", pg.name));
        pg.psql(&format!("CREATE DATABASE {}", pg.name));
        Some(pg)
    }

    fn psql(&self, sql: &str) {
        let out = Command::new("psql")
            .args([self.admin.as_str(), "-q", "-c", sql])
            .output()
            .expect("psql (the PostgreSQL client) runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        let base = self
            .admin
            .rsplit_once('/')
            .map_or(self.admin.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Twelve invitations wait (the mail server was down); two `serve` processes on the one
/// database `env` names then deliver each exactly once.
async fn two_senders_deliver_each_once(tag: &str, db_env: &[(&str, &str)]) {
    let dir = Dir::new(&format!("mail-two-{tag}"));
    let cfg = mail_config(&dir, dead_port());
    let n = 12;
    for i in 0..n {
        invite(&cfg, &format!("user{i}@example.test"), db_env);
    }
    let sink = SmtpSink::start(None);
    let port = sink.port().to_string();
    let mut env = db_env.to_vec();
    env.push(("MODAL2FA_MAIL__SMTP__PORT", port.as_str()));
    let mut a = serve(&cfg, &env);
    let mut b = serve(&cfg, &env);
    let mails = sink.wait_for(n, Duration::from_secs(30)).await;
    // Both poll every second: three more seconds give each a few more chances to resend.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails_after = sink.messages();
    for p in [&mut a, &mut b] {
        p.kill().unwrap();
        p.wait().unwrap();
    }
    assert_eq!(mails.len(), n, "{tag}");
    let mut to: Vec<String> = mails_after.iter().flat_map(|m| m.rcpt_tos()).collect();
    assert_eq!(to.len(), n, "{tag}: a message was sent twice: {to:?}");
    to.sort();
    to.dedup();
    assert_eq!(to.len(), n, "{tag}: {to:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_database_deliver_each_waiting_message_exactly_once() {
    two_senders_deliver_each_once("sqlite", &[]).await;
    if let Some(pg) = Postgres::create("two") {
        let url = pg.url();
        two_senders_deliver_each_once("postgres", &[("MODAL2FA_DATABASE_URL", &url)]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_auth_delivers_with_the_right_password_and_a_wrong_one_fails_the_message_clearly() {
    let sink = SmtpSink::start(Some(("mailer", "s3cret-pass")));
    let dir = Dir::new("mail-auth");
    let cfg = mail_config(&dir, sink.port());
    let user = [("MODAL2FA_MAIL__SMTP__USERNAME", "mailer")];
    let right = [user[0], ("MODAL2FA_MAIL__SMTP__PASSWORD", "s3cret-pass")];
    let out = invite(&cfg, "ok@example.test", &right);
    assert!(out.contains("the invitation was sent"), "{out}");
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].auth_user(), Some("mailer"));

    let wrong = [
        user[0],
        ("MODAL2FA_MAIL__SMTP__PASSWORD", "not-the-password"),
    ];
    let (code, out, err) = modal2fa_with_env(
        &cfg,
        &["user", "invite", "refused@example.test"],
        "",
        &wrong,
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("refused the invitation"), "{err}");
    assert!(
        err.contains("535"),
        "the log names the server's answer: {err}"
    );
    assert!(
        !err.contains("not-the-password"),
        "the password was logged: {err}"
    );
    assert_eq!(sink.messages().len(), 1);
}
