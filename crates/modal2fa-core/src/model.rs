//! The domain model: users, factors, trusted devices, lockout entries, sessions, and the
//! newtypes that parse untrusted input.
//!
//! Usernames and email addresses compare in one canonical form: see [`names`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use crate::parse::{ParseError, Problem};

pub mod names;
pub use names::{Email, NameRules, Username, canonical_form};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A user's id, assigned by the [`UserStore`](crate::ports::UserStore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for UserId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<i64>()
            .map(UserId)
            .map_err(|_| ParseError::new("user id", Problem::NotWholeNumber))
    }
}

/// A one-time code as typed: 6 to 8 digits; spaces and dashes are ignored.
///
/// `Debug` does not print the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    /// Parses untrusted input.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let digits: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if digits.is_empty() {
            return Err(ParseError::new("code", Problem::Required));
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ParseError::new("code", Problem::DigitsOnly));
        }
        if !(6..=8).contains(&digits.len()) {
            return Err(ParseError::new(
                "code",
                Problem::DigitCount { min: 6, max: 8 },
            ));
        }
        Ok(Self(digits))
    }

    /// The digits.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode([redacted])")
    }
}

/// How a session was authenticated (shown to admins; guards and factor management decide by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthMethod {
    /// Password only (2FA did not apply, or the user has none and it is optional).
    #[serde(rename = "password")]
    Password,
    /// Password plus a trusted-device cookie.
    #[serde(rename = "cookie")]
    Cookie,
    /// Password plus a second factor.
    #[serde(rename = "2fa")]
    TwoFactor,
    /// Sign in with Microsoft.
    #[serde(rename = "microsoft")]
    Microsoft,
    /// A passkey alone, with user verification (passwordless).
    #[serde(rename = "passkey")]
    Passkey,
}

impl AuthMethod {
    /// Every method.
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::Password,
        AuthMethod::Cookie,
        AuthMethod::TwoFactor,
        AuthMethod::Microsoft,
        AuthMethod::Passkey,
    ];

    /// The stable name stored in sessions and shown to admins.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Cookie => "cookie",
            Self::TwoFactor => "2fa",
            Self::Microsoft => "microsoft",
            Self::Passkey => "passkey",
        }
    }
}

impl FromStr for AuthMethod {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or(ParseError::new(
                "method",
                Problem::UnknownName {
                    expected: "password, cookie, 2fa, microsoft or passkey",
                },
            ))
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind of second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// An authenticator app (RFC 6238).
    Totp,
    /// A passkey or security key.
    WebAuthn,
    /// A single-use recovery code.
    RecoveryCode,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Store-assigned id.
    pub id: UserId,
    /// Login name.
    pub username: Username,
    /// Address for invitations, resets and security notifications.
    pub email: Option<Email>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// PHC string (Argon2id) or Django `pbkdf2_sha256$…`; `None` until a password is set.
    pub password_hash: Option<String>,
    /// Inactive users cannot sign in.
    pub is_active: bool,
    /// Superuser flag; the default admin permission.
    pub is_superuser: bool,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// The last completed sign-in.
    pub last_login: Option<OffsetDateTime>,
    /// The last time the password was set.
    pub password_changed_at: Option<OffsetDateTime>,
}

impl User {
    /// "First Last", or the username when both are empty.
    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.first_name.trim(), self.last_name.trim());
        let full = full.trim();
        if full.is_empty() {
            self.username.to_string()
        } else {
            full.to_owned()
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Login name (unique in its [canonical form](Username::canonical)).
    pub username: Username,
    /// Email address.
    pub email: Option<Email>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Hash of the initial password, if any.
    pub password_hash: Option<String>,
    /// Superuser flag (a store with Django's columns sets `is_staff` from it too).
    pub is_superuser: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When the initial password was set, if any.
    pub password_changed_at: Option<OffsetDateTime>,
}

/// How many second factors of each kind a user has (read in one round trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FactorCounts {
    /// Confirmed authenticator apps (unconfirmed enrolments do not count).
    pub confirmed_totp: u64,
    /// Registered WebAuthn credentials.
    pub webauthn: u64,
}

