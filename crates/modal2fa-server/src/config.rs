//! Configuration: a TOML file plus `MODAL2FA_*` environment variables (which win). An
//! unknown key or an invalid value stops start-up with the key's name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use modal2fa_actix::ModalAppearance;
use modal2fa_core::Settings;
use modal2fa_core::client_ip::{ClientIpConfig, IpSet};
use modal2fa_core::lockout::LockoutSettings;
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::settings::SessionSettings;
use serde::Deserialize;

use time::Duration;

/// Every setting of the reference server. See `config/example.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// `sqlite://…?mode=rwc`, `postgres://…` or `mysql://…`.
    pub database_url: String,
    /// Connection pool size.
    pub database_max_connections: u32,
    /// The server secret (≥ 32 bytes; hex or base64). Prefer `secret_file` in production.
    pub secret: Option<String>,
    /// Where the secret is kept; created with a random secret on first start if missing.
    pub secret_file: PathBuf,
    /// Secure `__Host-` cookies and HSTS; default: on unless listening on a loopback address.
    pub secure_cookies: Option<bool>,
    /// Shown in titles.
    pub site_name: String,
    /// Issuer label in authenticator apps.
    pub totp_issuer: String,
    /// Serve the demo home page (`/`) and protected page (`/protected`).
    pub demo: bool,
    /// Where to go after signing in without a `next`.
    pub login_redirect: String,
    /// Where to go after signing out.
    pub logout_redirect: String,
    /// Templates here replace the embedded ones by name.
    pub template_dir: Option<PathBuf>,
    /// Reverse-proxy hops in front of the server.
    pub trusted_proxy_count: usize,
    /// Legacy switch: one proxy.
    pub behind_reverse_proxy: bool,
    /// CIDR mode: the proxies' networks.
    pub trusted_proxies: Vec<String>,
    /// Idle session timeout.
    pub session_idle_minutes: u32,
    /// Absolute session timeout.
    pub session_absolute_hours: u32,
    /// How long a password-only login waits for its second factor.
    pub pending_login_minutes: u32,
    /// Reset and invitation link lifetime.
    pub reset_link_days: u32,
    /// A trusted device unused this long stops working.
    pub trusted_device_days: u32,
    /// `argon2id` or `pbkdf2_sha256`.
    pub password_hashing: String,
    /// Iterations for `pbkdf2_sha256`.
    pub pbkdf2_iterations: u32,
    /// Lockout.
    pub lockout: LockoutConfig,
    /// Per-modal appearance.
    pub appearance: HashMap<String, ModalAppearance>,
}

/// `[lockout]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failures before a username is locked.
    pub user_failed_attempts: u32,
    /// Failures before an address is locked.
    pub ip_failed_attempts: u32,
    /// First lock's length.
    pub lockout_seconds: u32,
    /// Longest lock.
    pub max_lockout_seconds: u32,
    /// Addresses and networks never locked by the IP counter.
    pub excluded_ips: Vec<String>,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        let d = LockoutSettings::default();
        Self {
            user_failed_attempts: d.user_failed_attempts,
            ip_failed_attempts: d.ip_failed_attempts,
            lockout_seconds: d.lockout_seconds,
            max_lockout_seconds: d.max_lockout_seconds,
            excluded_ips: Vec::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://modal2fa.sqlite?mode=rwc".into(),
            database_max_connections: 8,
            secret: None,
            secret_file: PathBuf::from(".modal2fa/secret"),
            secure_cookies: None,
            site_name: "modal2fa".into(),
            totp_issuer: "modal2fa".into(),
            demo: true,
            login_redirect: "/".into(),
            logout_redirect: "/".into(),
            template_dir: None,
            trusted_proxy_count: 0,
            behind_reverse_proxy: false,
            trusted_proxies: Vec::new(),
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            pending_login_minutes: 5,
            reset_link_days: 3,
            trusted_device_days: 90,
            password_hashing: "argon2id".into(),
            pbkdf2_iterations: 1_000_000,
            lockout: LockoutConfig::default(),
            appearance: HashMap::new(),
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration error: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

const SECTIONS: &[&str] = &["lockout"];

/// Environment variables that are not settings (the test suite's database URLs, the
/// config file path, the log filter).
fn ignored_env(name: &str) -> bool {
    name.starts_with("MODAL2FA_TEST_") || matches!(name, "MODAL2FA_CONFIG" | "MODAL2FA_LOG")
}

/// Loads `file` (if any), applies `MODAL2FA_*` variables from `env`, and validates.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut table: toml::Table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            text.parse().map_err(|e: toml::de::Error| {
                ConfigError(format!("{}: {}", path.display(), e.message()))
            })?
        }
        None => toml::Table::new(),
    };
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("MODAL2FA_") else {
            continue;
        };
        if ignored_env(&name) {
            continue;
        }
        let key = rest.to_ascii_lowercase();
        let parsed = parse_env_value(&value);
        match SECTIONS.iter().find(|s| key.starts_with(&format!("{s}_"))) {
            Some(section) => {
                let sub = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let toml::Value::Table(sub) = sub else {
                    return Err(ConfigError(format!("{section} must be a table")));
                };
                sub.insert(key[section.len() + 1..].to_owned(), parsed);
            }
            None => {
                table.insert(key, parsed);
            }
        }
    }
    // Re-parse the merged table as text so a type error can point at its key.
    let text = toml::to_string(&table).map_err(|e| ConfigError(e.to_string()))?;
    let config: Config = toml::from_str(&text).map_err(|e| ConfigError(with_key(&text, &e)))?;
    config.validate()?;
    Ok(config)
}

