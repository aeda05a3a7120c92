//! Where a session stands: the states the machine moves between, kept in the session.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::lockout::{LockoutEntry, LockoutKey};
use crate::model::{AuthMethod, UserId};

/// Timing and limits of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineConfig {
    /// How long a password-only (pending) login waits for its second factor (default 5 min).
    pub pending_ttl: Duration,
    /// Wrong codes allowed in one pending login or step-up before it is destroyed (default 5).
    pub max_code_failures: u8,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            pending_ttl: Duration::minutes(5),
            max_code_failures: 5,
        }
    }
}

/// Where a browser session stands. Kept in the session; serializable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoginState {
    /// Nobody signed in.
    #[default]
    Anonymous,
    /// The password was right; waiting for the second factor.
    PendingSecondFactor(Pending),
    /// Signed in.
    SignedIn(SignedIn),
    /// Signed in, and proving a second factor to reach factor management.
    StepUp(StepUp),
}

/// A parked login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Who.
    pub user_id: UserId,
    /// The user's lockout key (wrong codes count on it).
    pub lockout_key: LockoutKey,
    /// When the password was accepted.
    pub since: OffsetDateTime,
    /// The user has no factor yet and must set one up.
    pub setup_required: bool,
    /// Wrong codes so far.
    pub failed_codes: u8,
    /// The account's password-counter entry as the password step left it: the right
    /// password stays counted until the second factor is proven (a sign-in clears it).
    #[serde(default)]
    pub counted: Option<LockoutEntry>,
    /// The user has a passkey to offer (the 2FA modal starts its prompt at once).
    #[serde(default)]
    pub passkey: bool,
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    /// Who.
    pub user_id: UserId,
    /// How.
    pub method: AuthMethod,
    /// When.
    pub at: OffsetDateTime,
    /// "Trust this device?" may still be answered: set only by a sign-in that has just
    /// passed a second factor (never by a step-up), taken by the first answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trust_offer: bool,
    /// The passkey (its store id) that established the session: a passkey as the second
    /// factor, the first factor of a set-up login, or a passwordless sign-in. Removing
    /// that passkey ends the session. A step-up keeps what established the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<i64>,
}

/// A step-up in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUp {
    /// The session being stepped up (restored on cancel, expiry or too many failures).
    pub signed_in: SignedIn,
    /// The user's lockout key.
    pub lockout_key: LockoutKey,
    /// When the step-up started.
    pub since: OffsetDateTime,
    /// Wrong codes so far.
    pub failed_codes: u8,
    /// The user has a passkey to offer (the 2FA modal starts its prompt at once).
    #[serde(default)]
    pub passkey: bool,
}

impl LoginState {
    /// The same state with any "trust this device?" offer taken (answered or declined).
    pub fn without_trust_offer(&self) -> LoginState {
        match self {
            LoginState::SignedIn(s) => LoginState::SignedIn(SignedIn {
                trust_offer: false,
                ..s.clone()
            }),
            other => other.clone(),
        }
    }

    /// The same state, recording that `passkey` (its store id) established the session
    /// when it is a signed-in one; any other state as it is.
    pub fn established_with(self, passkey: i64) -> LoginState {
        match self {
            LoginState::SignedIn(s) => LoginState::SignedIn(SignedIn {
                passkey: Some(passkey),
                ..s
            }),
            other => other,
        }
    }

    /// The signed-in session, if any (a pending login is not signed in).
    pub fn signed_in(&self) -> Option<&SignedIn> {
        match self {
            Self::SignedIn(s) => Some(s),
            Self::StepUp(s) => Some(&s.signed_in),
            _ => None,
        }
    }

    /// The user this session concerns, signed in or pending.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::Anonymous => None,
            Self::PendingSecondFactor(p) => Some(p.user_id),
            Self::SignedIn(s) => Some(s.user_id),
            Self::StepUp(s) => Some(s.signed_in.user_id),
        }
    }
}