/// An authenticator-app enrolment. The secret is AEAD ciphertext bound to the user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpDevice {
    /// Store-assigned id.
    pub id: i64,
    /// Owner.
    pub user_id: UserId,
    /// Encrypted secret (see [`crate::crypto::SecretBox`]).
    pub encrypted_secret: Vec<u8>,
    /// Only a confirmed device counts as a factor.
    pub confirmed: bool,
    /// Highest time step ever accepted; codes at or below it are refused.
    pub last_used_step: Option<i64>,
    /// Enrolment time.
    pub created_at: OffsetDateTime,
}

/// A WebAuthn credential. `credential` is the verifier library's serialized form, opaque
/// to the core and the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuthnCredential {
    /// Store-assigned id.
    pub id: i64,
    /// Owner.
    pub user_id: UserId,
    /// The user's name for it.
    pub name: String,
    /// The authenticator's credential id (unique across all users).
    pub credential_id: Vec<u8>,
    /// Serialized credential (public key and state), opaque.
    pub credential: String,
    /// Signature counter last seen.
    pub sign_count: u32,
    /// Transports reported at registration (`usb`, `internal`, …).
    pub transports: Vec<String>,
    /// Backup eligible flag.
    pub backup_eligible: bool,
    /// Backup state flag.
    pub backup_state: bool,
    /// Registration time.
    pub created_at: OffsetDateTime,
    /// Last successful use.
    pub last_used_at: Option<OffsetDateTime>,
}

/// A WebAuthn credential to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebAuthnCredential {
    /// Owner.
    pub user_id: UserId,
    /// The user's name for it.
    pub name: String,
    /// Credential id.
    pub credential_id: Vec<u8>,
    /// Serialized credential.
    pub credential: String,
    /// Initial counter.
    pub sign_count: u32,
    /// Transports.
    pub transports: Vec<String>,
    /// Backup eligible flag.
    pub backup_eligible: bool,
    /// Backup state flag.
    pub backup_state: bool,
    /// Registration time.
    pub created_at: OffsetDateTime,
}

/// A remembered browser: the cookie holds `id:key`; only SHA-256 of the key is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    /// Random public id (the part before `:` in the cookie).
    pub id: String,
    /// Owner.
    pub user_id: UserId,
    /// The user's name for this device.
    pub name: String,
    /// SHA-256 of the current key.
    pub key_hash: Vec<u8>,
    /// SHA-256 of the key it replaced, to recognise a superseded (copied) cookie.
    pub previous_key_hash: Option<Vec<u8>>,
    /// When it was trusted.
    pub created_at: OffsetDateTime,
    /// Last sign-in with it.
    pub last_used_at: OffsetDateTime,
    /// IP of the last use.
    pub last_ip: Option<IpAddr>,
    /// Browser of the last use.
    pub user_agent: String,
}

/// A server-side session. The id itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// SHA-256 of the session id, hex.
    pub id_hash: String,
    /// Signed-in user, if any.
    pub user_id: Option<UserId>,
    /// How the user signed in.
    pub method: Option<AuthMethod>,
    /// The passkey (its store id) the session was established with, if any: removing
    /// that passkey ends the session.
    pub passkey_id: Option<i64>,
    /// Client address at creation.
    pub ip: Option<IpAddr>,
    /// Browser at creation.
    pub user_agent: String,
    /// Creation time (absolute timeout counts from here).
    pub created_at: OffsetDateTime,
    /// Last request (idle timeout counts from here).
    pub last_seen_at: OffsetDateTime,
    /// When the row may be purged.
    pub expires_at: OffsetDateTime,
    /// Serialized session state (JSON).
    pub data: String,
}

/// One page of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Zero-based offset.
    pub offset: u64,
    /// Maximum rows.
    pub limit: u64,
}

impl Page {
    /// The first `limit` rows.
    pub const fn first(limit: u64) -> Self {
        Self { offset: 0, limit }
    }
}

