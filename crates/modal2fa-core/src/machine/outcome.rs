//! What a step decides: the new state, the effects the services must apply, and what
//! to tell the user (a refusal is always typed; the web layer words it).

use time::OffsetDateTime;

use crate::lockout::LockoutKey;
use crate::model::{AuditKind, AuthMethod, SecurityEventKind, UserId};
use crate::parse::ParseError;
use crate::tokens::LinkError;

use super::{LoginState, MicrosoftRefusal};

/// Something the service must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Give the session a new id (privilege changed).
    RenewSession,
    /// Delete the session.
    EndSession,
    /// Count a failure on this key (for attempts not counted before their check).
    RecordFailure(LockoutKey),
    /// The attempt counted on this key before its check was no failure: take it back.
    Settle(LockoutKey),
    /// Remove this key's counter.
    ClearFailures(LockoutKey),
    /// Set the user's last login (which also kills outstanding reset links).
    RecordLogin(UserId),
    /// Write an audit event.
    Audit(AuditKind),
    /// Tell the account owner.
    Notify(SecurityEventKind),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Wrong username or password.
    InvalidCredentials,
    /// Locked.
    Locked {
        /// Until when.
        until: OffsetDateTime,
    },
    /// Correct password, but this user must use Microsoft sign-in.
    PasswordLoginNotAllowed,
    /// Wrong code.
    InvalidCode,
    /// A code that was already used.
    CodeReused,
    /// Too many wrong codes; start again with the password.
    TooManyAttempts,
    /// The pending login or step-up expired.
    Expired,
    /// The authenticator-app set-up page expired (or its form was altered): scan the
    /// new code.
    EnrolmentExpired,
    /// No login is waiting for a second factor.
    NoPendingLogin,
    /// Not allowed in this state.
    NotAllowed,
    /// Microsoft sign-in refused.
    Microsoft(MicrosoftRefusal),
    /// Input did not parse (names the field).
    Invalid(ParseError),
    /// A reset or invitation link was refused.
    Link(LinkError),
    /// The authenticator's answer to a passkey ceremony did not verify (wrong origin or
    /// RP, another challenge, a credential not registered to this account, a cloned
    /// authenticator, no user verification where it is required, …).
    PasskeyRejected,
    /// The passkey ceremony was not begun in this session, belongs to another account or
    /// took longer than its timeout: start it again.
    CeremonyExpired,
}

/// What to tell the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Signed in.
    SignedIn {
        /// How.
        method: AuthMethod,
    },
    /// Show the 2FA modal (the setup choice when `setup`).
    SecondFactorRequired {
        /// The user has no factor and must set one up.
        setup: bool,
    },
    /// The session already satisfies factor management.
    AlreadySatisfied,
    /// The 2FA modal was closed.
    Cancelled,
    /// Signed out.
    LoggedOut,
    /// Nothing to do.
    Unchanged,
    /// Refused.
    Refused(Refusal),
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub state: LoginState,
    /// Effects, in order.
    pub effects: Vec<Effect>,
    /// What to tell the user.
    pub outcome: Outcome,
}

impl Transition {
    pub(super) fn stay(state: &LoginState, outcome: Outcome, effects: Vec<Effect>) -> Self {
        Self {
            state: state.clone(),
            effects,
            outcome,
        }
    }
}
