//! Configuration: defaults, then a TOML file, then `MODAL2FA_*` environment variables.
//!
//! Each layer wins over the one before, key by key, merged by figment, which remembers
//! where every value came from. In the environment `__` separates levels, so every key is
//! reachable at any depth: `MODAL2FA_SITE_NAME`, `MODAL2FA_LOCKOUT__USER_FAILED_ATTEMPTS`,
//! `MODAL2FA_APPEARANCE__LOGIN__SIZE`. `MODAL2FA_CONFIG`, `MODAL2FA_LOG` and
//! `MODAL2FA_TEST_*` are not settings. An environment value is always a string; it becomes
//! a number or a boolean only where the key is one, so `MODAL2FA_SITE_NAME=2024` is the
//! name "2024".
//!
//! Each key is checked when it is read, by its type: addresses, networks, bounded numbers
//! and lifetimes, the hasher, local redirect paths, modal names. [`Config::validate`] then
//! checks only the rules between keys (lock lengths, the hash cost floor). An error names
//! the key and the file or variable it came from, and never shows the value of `secret`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use figment::error::{Kind, OneOf};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use modal2fa_actix::ModalAppearance;
use modal2fa_core::Settings;
use modal2fa_core::client_ip::{ClientIpConfig, IpNet, IpSet};
use modal2fa_core::lockout::LockoutSettings;
use modal2fa_core::machine::MachineConfig;
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::settings::SessionSettings;
use modal2fa_sea_orm::PoolOptions;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use time::Duration;

/// Every setting of the reference server; `config/example.toml` shows each with its default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite:…`, `postgres://…` or `mysql://…`.
    #[serde(deserialize_with = "database_url")]
    pub database_url: String,
    /// Connection pool size.
    pub database_max_connections: Bounded<1, 1000>,
    /// How long a statement waits for a pooled connection (at most a minute): while the
    /// database is down, how long a request waits before it is answered 503.
    pub database_acquire_timeout_seconds: Bounded<1, 60>,
    /// The server secret (≥ 32 bytes; hex or base64). Prefer `secret_file` in production.
    pub secret: Option<Secret>,
    /// Where the secret is kept; created with a random secret on first start if missing.
    pub secret_file: PathBuf,
    /// Plain-http development: cookies without `Secure` and the `__Host-` prefix, and no
    /// HSTS. Refused unless `listen` is a loopback address; `serve` warns. Off by default,
    /// whatever the listener (behind a proxy on the same host it is loopback too).
    pub insecure_http_development: bool,
    /// Shown in titles.
    pub site_name: String,
    /// Issuer label in authenticator apps.
    pub totp_issuer: String,
    /// Serve the demo home page (`/`) and protected page (`/protected`).
    pub demo: bool,
    /// Where to go after signing in without a `next` (a local path).
    #[serde(deserialize_with = "local_path")]
    pub login_redirect: String,
    /// Where to go after signing out (a local path).
    #[serde(deserialize_with = "local_path")]
    pub logout_redirect: String,
    /// Templates in this directory replace the embedded ones by name.
    #[serde(deserialize_with = "directory")]
    pub template_dir: Option<PathBuf>,
    /// Reverse-proxy hops in front of the server.
    pub trusted_proxy_count: usize,
    /// Legacy switch: one proxy.
    pub behind_reverse_proxy: bool,
    /// CIDR mode: the proxies' networks.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: IpSet,
    /// Idle session timeout (at most a day).
    pub session_idle_minutes: Bounded<1, 1440>,
    /// Absolute session timeout (at most 30 days).
    pub session_absolute_hours: Bounded<1, 720>,
    /// How long a password-only login waits for its second factor (at most an hour).
    pub pending_login_minutes: Bounded<1, 60>,
    /// Reset and invitation link lifetime (at most 30 days).
    pub reset_link_days: Bounded<1, 30>,
    /// A trusted device unused this long stops working (at most 400 days).
    pub trusted_device_days: Bounded<1, 400>,
    /// Days after which a trusted device stops working however often it is used.
    pub trusted_device_max_age_days: Bounded<1, 3650>,
    /// Minutes between background purges of expired sessions, quiet lockout counters and
    /// stale enrolments.
    pub purge_interval_minutes: Bounded<1, 1440>,
    /// `[password_hashing]`: the hash for new passwords.
    #[serde(deserialize_with = "password_hashing")]
    pub password_hashing: PasswordHashing,
    /// Lifts the hash cost floor: for benchmarks and tests only (`serve` warns).
    pub allow_weak_password_hashing: bool,
    /// `[lockout]`.
    pub lockout: LockoutConfig,
    /// `[appearance.<modal>]`: per-modal appearance.
    #[serde(deserialize_with = "appearance")]
    pub appearance: HashMap<String, ModalAppearance>,
    /// `[webauthn]`: passkeys (off unless `webauthn.origin` is set).
    pub webauthn: webauthn::WebAuthnConfig,
    /// The public base URL emailed links point at (`https://app.example.com`); in plain-http
    /// development `http://localhost:<port>` when unset. No reset is offered without one.
    pub public_url: Option<String>,
    /// `[mail]`: where notifications go, and the outbox's retries.
    pub mail: mail::MailSection,
}

