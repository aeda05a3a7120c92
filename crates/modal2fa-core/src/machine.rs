//! The login state machine (SPEC §1): synchronous and IO-free.
//!
//! `step(state, event, now, config) -> Transition { state, effects, outcome }`. Services
//! gather the facts (lock status, password verdict, trusted-device verdict, factor
//! verdict) through ports, feed them in as an event, and apply the effects. Because the
//! machine decides, the rules hold whatever adapter or web framework drives it: a lock
//! refuses even a correct password, a pending login expires, a trusted device never
//! satisfies a step-up.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::lockout::{LockStatus, LockoutKey};
use crate::model::{AuditKind, AuthMethod, FactorKind, SecurityEventKind, UserId};
use crate::parse::ParseError;
use crate::tokens::LinkError;

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
}

impl LoginState {
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
    /// The user has a confirmed second factor.
    pub has_factor: bool,
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

/// A password submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordAttempt {
    /// The typed username's key (counted whether or not the user exists, so a lock never
    /// reveals whether an account exists); `None` if the username did not parse.
    pub user_key: Option<LockoutKey>,
    /// The client's key; `None` when the address is excluded.
    pub ip_key: Option<LockoutKey>,
    /// User and IP locks combined, checked before the password.
    pub lock: LockStatus,
    /// The password check.
    pub verdict: PasswordVerdict,
}

/// A second-factor check.
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

/// Something the service must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Give the session a new id (privilege changed).
    RenewSession,
    /// Delete the session.
    EndSession,
    /// Count a failure on this key.
    RecordFailure(LockoutKey),
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
    fn stay(state: &LoginState, outcome: Outcome, effects: Vec<Effect>) -> Self {
        Self {
            state: state.clone(),
            effects,
            outcome,
        }
    }
}

/// Advances the machine.
pub fn step(
    state: &LoginState,
    event: LoginEvent,
    now: OffsetDateTime,
    config: &MachineConfig,
) -> Transition {
    match event {
        LoginEvent::Password(attempt) => password(state, attempt, now),
        LoginEvent::SecondFactor(verdict) => second_factor(state, verdict, now, config),
        LoginEvent::FactorEnrolled(kind) => match state {
            LoginState::PendingSecondFactor(p) if p.setup_required => {
                second_factor(state, FactorVerdict::Accepted(kind), now, config)
            }
            LoginState::PendingSecondFactor(_) => {
                Transition::stay(state, Outcome::Refused(Refusal::NotAllowed), vec![])
            }
            _ => Transition::stay(state, Outcome::Refused(Refusal::NoPendingLogin), vec![]),
        },
        LoginEvent::Microsoft(verdict) => microsoft(state, verdict, now),
        LoginEvent::BeginStepUp {
            allowed_methods,
            lockout_key,
        } => match state {
            LoginState::SignedIn(s) if allowed_methods.contains(&s.method) => {
                Transition::stay(state, Outcome::AlreadySatisfied, vec![])
            }
            LoginState::SignedIn(s) => Transition {
                state: LoginState::StepUp(StepUp {
                    signed_in: s.clone(),
                    lockout_key,
                    since: now,
                    failed_codes: 0,
                }),
                effects: vec![Effect::Audit(AuditKind::StepUpStarted)],
                outcome: Outcome::SecondFactorRequired { setup: false },
            },
            // Restarting a step-up refreshes its clock but keeps its failure count.
            LoginState::StepUp(s) => Transition {
                state: LoginState::StepUp(StepUp {
                    since: now,
                    ..s.clone()
                }),
                effects: vec![],
                outcome: Outcome::SecondFactorRequired { setup: false },
            },
            _ => Transition::stay(state, Outcome::Refused(Refusal::NotAllowed), vec![]),
        },
        LoginEvent::Cancel => match state {
            LoginState::PendingSecondFactor(_) => Transition {
                state: LoginState::Anonymous,
                effects: vec![
                    Effect::Audit(AuditKind::PendingCancelled),
                    Effect::EndSession,
                ],
                outcome: Outcome::Cancelled,
            },
            LoginState::StepUp(s) => Transition {
                state: LoginState::SignedIn(s.signed_in.clone()),
                effects: vec![],
                outcome: Outcome::Cancelled,
            },
            _ => Transition::stay(state, Outcome::Unchanged, vec![]),
        },
        LoginEvent::Logout => {
            let mut effects = Vec::new();
            if state.signed_in().is_some() {
                effects.push(Effect::Audit(AuditKind::Logout));
            }
            effects.push(Effect::EndSession);
            Transition {
                state: LoginState::Anonymous,
                effects,
                outcome: Outcome::LoggedOut,
            }
        }
    }
}

