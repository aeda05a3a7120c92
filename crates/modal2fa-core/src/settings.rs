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
        }
    }
}