/// `[lockout]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failures before a username is locked.
    pub user_failed_attempts: Bounded<1, { u32::MAX }>,
    /// Failures before an address is locked.
    pub ip_failed_attempts: Bounded<1, { u32::MAX }>,
    /// Wrong second-factor codes before an account's second factor is locked.
    pub factor_failed_attempts: Bounded<1, 100>,
    /// Consecutive failed checks after which an account stays locked until its owner
    /// succeeds from a known address or device, or an administrator clears it.
    pub max_consecutive_failures: Bounded<1, 100_000>,
    /// Days an address that signed in successfully lets its owner through a lock.
    pub known_client_days: Bounded<1, 400>,
    /// The first lock's length (at most a day).
    pub lockout_seconds: Bounded<1, 86_400>,
    /// The longest lock (at most 30 days).
    pub max_lockout_seconds: Bounded<1, 2_592_000>,
    /// Addresses and networks never locked by the IP counter.
    #[serde(deserialize_with = "networks")]
    pub excluded_ips: IpSet,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://modal2fa.sqlite?mode=rwc".into(),
            database_max_connections: Bounded::new(8),
            database_acquire_timeout_seconds: Bounded::new(3),
            secret: None,
            secret_file: PathBuf::from(".modal2fa/secret"),
            insecure_http_development: false,
            site_name: "modal2fa".into(),
            totp_issuer: "modal2fa".into(),
            demo: true,
            login_redirect: "/".into(),
            logout_redirect: "/".into(),
            template_dir: None,
            trusted_proxy_count: 0,
            behind_reverse_proxy: false,
            trusted_proxies: IpSet::default(),
            session_idle_minutes: Bounded::new(30),
            session_absolute_hours: Bounded::new(12),
            pending_login_minutes: Bounded::new(5),
            reset_link_days: Bounded::new(3),
            trusted_device_days: Bounded::new(90),
            trusted_device_max_age_days: Bounded::new(365),
            purge_interval_minutes: Bounded::new(15),
            password_hashing: PasswordHashing::default(),
            allow_weak_password_hashing: false,
            lockout: LockoutConfig::default(),
            appearance: HashMap::new(),
            webauthn: webauthn::WebAuthnConfig::default(),
            public_url: None,
            mail: mail::MailSection::default(),
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            user_failed_attempts: Bounded::new(10),
            factor_failed_attempts: Bounded::new(5),
            max_consecutive_failures: Bounded::new(100),
            known_client_days: Bounded::new(30),
            ip_failed_attempts: Bounded::new(20),
            lockout_seconds: Bounded::new(30),
            max_lockout_seconds: Bounded::new(86_400),
            excluded_ips: IpSet::default(),
        }
    }
}

/// A whole number from `MIN` to `MAX`, checked when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct Bounded<const MIN: u32, const MAX: u32>(u32);

