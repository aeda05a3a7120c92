//! What happened: the events fed to the machine, carrying verdicts gathered by the
//! services (never IO).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::lockout::{LockStatus, LockoutEntry, LockoutKey};
use crate::model::{AuthMethod, FactorKind, UserId};

/// What the trusted-device cookie turned out to be, for the user who just gave the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustedDeviceVerdict {
    /// No cookie, or not checked.
    Absent,
    /// Current key of an active device of this user; it has been rotated.
    Accepted,
    /// A superseded key: the device has been revoked (theft signal).
    Superseded,
    /// Unknown, malformed, or another user's.
    Rejected,
}

/// Facts about a correct password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPassword {
    /// Who.
    pub user_id: UserId,
    /// The account's lockout key (cleared on success; wrong codes count on it).
    pub user_key: LockoutKey,
    /// Policy `password_login_allowed`.
    pub password_login_allowed: bool,
    /// Policy `two_factor_enabled(request)`.
    pub two_factor_applies: bool,
    /// The trusted-device cookie.
    pub trusted_device: TrustedDeviceVerdict,
    /// The user has a confirmed second factor (consulted only when 2FA applies and no
    /// trusted device signed the user in; the services may skip the lookup otherwise).
    pub has_factor: bool,
    /// The user has a passkey the policy lets them use (the 2FA modal then starts the
    /// browser's passkey prompt at once).
    pub has_passkey: bool,
    /// Policy `user_2fa_optional`.
    pub factor_optional: bool,
}

/// The password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordVerdict {
    /// Wrong password, unknown or inactive user (indistinguishable on purpose).
    Invalid,
    /// Correct.
    Valid(ValidPassword),
}

/// A password submission. The attempt was counted on `user_key` and `ip_key` before the
/// password was checked; `lock` says whether that count was beyond a budget (then the
/// password was not checked at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordAttempt {
    /// The typed username's key (counted whether or not the user exists, so a lock never
    /// reveals whether an account exists); `None` if the username did not parse.
    pub user_key: Option<LockoutKey>,
    /// The client's key; `None` when the address is excluded.
    pub ip_key: Option<LockoutKey>,
    /// User and IP locks combined: locked when the attempt was beyond a budget.
    pub lock: LockStatus,
    /// The account's entry after counting this attempt (`None` when the username did
    /// not parse or nothing was counted).
    pub user_counted: Option<LockoutEntry>,
    /// The password check.
    pub verdict: PasswordVerdict,
}

/// A second-factor check. Like a password, a code attempt is counted before it is checked —
/// on the account's second-factor counter and the client address; `Locked` when that count
/// was beyond a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorVerdict {
    /// Verified.
    Accepted(FactorKind),
    /// Wrong.
    Rejected,
    /// A valid code that was already used.
    Replayed,
    /// The user is locked.
    Locked {
        /// Until when.
        until: OffsetDateTime,
    },
}

/// Why Microsoft sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MicrosoftRefusal {
    /// The token came from another tenant.
    WrongTenant,
    /// A B2B guest, and guests are not admitted.
    Guest,
    /// No local account matches.
    NoAccount,
    /// The account may not use Microsoft sign-in (policy or inactive).
    NotAllowed,
    /// The provider exchange or validation failed.
    Failed,
}

/// The Microsoft sign-in result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicrosoftVerdict {
    /// Refused.
    Refused(MicrosoftRefusal),
    /// A local account was matched.
    Accepted {
        /// Who.
        user_id: UserId,
        /// Their lockout key.
        lockout_key: LockoutKey,
        /// The token's MFA claims satisfy 2FA.
        satisfies_2fa: bool,
        /// Policy `two_factor_enabled(request)`.
        two_factor_applies: bool,
        /// The user has a confirmed local factor.
        has_factor: bool,
        /// Policy `user_2fa_optional`.
        factor_optional: bool,
    },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginEvent {
    /// Username and password submitted.
    Password(PasswordAttempt),
    /// A second factor was checked.
    SecondFactor(FactorVerdict),
    /// A first factor was set up during a pending login (setup path).
    FactorEnrolled(FactorKind),
    /// Returned from Microsoft.
    Microsoft(MicrosoftVerdict),
    /// A passkey alone was presented (passwordless sign-in).
    Passwordless(PasswordlessVerdict),
    /// A signed-in user wants factor management, which needs one of these methods.
    BeginStepUp {
        /// Policy `factor_management_methods`.
        allowed_methods: Vec<AuthMethod>,
        /// The user's lockout key (wrong codes count on it).
        lockout_key: LockoutKey,
    },
    /// The 2FA modal was closed.
    Cancel,
    /// Sign out.
    Logout,
}

/// What a passwordless sign-in's assertion came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordlessVerdict {
    /// A discoverable passkey registered with user verification verified the user again,
    /// and names this active user, whom the policy lets sign in so.
    Accepted {
        /// Who.
        user_id: UserId,
        /// The user's lockout key (a sign-in settles it, as any sign-in does).
        lockout_key: LockoutKey,
    },
    /// The client address is locked; the assertion was not checked.
    Locked {
        /// When the lock ends.
        until: OffsetDateTime,
    },
    /// Anything else: the assertion did not verify, named no credential or a touch-only
    /// one, lacked user verification, or the user may not sign in without a password.
    Rejected,
}