/// A completed sign-in: a new session id, the account's counter cleared, the last login
/// recorded (which kills outstanding reset links).
fn sign_in(
    user_id: UserId,
    method: AuthMethod,
    key: LockoutKey,
    now: OffsetDateTime,
) -> Transition {
    signed_in_as(
        user_id,
        method,
        now,
        vec![
            Effect::RenewSession,
            Effect::ClearFailures(key),
            Effect::RecordLogin(user_id),
            Effect::Audit(AuditKind::LoginSucceeded),
        ],
    )
}

/// A step-up proved: a new session id and the counter cleared, but no new sign-in is
/// recorded (the user was signed in all along).
fn stepped_up(user_id: UserId, key: LockoutKey, now: OffsetDateTime) -> Transition {
    signed_in_as(
        user_id,
        AuthMethod::TwoFactor,
        now,
        vec![
            Effect::RenewSession,
            Effect::ClearFailures(key),
            Effect::Audit(AuditKind::LoginSucceeded),
        ],
    )
}

fn signed_in_as(
    user_id: UserId,
    method: AuthMethod,
    now: OffsetDateTime,
    effects: Vec<Effect>,
) -> Transition {
    Transition {
        state: LoginState::SignedIn(SignedIn {
            user_id,
            method,
            at: now,
        }),
        effects,
        outcome: Outcome::SignedIn { method },
    }
}

fn park(
    user_id: UserId,
    lockout_key: LockoutKey,
    setup: bool,
    now: OffsetDateTime,
    mut effects: Vec<Effect>,
) -> Transition {
    effects.push(Effect::RenewSession);
    effects.push(Effect::Audit(AuditKind::PasswordAccepted));
    Transition {
        state: LoginState::PendingSecondFactor(Pending {
            user_id,
            lockout_key,
            since: now,
            setup_required: setup,
            failed_codes: 0,
        }),
        effects,
        outcome: Outcome::SecondFactorRequired { setup },
    }
}

fn password(state: &LoginState, attempt: PasswordAttempt, now: OffsetDateTime) -> Transition {
    // SPEC §1.2: the lock is checked before the password, whatever the password was.
    if let LockStatus::Locked { until } = attempt.lock {
        return Transition::stay(
            state,
            Outcome::Refused(Refusal::Locked { until }),
            vec![Effect::Audit(AuditKind::LoginLocked)],
        );
    }
    let valid = match attempt.verdict {
        PasswordVerdict::Invalid => {
            let mut effects: Vec<Effect> = [attempt.user_key, attempt.ip_key]
                .into_iter()
                .flatten()
                .map(Effect::RecordFailure)
                .collect();
            effects.push(Effect::Audit(AuditKind::LoginFailed));
            return Transition::stay(
                state,
                Outcome::Refused(Refusal::InvalidCredentials),
                effects,
            );
        }
        PasswordVerdict::Valid(v) => v,
    };
    let user_key = valid.user_key;
    if !valid.password_login_allowed {
        return Transition::stay(
            state,
            Outcome::Refused(Refusal::PasswordLoginNotAllowed),
            vec![Effect::Audit(AuditKind::PasswordLoginRefused)],
        );
    }
    if !valid.two_factor_applies {
        return sign_in(valid.user_id, AuthMethod::Password, user_key, now);
    }
    let mut effects = Vec::new();
    match valid.trusted_device {
        TrustedDeviceVerdict::Accepted => {
            return sign_in(valid.user_id, AuthMethod::Cookie, user_key, now);
        }
        TrustedDeviceVerdict::Superseded => {
            effects.push(Effect::Audit(AuditKind::TrustedDeviceTheft));
            effects.push(Effect::Notify(SecurityEventKind::TrustedDeviceCookieReused));
        }
        TrustedDeviceVerdict::Absent | TrustedDeviceVerdict::Rejected => {}
    }
    if !valid.has_factor && valid.factor_optional {
        let mut t = sign_in(valid.user_id, AuthMethod::Password, user_key, now);
        effects.append(&mut t.effects);
        t.effects = effects;
        return t;
    }
    park(valid.user_id, user_key, !valid.has_factor, now, effects)
}

