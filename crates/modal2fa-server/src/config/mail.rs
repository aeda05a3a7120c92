//! `[mail]`: where notifications go (the console by default, for development), and
//! `[mail.outbox]`: how the sender retries. Every message goes through the database's
//! outbox first; the sender task delivers it (see `modal2fa_core::services::OutboxService`).

use std::path::PathBuf;

use modal2fa_core::SecretString;
use modal2fa_lettre::{MailConfig, SmtpConfig, SmtpSecurity, Transport};
use serde::Deserialize;

use super::{Bounded, Secret};

/// `mail.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Send nothing; log (kind and user id only) that a message was due.
    None,
    /// Print each message to standard output (development: links are shown in full).
    Console,
    /// One `.eml` file per message in `mail.file_dir` (development).
    File,
    /// An SMTP server (`[mail.smtp]`).
    Smtp,
}

/// `mail.smtp.security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
    /// No encryption: only to localhost.
    Plain,
}

/// `[mail.smtp]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSection {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `starttls` (default), `tls` or `plain` (localhost only).
    pub security: Security,
    /// `AUTH` login, with `password`.
    pub username: Option<String>,
    /// `AUTH` password, with `username` (prefer the `MODAL2FA_MAIL__SMTP__PASSWORD`
    /// variable to a file).
    pub password: Option<Secret>,
    /// Connect and command timeout.
    pub timeout_seconds: Bounded<1, 120>,
    /// Pooled connections.
    pub pool_size: Bounded<1, 64>,
}

impl Default for SmtpSection {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            security: Security::default(),
            username: None,
            password: None,
            timeout_seconds: Bounded::new(10),
            pool_size: Bounded::new(4),
        }
    }
}

/// `[mail.outbox]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSection {
    /// How often the sender looks for due messages besides being woken by a new one
    /// (retries, and messages other server processes wrote).
    pub poll_seconds: Bounded<1, 3600>,
    /// Attempts before a message is marked failed.
    pub max_attempts: Bounded<1, 50>,
    /// The wait after the first failure (it doubles each time, up to an hour).
    pub first_retry_seconds: Bounded<1, 3600>,
}

impl Default for OutboxSection {
    fn default() -> Self {
        Self {
            poll_seconds: Bounded::new(30),
            max_attempts: Bounded::new(8),
            first_retry_seconds: Bounded::new(30),
        }
    }
}

/// `[mail]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSection {
    /// `none`, `console`, `file` or `smtp`; unset: `console` in plain-http development
    /// (`insecure_http_development`), `none` otherwise (links are never printed in
    /// production by default).
    pub transport: Option<TransportKind>,
    /// The sender: `Site <noreply@example.com>`.
    pub from: String,
    /// Where `transport = "file"` writes (must exist).
    pub file_dir: Option<PathBuf>,
    /// Files here replace the built-in mail templates of the same relative path
    /// (`password_reset/subject.txt`, …).
    pub templates_dir: Option<PathBuf>,
    /// `[mail.smtp]`.
    pub smtp: SmtpSection,
    /// `[mail.outbox]`.
    pub outbox: OutboxSection,
}

impl Default for MailSection {
    fn default() -> Self {
        Self {
            transport: None,
            from: "modal2fa <noreply@localhost>".into(),
            file_dir: None,
            templates_dir: None,
            smtp: SmtpSection::default(),
            outbox: OutboxSection::default(),
        }
    }
}

impl MailSection {
    /// The transport in force: the configured one, or the default for `development`.
    pub fn transport_kind(&self, development: bool) -> TransportKind {
        match (self.transport, development) {
            (Some(kind), _) => kind,
            (None, true) => TransportKind::Console,
            (None, false) => TransportKind::None,
        }
    }

    /// The notifier's configuration (`None` for `transport = "none"`); an error names
    /// the key that is wrong.
    pub fn mail_config(
        &self,
        development: bool,
        site_name: &str,
        public_url: &str,
    ) -> Result<Option<MailConfig>, (&'static str, String)> {
        let transport = match self.transport_kind(development) {
            TransportKind::None => return Ok(None),
            TransportKind::Console => Transport::Console,
            TransportKind::File => Transport::File {
                dir: self.file_dir.clone().ok_or((
                    "mail.file_dir",
                    "must be set when mail.transport is \"file\"".to_owned(),
                ))?,
            },
            TransportKind::Smtp => {
                if self.smtp.host.trim().is_empty() {
                    let why = "must be set when mail.transport is \"smtp\"".to_owned();
                    return Err(("mail.smtp.host", why));
                }
                let security = match self.smtp.security {
                    Security::Starttls => SmtpSecurity::StartTls,
                    Security::Tls => SmtpSecurity::Tls,
                    Security::Plain => SmtpSecurity::Plain,
                };
                let mut smtp = SmtpConfig::new(self.smtp.host.trim(), self.smtp.port, security);
                smtp.username = self.smtp.username.clone();
                smtp.password = self.smtp.password.as_deref().map(SecretString::new);
                smtp.timeout =
                    std::time::Duration::from_secs(u64::from(self.smtp.timeout_seconds.get()));
                smtp.pool_size = self.smtp.pool_size.get();
                Transport::Smtp(smtp)
            }
        };
        Ok(Some(MailConfig {
            from: self.from.clone(),
            site_name: site_name.to_owned(),
            base_url: public_url.to_owned(),
            templates_dir: self.templates_dir.clone(),
            transport,
        }))
    }

    /// The core's outbox settings.
    pub fn outbox_settings(&self) -> modal2fa_core::settings::OutboxSettings {
        modal2fa_core::settings::OutboxSettings {
            max_attempts: self.outbox.max_attempts.get(),
            first_retry: time::Duration::seconds(i64::from(self.outbox.first_retry_seconds.get())),
            ..Default::default()
        }
    }
}

impl super::Config {
    /// [`Config::public_url`](super::Config::public_url), or `http://localhost:<port>` in
    /// plain-http development.
    pub fn public_url(&self) -> Option<String> {
        let local = self.insecure_http_development;
        let dev = || format!("http://localhost:{}", self.listen.port());
        self.public_url.clone().or_else(|| local.then(dev))
    }

    /// `public_url` and `[mail]` checked; the error names the key.
    pub(super) fn validate_mail(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.public_url {
            check_public_url(url).map_err(|why| ("public_url", why))?;
        }
        self.mail
            .mail_config(self.insecure_http_development, &self.site_name, "")
            .map(|_| ())
    }
}

/// `public_url`: `https://host[:port]` (plain `http://` only for localhost), no path.
pub fn check_public_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("must be a URL such as https://app.example.com")?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err(
            "must be a scheme and host (and port) only, such as https://app.example.com".into(),
        );
    }
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let local = matches!(name, "localhost" | "127.0.0.1" | "[::1]");
    match scheme {
        "https" => Ok(()),
        "http" if local => Ok(()),
        "http" => Err("must use https (plain http only for localhost)".into()),
        _ => Err("must start with https://".into()),
    }
}