/// What happened, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// Password refused.
    LoginFailed,
    /// Refused because the user or IP is locked.
    LoginLocked,
    /// Correct password, but password login is not allowed for the user.
    PasswordLoginRefused,
    /// Password accepted; second factor pending.
    PasswordAccepted,
    /// Signed in (any method).
    LoginSucceeded,
    /// Second factor refused.
    SecondFactorFailed,
    /// A valid but already used code was replayed.
    CodeReplayed,
    /// Too many wrong codes; pending login destroyed.
    SecondFactorAbandoned,
    /// Pending login expired.
    PendingExpired,
    /// Pending login cancelled.
    PendingCancelled,
    /// A superseded trusted-device cookie was presented; the device was revoked.
    TrustedDeviceTheft,
    /// A step-up was started.
    StepUpStarted,
    /// Signed out.
    Logout,
    /// A factor was added.
    FactorAdded,
    /// A factor was removed.
    FactorRemoved,
    /// A second factor was renamed (its new name in the detail).
    FactorRenamed,
    /// A device was trusted.
    TrustedDeviceAdded,
    /// A trusted device was removed.
    TrustedDeviceRemoved,
    /// Password changed or set.
    PasswordChanged,
    /// A lockout was cleared by an admin.
    LockoutCleared,
    /// A session was ended by an admin.
    SessionEnded,
    /// An admin reset a user's 2FA.
    TwoFactorReset,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// A new set of recovery codes was generated (the old set no longer works).
    RecoveryCodesGenerated,
    /// The password was right, but the second step of that sign-in was not completed
    /// within `Settings::second_factor_alert_after` (someone may hold the password).
    SecondFactorNotCompleted,
    /// Failed sign-ins locked the account for a while (someone may be guessing its
    /// password).
    AccountLocked,
    /// Microsoft sign-in refused.
    MicrosoftRefused,
    /// An administrator created or invited a user.
    UserInvited,
}

/// An audit event. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    pub at: OffsetDateTime,
    /// What.
    pub kind: AuditKind,
    /// Whose account, when known.
    pub user_id: Option<UserId>,
    /// The username as typed, when relevant (never a password).
    pub username: Option<String>,
    /// Client address.
    pub ip: Option<IpAddr>,
    /// Browser.
    pub user_agent: Option<String>,
    /// Factor or method involved.
    pub detail: Option<String>,
}

/// A change to an account's security that the owner is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityEventKind {
    /// A passkey was added.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
    /// An authenticator app was added or changed.
    TotpAdded,
    /// The authenticator app was removed.
    TotpRemoved,
    /// A device was trusted.
    TrustedDeviceAdded,
    /// A trusted device was removed.
    TrustedDeviceRemoved,
    /// All second factors were removed by the user.
    TwoFactorRemoved,
    /// An administrator reset the user's second factors.
    TwoFactorResetByAdmin,
    /// The password changed.
    PasswordChanged,
    /// A valid code was replayed (possible theft).
    CodeReplayed,
    /// The password was right, but wrong second-factor codes locked the second factor
    /// (someone may hold the password).
    SecondFactorFailures,
    /// A superseded trusted-device cookie was presented (possible theft).
    TrustedDeviceCookieReused,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// A new set of recovery codes was generated (the old set no longer works).
    RecoveryCodesGenerated,
    /// The password was right, but the second step of that sign-in was not completed
    /// within `Settings::second_factor_alert_after` (someone may hold the password).
    SecondFactorNotCompleted,
    /// Failed sign-ins locked the account for a while (someone may be guessing its
    /// password).
    AccountLocked,
    /// A passkey answered with a signature counter at or below the one stored: the
    /// authenticator may have been cloned. The sign-in was refused.
    PasskeyCounterRegressed,
}

/// Where a request came from, as the web layer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// Resolved client address (see [`crate::client_ip`]).
    pub ip: IpAddr,
    /// `User-Agent`, truncated to 512 characters.
    pub user_agent: String,
    /// Request path (for policy hooks that vary by URL).
    pub path: String,
}

impl RequestContext {
    /// Builds a context, truncating the user agent.
    pub fn new(ip: IpAddr, user_agent: &str, path: &str) -> Self {
        Self {
            ip,
            user_agent: user_agent.chars().take(512).collect(),
            path: path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