impl<const MIN: u32, const MAX: u32> Bounded<MIN, MAX> {
    /// `value`, which must be within the bounds (for defaults; panics otherwise).
    pub const fn new(value: u32) -> Self {
        assert!(MIN <= value && value <= MAX, "default out of bounds");
        Self(value)
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl<const MIN: u32, const MAX: u32> TryFrom<u32> for Bounded<MIN, MAX> {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, String> {
        match value {
            v if (MIN..=MAX).contains(&v) => Ok(Self(v)),
            _ if MAX == u32::MAX => Err(format!("must be at least {MIN}")),
            _ => Err(format!("must be from {MIN} to {MAX}")),
        }
    }
}

/// The `secret` value; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A value read as `T`, then refused with `why` unless `ok`.
fn checked<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
    ok: impl FnOnce(&T) -> bool,
    why: &str,
) -> Result<T, D::Error> {
    let value = T::deserialize(d)?;
    if ok(&value) {
        Ok(value)
    } else {
        Err(D::Error::custom(why))
    }
}

fn database_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let schemes = [
        "sqlite:",
        "postgres://",
        "postgresql://",
        "mysql://",
        "mariadb://",
    ];
    let ok = |url: &String| schemes.iter().any(|s| url.starts_with(s));
    checked(d, ok, "must start with sqlite:, postgres:// or mysql://")
}

fn local_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let ok = |path: &String| path.starts_with('/') && !path.starts_with("//");
    checked(d, ok, "must be a local path starting with /")
}

fn directory<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    checked(d, |dir: &PathBuf| dir.is_dir(), "is not a directory").map(Some)
}

fn appearance<'de, D>(d: D) -> Result<HashMap<String, ModalAppearance>, D::Error>
where
    D: Deserializer<'de>,
{
    let map = HashMap::<String, ModalAppearance>::deserialize(d)?;
    let routes = modal2fa_actix::ROUTES.iter();
    for (name, a) in &map {
        if !routes
            .clone()
            .any(|(r, _)| r.strip_prefix("auth:") == Some(name))
        {
            return Err(D::Error::custom(format!("{name} is not a modal name")));
        }
        if !matches!(a.size.as_deref(), None | Some("sm" | "lg" | "xl" | "")) {
            return Err(D::Error::custom(format!(
                "{name}.size must be sm, lg or xl"
            )));
        }
    }
    Ok(map)
}

/// Addresses and networks: a TOML array, or from the environment a comma-separated list.
fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<IpSet, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "must be a list of addresses or networks")]
    enum List {
        Items(Vec<String>),
        Text(String),
    }
    let items = match List::deserialize(d)? {
        List::Items(items) => items,
        List::Text(text) => text
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    let parse = |item: &String| {
        item.parse::<IpNet>()
            .map_err(|e| D::Error::custom(format!("{item:?}: {e}")))
    };
    Ok(IpSet::new(
        items.iter().map(parse).collect::<Result<_, _>>()?,
    ))
}

/// `[password_hashing]` as written; [`password_hashing`] makes the core's scheme of it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashingFields {
    algorithm: Option<Algorithm>,
    memory_kib: Option<u32>,
    iterations: Option<u32>,
    parallelism: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Algorithm {
    Argon2id,
    Pbkdf2Sha256,
}

fn password_hashing<'de, D: Deserializer<'de>>(d: D) -> Result<PasswordHashing, D::Error> {
    let f = HashingFields::deserialize(d)?;
    let within = |key: &str, value: Option<u32>, default: u32, max: u32| match value {
        Some(v) if v == 0 || v > max => {
            Err(D::Error::custom(format!("{key} must be from 1 to {max}")))
        }
        v => Ok(v.unwrap_or(default)),
    };
    match f.algorithm.unwrap_or(Algorithm::Argon2id) {
        Algorithm::Argon2id => {
            let memory_kib = within("memory_kib", f.memory_kib, 19_456, 1_048_576)?;
            let parallelism = within("parallelism", f.parallelism, 1, 64)?;
            let iterations = within("iterations", f.iterations, 2, 100)?;
            match memory_kib >= 8 * parallelism {
                true => Ok(PasswordHashing::Argon2id {
                    memory_kib,
                    iterations,
                    parallelism,
                }),
                false => Err(D::Error::custom(
                    "memory_kib must be at least 8 × parallelism",
                )),
            }
        }
        Algorithm::Pbkdf2Sha256 if f.memory_kib.is_some() || f.parallelism.is_some() => {
            Err(D::Error::custom(
                "pbkdf2_sha256 takes only iterations (memory_kib and parallelism are argon2id's)",
            ))
        }
        // The core verifies at most 10 000 000 iterations.
        Algorithm::Pbkdf2Sha256 => Ok(PasswordHashing::Pbkdf2Sha256 {
            iterations: within("iterations", f.iterations, 1_000_000, 10_000_000)?,
        }),
    }
}

