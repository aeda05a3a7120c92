//! The SMTP client: lettre's connections, with a pool and a deadline of this crate's own.
//!
//! Lettre's `AsyncSmtpTransport` bounds only the TCP connect by its timeout: a server
//! that accepts the connection and then says nothing (or stops answering mid-message)
//! keeps `send` waiting forever. And cutting its `send` short with an outer timeout
//! would put the interrupted connection back in its pool, half-way through a command,
//! for the next message to trip over. So this module drives lettre's
//! [`AsyncSmtpConnection`] itself: the whole hand-over of one message (connect, TLS,
//! `AUTH`, `MAIL`, `RCPT`, `DATA`) runs under one deadline, and a connection goes back to
//! the pool only after a message went through on it. One that failed, timed out or was
//! abandoned (the caller stopped waiting) is dropped, which closes it.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{MailConfigError, SmtpConfig, SmtpSecurity};

/// How long an idle connection is kept for reuse.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// The longest a pooled connection may take to answer `NOOP` before a new one is made.
const NOOP_LIMIT: Duration = Duration::from_secs(2);

/// Why a message did not go through.
#[derive(Debug)]
pub(crate) enum SmtpFailure {
    /// What lettre reported.
    Smtp(lettre::transport::smtp::Error),
    /// The deadline passed.
    Timeout(Duration),
}

/// A connection waiting for the next message.
struct Parked {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// An SMTP server, validated, with its idle connections.
pub(crate) struct SmtpClient {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    timeout: Duration,
    pool_size: usize,
    hello: ClientId,
    server: String,
    idle: Mutex<Vec<Parked>>,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("authenticates", &self.credentials.is_some())
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// Whether `host` names this machine.
pub(crate) fn is_local_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn invalid(key: &'static str, reason: &str) -> MailConfigError {
    MailConfigError::Smtp {
        key,
        reason: reason.into(),
    }
}

impl SmtpClient {
    /// Validates `c` (see [`MailConfigError`]) and prepares the TLS settings.
    pub(crate) fn new(c: &SmtpConfig) -> Result<Self, MailConfigError> {
        let host = c
            .host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("host", "it is empty"));
        }
        if c.port == 0 {
            return Err(invalid("port", "it is 0"));
        }
        if c.pool_size == 0 {
            return Err(invalid("pool_size", "it is 0"));
        }
        if c.timeout.is_zero() {
            return Err(invalid("timeout", "it is 0"));
        }
        let tls = match c.security {
            SmtpSecurity::Plain => {
                if !is_local_host(&host) {
                    return Err(MailConfigError::PlainToRemoteHost { host });
                }
                Tls::None
            }
            SmtpSecurity::StartTls | SmtpSecurity::Tls => {
                let params =
                    TlsParameters::new(host.clone()).map_err(|e| MailConfigError::Tls {
                        host: host.clone(),
                        reason: e.to_string(),
                    })?;
                if c.security == SmtpSecurity::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let credentials = match (&c.username, &c.password) {
            (Some(user), Some(password)) => {
                Some(Credentials::new(user.clone(), password.expose().to_owned()))
            }
            (None, None) => None,
            (Some(_), None) => return Err(MailConfigError::HalfCredentials { set: "username" }),
            (None, Some(_)) => return Err(MailConfigError::HalfCredentials { set: "password" }),
        };
        let server = if host.contains(':') {
            format!("[{host}]:{}", c.port)
        } else {
            format!("{host}:{}", c.port)
        };
        Ok(Self {
            host,
            port: c.port,
            tls,
            credentials,
            timeout: c.timeout,
            pool_size: usize::try_from(c.pool_size).unwrap_or(usize::MAX),
            hello: ClientId::default(),
            server,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// `host:port`, for messages.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    /// Hands `raw` to the server for `envelope`, within the deadline.
    pub(crate) async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SmtpFailure> {
        match tokio::time::timeout(self.timeout, self.send_now(envelope, raw)).await {
            Ok(result) => result.map_err(SmtpFailure::Smtp),
            Err(_) => Err(SmtpFailure::Timeout(self.timeout)),
        }
    }

    async fn send_now(
        &self,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let mut conn = self.connection().await?;
        // On failure lettre has already sent QUIT; dropping the connection closes it.
        conn.send(envelope, raw).await?;
        self.park(conn);
        Ok(())
    }

    /// An idle connection that still answers, or a new one.
    async fn connection(&self) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        while let Some(parked) = self.take_idle() {
            if parked.since.elapsed() >= IDLE_LIMIT || parked.conn.has_broken() {
                continue;
            }
            let mut conn = parked.conn;
            let limit = NOOP_LIMIT.min(self.timeout / 2);
            if matches!(
                tokio::time::timeout(limit, conn.test_connected()).await,
                Ok(true)
            ) {
                return Ok(conn);
            }
        }
        self.connect().await
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        let wrapper = match &self.tls {
            Tls::Wrapper(params) => Some(params.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )
        .await?;
        if let Tls::Required(params) = &self.tls {
            conn.starttls(params.clone(), &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }

    fn take_idle(&self) -> Option<Parked> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn park(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|p| p.since.elapsed() < IDLE_LIMIT);
        if idle.len() < self.pool_size {
            idle.push(Parked {
                conn,
                since: Instant::now(),
            });
        }
    }
}
