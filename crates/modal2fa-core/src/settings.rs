//! Core settings, each with a working default.

use time::Duration;

use crate::client_ip::ClientIpConfig;
use crate::lockout::LockoutSettings;
use crate::machine::MachineConfig;
use crate::password::PasswordHashing;
use crate::totp::TotpParams;

/// Session timeouts (NIST SP 800-63B AAL2: 30 min idle, 12 h absolute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session this old ends, however active.
    pub absolute_timeout: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::minutes(30),
            absolute_timeout: Duration::hours(12),
        }
    }
}

/// How the outbox's sender retries (see `services::OutboxService`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Attempts before a message is marked failed for good (default 8).
    pub max_attempts: u32,
    /// The wait after the first failure; each later one doubles it (default 30 s).
    pub first_retry: Duration,
    /// The longest wait between two attempts (default 1 h).
    pub max_retry: Duration,
    /// How long a claim lasts: a sender that dies holding a message lets another send it
    /// after this (default 5 min; longer than any transport timeout).
    pub lease: Duration,
    /// Messages claimed per batch (default 20).
    pub batch: u64,
    /// Sent and failed messages are kept this long, then purged (default 7 days).
    pub keep_finished: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            first_retry: Duration::seconds(30),
            max_retry: Duration::hours(1),
            lease: Duration::minutes(5),
            batch: 20,
            keep_finished: Duration::days(7),
        }
    }
}

impl OutboxSettings {
    /// The wait after the `attempts`-th failed attempt: `first_retry · 2^(attempts-1)`,
    /// at most `max_retry`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let wait = self.first_retry.saturating_mul(1i32 << doublings);
        wait.min(self.max_retry)
    }
}

/// Everything the core services need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Lockout thresholds and exclusions.
    pub lockout: LockoutSettings,
    /// Client-IP resolution.
    pub client_ip: ClientIpConfig,
    /// TOTP parameters.
    pub totp: TotpParams,
    /// Issuer label shown in authenticator apps.
    pub totp_issuer: String,
    /// Pending-login timing.
    pub machine: MachineConfig,
    /// Session timeouts.
    pub session: SessionSettings,
    /// Lifetime of reset and invitation links (default 3 days).
    pub link_lifetime: Duration,
    /// A trusted device unused this long stops working (default 90 days).
    pub trusted_device_lifetime: Duration,
    /// A trusted device stops working this long after it was trusted, however often it is
    /// used (default 365 days): the owner proves the second factor again.
    pub trusted_device_max_age: Duration,
    /// Hash for new passwords.
    pub password_hashing: PasswordHashing,
    /// A failed password check (a wrong password, an unknown, inactive or passwordless
    /// account, an unusable hash) answers no sooner than this after the attempt began,
    /// waiting asynchronously on the [`crate::ports::Delay`] port: the wall-clock time of
    /// a failure is then the same whatever the stored hash, as long as the floor covers
    /// the slowest hash the user store holds. Zero (the default) waits for nothing; set it
    /// with [`crate::password::measure_answer_floor`] at start-up when legacy hashes slower
    /// than the configured scheme remain (Django's PBKDF2 at 1 000 000 iterations).
    pub password_answer_floor: std::time::Duration,
    /// Recovery codes generated per set (default 10).
    pub recovery_code_count: usize,
    /// The Microsoft tenant id that sign-ins must come from, when Microsoft sign-in is on.
    pub microsoft_tenant_id: Option<String>,
    /// The WebAuthn relying party: passkeys and security keys are off without one.
    pub relying_party: Option<RelyingParty>,
    /// Retries of the notification outbox.
    pub outbox: OutboxSettings,
    /// A sign-in whose password was right but whose second step is not completed this
    /// long after tells the owner (default 10 minutes; `None`: never). The alert waits in
    /// the outbox and is withdrawn when the second step succeeds.
    pub second_factor_alert_after: Option<Duration>,
}

/// The WebAuthn relying party: the site's registrable domain (the RP ID), the origin the
/// browser shows, and the name authenticators show. Built only through
/// [`RelyingParty::new`], which checks them, so the ceremonies can always be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    id: String,
    origin: String,
    name: String,
    ceremony_timeout: Duration,
}

/// Why a relying party was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelyingPartyError {
    /// The origin is not an absolute `https://` (or `http://localhost`) URL.
    #[error("the WebAuthn origin must be an https:// URL (or http://localhost in development)")]
    Origin,
    /// The RP ID is not the origin's host or a registrable suffix of it.
    #[error("the WebAuthn RP ID must be the origin's host or a parent domain of it")]
    Id,
}

impl RelyingParty {
    /// A relying party `id` (for example `example.com`) for `origin` (for example
    /// `https://login.example.com`; `http://localhost:8080` in development), shown to
    /// users as `name`. A ceremony (the browser prompt) may take five minutes.
    pub fn new(id: &str, origin: &str, name: &str) -> Result<Self, RelyingPartyError> {
        let url =
            webauthn_rs::prelude::Url::parse(origin).map_err(|_| RelyingPartyError::Origin)?;
        let local = url.host_str() == Some("localhost");
        if url.scheme() != "https" && !(url.scheme() == "http" && local) {
            return Err(RelyingPartyError::Origin);
        }
        webauthn_rs::WebauthnBuilder::new(id, &url)
            .and_then(|b| b.rp_name(name).build())
            .map_err(|_| RelyingPartyError::Id)?;
        Ok(Self {
            id: id.to_owned(),
            origin: origin.to_owned(),
            name: name.to_owned(),
            ceremony_timeout: Duration::minutes(5),
        })
    }

    /// The RP ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The name authenticators show.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long a ceremony stays open (default five minutes).
    pub fn ceremony_timeout(&self) -> Duration {
        self.ceremony_timeout
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lockout: LockoutSettings::default(),
            client_ip: ClientIpConfig::default(),
            totp: TotpParams::default(),
            totp_issuer: "modal2fa".to_owned(),
            machine: MachineConfig::default(),
            session: SessionSettings::default(),
            link_lifetime: Duration::days(3),
            trusted_device_lifetime: Duration::days(90),
            trusted_device_max_age: Duration::days(365),
            password_hashing: PasswordHashing::default(),
            password_answer_floor: std::time::Duration::ZERO,
            recovery_code_count: 10,
            microsoft_tenant_id: None,
            relying_party: None,
            outbox: OutboxSettings::default(),
            second_factor_alert_after: Some(Duration::minutes(10)),
        }
    }
}
