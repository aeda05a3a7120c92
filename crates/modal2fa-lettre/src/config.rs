//! What the notifier is configured with, and what is wrong with a configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use modal2fa_core::SecretString;

use crate::memory::MemoryTransport;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpSecurity {
    /// A plain connection upgraded with `STARTTLS` before anything else is said (usually
    /// port 587). The upgrade is required: a server that does not offer it is refused,
    /// so credentials and messages never travel in clear.
    #[default]
    StartTls,
    /// Implicit TLS from the first byte ("SMTPS", usually port 465).
    Tls,
    /// No encryption at all. Accepted only for a server on this machine (`localhost`,
    /// `127.0.0.1`, `::1`): a local relay or a development sink.
    Plain,
}

/// An SMTP server to hand messages to.
#[derive(Clone)]
pub struct SmtpConfig {
    /// Host name or address. With TLS it is also the name the certificate must carry.
    pub host: String,
    /// Port (587 for [`SmtpSecurity::StartTls`], 465 for [`SmtpSecurity::Tls`], …).
    pub port: u16,
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// Login for `AUTH`, if the server wants one; set together with `password`.
    pub username: Option<String>,
    /// Password for `AUTH`; set together with `username`.
    pub password: Option<SecretString>,
    /// Limit for handing one message over, from connecting (or checking a pooled
    /// connection) to the server's acceptance of the message (default 10 s). Past it,
    /// `send` gives up with `PortError::Unavailable` and the connection is closed.
    pub timeout: Duration,
    /// Most idle connections kept open for reuse, for at most a minute each (default 4).
    /// A connection is reused only after a message went through on it; one that failed
    /// or timed out is closed.
    pub pool_size: u32,
}

impl SmtpConfig {
    /// A configuration for `host:port` with `security`, no credentials and the default
    /// timeout and pool size.
    pub fn new(host: impl Into<String>, port: u16, security: SmtpSecurity) -> Self {
        Self {
            host: host.into(),
            port,
            security,
            username: None,
            password: None,
            timeout: Duration::from_secs(10),
            pool_size: 4,
        }
    }
}

impl Default for SmtpConfig {
    /// No host (it must be set), port 587 with [`SmtpSecurity::StartTls`], no
    /// credentials, a 10 s timeout and 4 pooled connections.
    fn default() -> Self {
        Self::new("", 587, SmtpSecurity::StartTls)
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// Where rendered messages go.
#[derive(Debug, Clone)]
pub enum Transport {
    /// An SMTP server (pooled connections).
    Smtp(SmtpConfig),
    /// One `.eml` file per message in `dir`, for development. The directory must exist.
    File {
        /// Where the files are written.
        dir: PathBuf,
    },
    /// Prints each whole message to standard output. Development only: it shows the
    /// links, which are credentials.
    Console,
    /// Keeps the rendered messages in memory, for tests (see [`MemoryTransport::sent`]).
    Memory(Arc<MemoryTransport>),
}

/// Everything [`crate::LettreNotifier::new`] needs.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The sender, as an address with an optional display name:
    /// `Example <noreply@example.com>` or `noreply@example.com`.
    pub from: String,
    /// The site's name, shown in subjects and bodies.
    pub site_name: String,
    /// The site's public base URL (for templates: a logo, a link to the account page).
    pub base_url: String,
    /// A directory whose files replace the built-in templates of the same relative path
    /// (`password_reset/subject.txt`, …); files it lacks keep the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// Where messages go.
    pub transport: Transport,
}

/// Why a [`MailConfig`] was refused. The texts name the setting or the file; they never
/// contain the SMTP password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailConfigError {
    /// `from` is not a mailbox.
    #[error("mail `from` is not an address such as `Site <noreply@example.com>`: {reason}")]
    From {
        /// What the parser said.
        reason: String,
    },
    /// Unencrypted SMTP to another machine.
    #[error(
        "mail SMTP `security = plain` is only accepted for localhost, 127.0.0.1 or ::1, \
         not for `{host}`: use `starttls` or `tls`"
    )]
    PlainToRemoteHost {
        /// The configured host.
        host: String,
    },
    /// A username without a password or a password without a username.
    #[error("mail SMTP `username` and `password` must be set together (only `{set}` is set)")]
    HalfCredentials {
        /// Which of the two is set.
        set: &'static str,
    },
    /// An empty host, a zero port or a zero pool size.
    #[error("mail SMTP `{key}` is invalid: {reason}")]
    Smtp {
        /// The setting.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings could not be built for the host.
    #[error("mail SMTP TLS cannot be set up for `{host}`: {reason}")]
    Tls {
        /// The configured host.
        host: String,
        /// What the TLS library said.
        reason: String,
    },
    /// The file transport's directory does not exist or is not a directory.
    #[error("mail file transport directory `{path}` is not a directory")]
    FileDir {
        /// The directory.
        path: PathBuf,
    },
    /// `templates_dir` does not exist or is not a directory.
    #[error("mail `templates_dir` `{path}` is not a directory")]
    TemplatesDir {
        /// The directory.
        path: PathBuf,
    },
    /// An override template exists but cannot be read.
    #[error("mail template `{path}` cannot be read: {source}")]
    TemplateRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A template does not parse, or fails to render a sample message.
    #[error("mail template `{template}` is invalid: {reason}")]
    Template {
        /// The file (an override's path, or `built-in <kind>/<file>`).
        template: String,
        /// What Tera said.
        reason: String,
    },
}