fn second_factor(
    state: &LoginState,
    verdict: FactorVerdict,
    now: OffsetDateTime,
    config: &MachineConfig,
) -> Transition {
    match state {
        LoginState::PendingSecondFactor(p) => {
            if now - p.since > config.pending_ttl {
                return Transition {
                    state: LoginState::Anonymous,
                    effects: vec![Effect::Audit(AuditKind::PendingExpired), Effect::EndSession],
                    outcome: Outcome::Refused(Refusal::Expired),
                };
            }
            code_attempt(
                state,
                verdict,
                p.failed_codes,
                &p.lockout_key,
                config,
                CodeTarget {
                    accepted: || {
                        sign_in(p.user_id, AuthMethod::TwoFactor, p.lockout_key.clone(), now)
                    },
                    counted: |failed_codes| {
                        LoginState::PendingSecondFactor(Pending {
                            failed_codes,
                            ..p.clone()
                        })
                    },
                    abandoned: LoginState::Anonymous,
                    end_session: true,
                },
            )
        }
        LoginState::StepUp(s) => {
            let back = LoginState::SignedIn(s.signed_in.clone());
            if now - s.since > config.pending_ttl {
                return Transition {
                    state: back,
                    effects: vec![],
                    outcome: Outcome::Refused(Refusal::Expired),
                };
            }
            code_attempt(
                state,
                verdict,
                s.failed_codes,
                &s.lockout_key,
                config,
                CodeTarget {
                    accepted: || stepped_up(s.signed_in.user_id, s.lockout_key.clone(), now),
                    counted: |failed_codes| {
                        LoginState::StepUp(StepUp {
                            failed_codes,
                            ..s.clone()
                        })
                    },
                    abandoned: back.clone(),
                    end_session: false,
                },
            )
        }
        _ => Transition::stay(state, Outcome::Refused(Refusal::NoPendingLogin), vec![]),
    }
}

/// Where a code attempt leads, for a pending login or a step-up.
struct CodeTarget<A, C> {
    /// The transition when the code was right.
    accepted: A,
    /// The state with this many wrong codes.
    counted: C,
    /// The state after too many wrong codes.
    abandoned: LoginState,
    /// Whether too many wrong codes end the session (a pending login) or only the
    /// attempt (a step-up returns to the signed-in session).
    end_session: bool,
}

/// One code against a pending login or a step-up: accepted, refused by a lock, or wrong
/// (counted on the user's key; the attempt is abandoned at the limit).
fn code_attempt<A, C>(
    state: &LoginState,
    verdict: FactorVerdict,
    failed_so_far: u8,
    key: &LockoutKey,
    config: &MachineConfig,
    target: CodeTarget<A, C>,
) -> Transition
where
    A: FnOnce() -> Transition,
    C: FnOnce(u8) -> LoginState,
{
    match verdict {
        FactorVerdict::Accepted(_) => (target.accepted)(),
        FactorVerdict::Locked { until } => Transition::stay(
            state,
            Outcome::Refused(Refusal::Locked { until }),
            vec![Effect::Audit(AuditKind::LoginLocked)],
        ),
        FactorVerdict::Rejected | FactorVerdict::Replayed => {
            let failed = failed_so_far.saturating_add(1);
            let mut effects = wrong_code_effects(key, verdict);
            if failed >= config.max_code_failures {
                effects.push(Effect::Audit(AuditKind::SecondFactorAbandoned));
                if target.end_session {
                    effects.push(Effect::EndSession);
                }
                return Transition {
                    state: target.abandoned,
                    effects,
                    outcome: Outcome::Refused(Refusal::TooManyAttempts),
                };
            }
            Transition {
                state: (target.counted)(failed),
                effects,
                outcome: Outcome::Refused(wrong_code_refusal(verdict)),
            }
        }
    }
}

fn wrong_code_effects(key: &LockoutKey, verdict: FactorVerdict) -> Vec<Effect> {
    let mut effects = vec![Effect::RecordFailure(key.clone())];
    if verdict == FactorVerdict::Replayed {
        effects.push(Effect::Audit(AuditKind::CodeReplayed));
        effects.push(Effect::Notify(SecurityEventKind::CodeReplayed));
    } else {
        effects.push(Effect::Audit(AuditKind::SecondFactorFailed));
    }
    effects
}

fn wrong_code_refusal(verdict: FactorVerdict) -> Refusal {
    if verdict == FactorVerdict::Replayed {
        Refusal::CodeReused
    } else {
        Refusal::InvalidCode
    }
}

fn microsoft(state: &LoginState, verdict: MicrosoftVerdict, now: OffsetDateTime) -> Transition {
    match verdict {
        MicrosoftVerdict::Refused(r) => Transition::stay(
            state,
            Outcome::Refused(Refusal::Microsoft(r)),
            vec![Effect::Audit(AuditKind::MicrosoftRefused)],
        ),
        MicrosoftVerdict::Accepted {
            user_id,
            lockout_key,
            satisfies_2fa,
            two_factor_applies,
            has_factor,
            factor_optional,
        } => {
            if satisfies_2fa || !two_factor_applies || (!has_factor && factor_optional) {
                sign_in(user_id, AuthMethod::Microsoft, lockout_key, now)
            } else {
                park(user_id, lockout_key, !has_factor, now, vec![])
            }
        }
    }
}

#[cfg(test)]
mod tests;