/// The error message prefixed with the dotted key whose value the error points at.
fn with_key(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().to_owned();
    };
    let mut section = String::new();
    let mut key = String::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.trim_matches(['[', ']']).to_owned();
        } else if let Some((k, _)) = trimmed.split_once('=') {
            key = k.trim().trim_matches('"').to_owned();
        }
        offset += line.len();
        if offset > span.start {
            break;
        }
    }
    let full = if section.is_empty() {
        key
    } else {
        format!("{section}.{key}")
    };
    format!("{full}: {}", e.message())
}

/// An environment value as TOML when it parses as a number, boolean or array; else a string.
fn parse_env_value(value: &str) -> toml::Value {
    let probe = format!("v = {value}");
    match probe
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
    {
        Some(
            v @ (toml::Value::Integer(_)
            | toml::Value::Boolean(_)
            | toml::Value::Array(_)
            | toml::Value::Float(_)),
        ) => v,
        _ => toml::Value::String(value.to_owned()),
    }
}

fn bad(key: &str, why: &str) -> ConfigError {
    ConfigError(format!("{key}: {why}"))
}

impl Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|_| bad("listen", "must be an address such as 127.0.0.1:8080"))?;
        let scheme_ok = [
            "sqlite:",
            "postgres://",
            "postgresql://",
            "mysql://",
            "mariadb://",
        ]
        .iter()
        .any(|s| self.database_url.starts_with(s));
        if !scheme_ok {
            return Err(bad(
                "database_url",
                "must start with sqlite:, postgres:// or mysql://",
            ));
        }
        if self.database_max_connections == 0 {
            return Err(bad("database_max_connections", "must be at least 1"));
        }
        if !matches!(self.password_hashing.as_str(), "argon2id" | "pbkdf2_sha256") {
            return Err(bad("password_hashing", "must be argon2id or pbkdf2_sha256"));
        }
        if self.pbkdf2_iterations == 0 {
            return Err(bad("pbkdf2_iterations", "must be at least 1"));
        }
        IpSet::parse(&self.trusted_proxies).map_err(|e| bad("trusted_proxies", &e.to_string()))?;
        IpSet::parse(&self.lockout.excluded_ips)
            .map_err(|e| bad("lockout.excluded_ips", &e.to_string()))?;
        for (key, value) in [
            (
                "lockout.user_failed_attempts",
                self.lockout.user_failed_attempts,
            ),
            (
                "lockout.ip_failed_attempts",
                self.lockout.ip_failed_attempts,
            ),
            ("lockout.lockout_seconds", self.lockout.lockout_seconds),
            ("session_idle_minutes", self.session_idle_minutes),
            ("session_absolute_hours", self.session_absolute_hours),
            ("pending_login_minutes", self.pending_login_minutes),
            ("reset_link_days", self.reset_link_days),
            ("trusted_device_days", self.trusted_device_days),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1"));
            }
        }
        if self.lockout.max_lockout_seconds < self.lockout.lockout_seconds {
            return Err(bad(
                "lockout.max_lockout_seconds",
                "must not be below lockout.lockout_seconds",
            ));
        }
        for path in [&self.login_redirect, &self.logout_redirect] {
            if !path.starts_with('/') || path.starts_with("//") {
                return Err(bad(
                    if path == &self.login_redirect {
                        "login_redirect"
                    } else {
                        "logout_redirect"
                    },
                    "must be a local path starting with /",
                ));
            }
        }
        for (name, a) in &self.appearance {
            if !modal2fa_actix::ROUTES
                .iter()
                .any(|(r, _)| r.trim_start_matches("auth:") == name)
            {
                return Err(bad(&format!("appearance.{name}"), "is not a modal name"));
            }
            if let Some(size) = &a.size
                && !matches!(size.as_str(), "sm" | "lg" | "xl" | "")
            {
                return Err(bad(
                    &format!("appearance.{name}.size"),
                    "must be sm, lg or xl",
                ));
            }
        }
        if let Some(dir) = &self.template_dir
            && !dir.is_dir()
        {
            return Err(bad("template_dir", "is not a directory"));
        }
        Ok(())
    }

    /// Whether cookies are `Secure`: as configured, else on unless listening on loopback.
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| {
            !self
                .listen
                .parse::<SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
        })
    }

    /// The core settings.
    pub fn core_settings(&self) -> Settings {
        Settings {
            lockout: LockoutSettings {
                user_failed_attempts: self.lockout.user_failed_attempts,
                ip_failed_attempts: self.lockout.ip_failed_attempts,
                lockout_seconds: self.lockout.lockout_seconds,
                max_lockout_seconds: self.lockout.max_lockout_seconds,
                excluded: IpSet::parse(&self.lockout.excluded_ips).unwrap_or_default(),
            },
            client_ip: ClientIpConfig {
                trusted_proxy_count: self.trusted_proxy_count,
                behind_reverse_proxy: self.behind_reverse_proxy,
                trusted_proxies: IpSet::parse(&self.trusted_proxies).unwrap_or_default(),
            },
            totp_issuer: self.totp_issuer.clone(),
            machine: modal2fa_core::machine::MachineConfig {
                pending_ttl: Duration::minutes(i64::from(self.pending_login_minutes)),
                ..Default::default()
            },
            session: SessionSettings {
                idle_timeout: Duration::minutes(i64::from(self.session_idle_minutes)),
                absolute_timeout: Duration::hours(i64::from(self.session_absolute_hours)),
            },
            link_lifetime: Duration::days(i64::from(self.reset_link_days)),
            trusted_device_lifetime: Duration::days(i64::from(self.trusted_device_days)),
            password_hashing: match self.password_hashing.as_str() {
                "pbkdf2_sha256" => PasswordHashing::Pbkdf2Sha256 {
                    iterations: self.pbkdf2_iterations,
                },
                _ => PasswordHashing::default(),
            },
            ..Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile_like::TempFile {
        tempfile_like::TempFile::new(text)
    }

    mod tempfile_like {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn new(text: &str) -> Self {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "modal2fa-config-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                ));
                std::fs::write(&p, text).unwrap();
                Self(p)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn defaults_load_without_a_file() {
        let c = load(None, env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert!(
            !c.secure_cookies(),
            "loopback development defaults to plain cookies"
        );
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
        load(Some(&path), env(&[])).unwrap();
    }

    #[test]
    fn an_unknown_key_stops_start_up_with_its_name() {
        let f = file("listen = \"127.0.0.1:9000\"\nlisten_port = 9000\n");
        let err = load(Some(&f.0), env(&[])).unwrap_err();
        assert!(err.0.contains("listen_port"), "{err}");
        let f = file("[lockout]\nuser_attempts = 3\n");
        assert!(
            load(Some(&f.0), env(&[]))
                .unwrap_err()
                .0
                .contains("user_attempts")
        );
        let err = load(None, env(&[("MODAL2FA_COLOUR", "red")])).unwrap_err();
        assert!(err.0.contains("colour"), "{err}");
    }

    #[test]
    fn an_invalid_value_stops_start_up_with_its_key() {
        for (text, key) in [
            ("listen = \"nowhere\"", "listen"),
            ("database_url = \"oracle://x\"", "database_url"),
            ("password_hashing = \"md5\"", "password_hashing"),
            ("trusted_proxies = [\"10.0.0.0/99\"]", "trusted_proxies"),
            (
                "[lockout]\nuser_failed_attempts = 0",
                "lockout.user_failed_attempts",
            ),
            (
                "[lockout]\nexcluded_ips = [\"nonsense\"]",
                "lockout.excluded_ips",
            ),
            (
                "logout_redirect = \"https://evil.example/\"",
                "logout_redirect",
            ),
            ("[appearance.nosuch]\nsize = \"lg\"", "appearance.nosuch"),
            (
                "[appearance.login]\nsize = \"huge\"",
                "appearance.login.size",
            ),
            ("session_idle_minutes = \"soon\"", "session_idle_minutes"),
        ] {
            let f = file(text);
            let err = load(Some(&f.0), env(&[])).unwrap_err();
            assert!(
                err.0.contains(key) || err.0.contains(key.rsplit('.').next().unwrap()),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn environment_variables_override_the_file() {
        let f = file("listen = \"127.0.0.1:9000\"\n[lockout]\nuser_failed_attempts = 3\n");
        let c = load(
            Some(&f.0),
            env(&[
                ("MODAL2FA_LISTEN", "0.0.0.0:8443"),
                ("MODAL2FA_LOCKOUT_USER_FAILED_ATTEMPTS", "7"),
                ("MODAL2FA_TRUSTED_PROXY_COUNT", "1"),
                ("MODAL2FA_SECURE_COOKIES", "true"),
                ("MODAL2FA_TEST_POSTGRES_URL", "ignored"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:8443");
        assert_eq!(c.lockout.user_failed_attempts, 7);
        assert_eq!(c.trusted_proxy_count, 1);
        assert!(c.secure_cookies());
        assert_eq!(c.core_settings().client_ip.effective_proxy_count(), 1);
    }
}