/// One layer of settings, named by its source (a file path or a variable name).
struct Layer(Metadata, Dict);

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.0.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.1.clone()))
    }
}

impl Layer {
    /// The TOML file. A syntax error gives the line and column but never the line, nor a
    /// message about a `secret` line (it may quote the value).
    fn file(path: &Path) -> anyhow::Result<Self> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e.span().map_or(0, |s| s.start);
            let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            let (line, column) = (text[..at].matches('\n').count() + 1, at - start + 1);
            let why = match text[start..].trim_start().starts_with("secret") {
                true => "invalid TOML (the value of secret is not shown)",
                false => e.message().trim_end(),
            };
            anyhow!("configuration error: {name}:{line}:{column}: {why}")
        })?;
        let dict = Value::serialize(table)?.into_dict().unwrap_or_default();
        Ok(Self(Metadata::named(name), dict))
    }

    /// An environment variable, if it is a setting: `MODAL2FA_A__B=v` sets `a.b` to "v".
    fn variable(name: String, value: String) -> Option<Self> {
        let key = name.strip_prefix("MODAL2FA_")?.to_ascii_lowercase();
        if key.starts_with("test_") || key == "config" || key == "log" {
            return None;
        }
        let nest = |value, part: &str| Value::from(Dict::from([(part.to_owned(), value)]));
        let value = key.rsplit("__").fold(Value::from(value), nest);
        Some(Self(
            Metadata::named(name),
            value.into_dict().unwrap_or_default(),
        ))
    }
}

/// `configuration error: KEY (SOURCE): WHY`.
fn problem(key: &str, source: Option<&Metadata>, why: &str) -> anyhow::Error {
    match source {
        Some(source) => anyhow!("configuration error: {key} ({}): {why}", source.name),
        None => anyhow!("configuration error: {key}: {why}"),
    }
}

/// figment's first error in our words, without the value of `secret`.
fn explain(e: figment::Error) -> anyhow::Error {
    let why = match &e.kind {
        Kind::UnknownField(_, _) if e.path[..] == ["secure_cookies"] => format!(
            "removed: cookies are always Secure and __Host- prefixed, wherever the server \
             listens; for plain-http development on a loopback address set \
             {INSECURE_HTTP_DEVELOPMENT} = true instead"
        ),
        Kind::UnknownField(_, expected) => format!("unknown key (expected {})", OneOf(expected)),
        Kind::UnknownVariant(v, expected) => {
            format!("unknown value `{v}` (expected {})", OneOf(expected))
        }
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected)
            if e.path[..] == ["secret"] =>
        {
            format!("expected {expected} (the value is not shown)")
        }
        kind => kind.to_string(),
    };
    problem(&e.path.join("."), e.metadata.as_ref(), &why)
}

/// Loads `file` (if any) and then the `MODAL2FA_*` variables in `env`, and validates.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Config> {
    let mut figment = Figment::new();
    if let Some(path) = file {
        figment = figment.merge(Layer::file(path)?);
    }
    for layer in env.into_iter().filter_map(|(k, v)| Layer::variable(k, v)) {
        figment = figment.merge(layer);
    }
    let config: Config = figment.extract_lossy().map_err(explain)?;
    config
        .validate()
        .map_err(|(key, why)| problem(key, figment.find_metadata(key), &why))?;
    Ok(config)
}

/// OWASP's Argon2id table: (iterations, least memory in KiB).
const ARGON2ID_FLOOR: [(u32, u32); 5] = [
    (1, 47_104),
    (2, 19_456),
    (3, 12_288),
    (4, 9_216),
    (5, 7_168),
];
/// OWASP's least PBKDF2-HMAC-SHA256 iteration count.
const PBKDF2_SHA256_FLOOR: u32 = 600_000;

/// The development setting's key, named by its errors and its warning.
pub const INSECURE_HTTP_DEVELOPMENT: &str = "insecure_http_development";

impl Config {
    /// The rules between keys; each key alone was checked when read.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.insecure_http_development && !self.listen.ip().to_canonical().is_loopback() {
            let why = format!(
                "is for plain-http development on a loopback address only, and listen is {}; \
                 serve over https (a TLS proxy in front is fine) and remove this setting",
                self.listen
            );
            return Err((INSECURE_HTTP_DEVELOPMENT, why));
        }
        if let Err(why) = self.webauthn.relying_party(&self.site_name) {
            return Err(("webauthn.origin", why));
        }
        self.validate_mail()?;
        let lockout = &self.lockout;
        if lockout.max_lockout_seconds.get() < lockout.lockout_seconds.get() {
            let why = "must not be below lockout.lockout_seconds".to_owned();
            return Err(("lockout.max_lockout_seconds", why));
        }
        let too_cheap = match self.password_hashing {
            _ if self.allow_weak_password_hashing => None,
            PasswordHashing::Argon2id {
                memory_kib,
                iterations,
                ..
            } => {
                let row = ARGON2ID_FLOOR.iter().rfind(|(t, _)| *t <= iterations);
                let least = row.map_or(u32::MAX, |(_, m)| *m);
                let table = ARGON2ID_FLOOR
                    .map(|(t, m)| format!("{m} with {t}"))
                    .join(", ");
                let why = format!(
                    "must be at least {least} with iterations = {iterations} (OWASP: {table} or more)"
                );
                (memory_kib < least).then_some(("password_hashing.memory_kib", why))
            }
            PasswordHashing::Pbkdf2Sha256 { iterations } => {
                let why = format!("must be at least {PBKDF2_SHA256_FLOOR} for pbkdf2_sha256");
                (iterations < PBKDF2_SHA256_FLOOR).then_some(("password_hashing.iterations", why))
            }
        };
        match too_cheap {
            Some((key, why)) => Err((
                key,
                format!(
                    "{why}; allow_weak_password_hashing = true lifts this floor, for benchmarks and tests only"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The database pool's size and timeout.
    pub fn pool_options(&self) -> PoolOptions {
        let seconds = |n: u32| std::time::Duration::from_secs(u64::from(n));
        PoolOptions {
            max_connections: self.database_max_connections.get(),
            acquire_timeout: seconds(self.database_acquire_timeout_seconds.get()),
            ..PoolOptions::default()
        }
    }

    /// Whether cookies are `Secure` and `__Host-` prefixed and HSTS is sent: always, but
    /// for plain-http development (`insecure_http_development`, loopback only).
    pub fn secure_cookies(&self) -> bool {
        !self.insecure_http_development
    }

    /// The core settings.
    pub fn core_settings(&self) -> Settings {
        let lockout = &self.lockout;
        let minutes = |n: u32| Duration::minutes(i64::from(n));
        let days = |n: u32| Duration::days(i64::from(n));
        Settings {
            lockout: LockoutSettings {
                user_failed_attempts: lockout.user_failed_attempts.get(),
                ip_failed_attempts: lockout.ip_failed_attempts.get(),
                factor_failed_attempts: lockout.factor_failed_attempts.get(),
                max_consecutive_failures: lockout.max_consecutive_failures.get(),
                known_client_days: lockout.known_client_days.get(),
                lockout_seconds: lockout.lockout_seconds.get(),
                max_lockout_seconds: lockout.max_lockout_seconds.get(),
                excluded: lockout.excluded_ips.clone(),
            },
            client_ip: ClientIpConfig {
                trusted_proxy_count: self.trusted_proxy_count,
                behind_reverse_proxy: self.behind_reverse_proxy,
                trusted_proxies: self.trusted_proxies.clone(),
            },
            totp_issuer: self.totp_issuer.clone(),
            machine: MachineConfig {
                pending_ttl: minutes(self.pending_login_minutes.get()),
                ..MachineConfig::default()
            },
            session: SessionSettings {
                idle_timeout: minutes(self.session_idle_minutes.get()),
                absolute_timeout: Duration::hours(i64::from(self.session_absolute_hours.get())),
            },
            link_lifetime: days(self.reset_link_days.get()),
            trusted_device_lifetime: days(self.trusted_device_days.get()),
            trusted_device_max_age: days(self.trusted_device_max_age_days.get()),
            password_hashing: self.password_hashing,
            relying_party: self.webauthn.relying_party(&self.site_name).ok().flatten(),
            outbox: self.mail.outbox_settings(),
            ..Settings::default()
        }
    }
}

pub mod mail;
pub mod webauthn;

#[cfg(test)]
mod tests;
