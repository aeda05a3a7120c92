//! The login state machine: synchronous and IO-free.
//!
//! `step(state, event, now, config) -> Transition { state, effects, outcome }`. Services
//! gather the facts (lock status, password verdict, trusted-device verdict, factor
//! verdict) through ports, feed them in as an event, and apply the effects. Because the
//! machine decides, the rules hold whatever adapter or web framework drives it: a lock
//! refuses even a correct password, a pending login expires, a trusted device never
//! satisfies a step-up.

mod event;
mod outcome;
mod state;

pub use event::*;
pub use outcome::*;
pub use state::*;

use time::OffsetDateTime;

use crate::lockout::{LockStatus, LockoutEntry, LockoutKey};
use crate::model::{AuditKind, AuthMethod, SecurityEventKind, UserId};

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
        LoginEvent::Passwordless(verdict) => passwordless(state, verdict, now),
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
                    passkey: false,
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
        method == AuthMethod::TwoFactor,
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
fn stepped_up(session: &SignedIn, key: LockoutKey, now: OffsetDateTime) -> Transition {
    let mut t = signed_in_as(
        session.user_id,
        AuthMethod::TwoFactor,
        false,
        now,
        vec![
            Effect::RenewSession,
            Effect::ClearFailures(key),
            Effect::Audit(AuditKind::LoginSucceeded),
        ],
    );
    // What established the session still did.
    if let LoginState::SignedIn(s) = &mut t.state {
        s.passkey = session.passkey;
    }
    t
}

fn signed_in_as(
    user_id: UserId,
    method: AuthMethod,
    trust_offer: bool,
    now: OffsetDateTime,
    effects: Vec<Effect>,
) -> Transition {
    Transition {
        state: LoginState::SignedIn(SignedIn {
            user_id,
            method,
            at: now,
            trust_offer,
            passkey: None,
        }),
        effects,
        outcome: Outcome::SignedIn { method },
    }
}

fn park(
    user_id: UserId,
    lockout_key: LockoutKey,
    counted: Option<LockoutEntry>,
    (setup, passkey): (bool, bool),
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
            counted,
            passkey,
        }),
        effects,
        outcome: Outcome::SecondFactorRequired { setup },
    }
}

fn password(state: &LoginState, attempt: PasswordAttempt, now: OffsetDateTime) -> Transition {
    // The attempt was counted before the password was checked; beyond a budget the
    // password was not checked, and the refusal is the same whatever it was.
    if let LockStatus::Locked { until } = attempt.lock {
        return Transition::stay(
            state,
            Outcome::Refused(Refusal::Locked { until }),
            vec![Effect::Audit(AuditKind::LoginLocked)],
        );
    }
    let valid = match attempt.verdict {
        // Already counted: the failure stands.
        PasswordVerdict::Invalid => {
            return Transition::stay(
                state,
                Outcome::Refused(Refusal::InvalidCredentials),
                vec![Effect::Audit(AuditKind::LoginFailed)],
            );
        }
        PasswordVerdict::Valid(v) => v,
    };
    // A right password was no failure: the address's count is taken back; the account's
    // is cleared by a sign-in, and stays while the login waits for its second factor.
    let settle_ip: Vec<Effect> = attempt.ip_key.into_iter().map(Effect::Settle).collect();
    let user_key = valid.user_key;
    if !valid.password_login_allowed {
        let mut effects = vec![Effect::Settle(user_key)];
        effects.extend(settle_ip);
        effects.push(Effect::Audit(AuditKind::PasswordLoginRefused));
        return Transition::stay(
            state,
            Outcome::Refused(Refusal::PasswordLoginNotAllowed),
            effects,
        );
    }
    if !valid.two_factor_applies {
        return with_first(
            settle_ip,
            sign_in(valid.user_id, AuthMethod::Password, user_key, now),
        );
    }
    let mut effects = settle_ip;
    match valid.trusted_device {
        TrustedDeviceVerdict::Accepted => {
            return with_first(
                effects,
                sign_in(valid.user_id, AuthMethod::Cookie, user_key, now),
            );
        }
        TrustedDeviceVerdict::Superseded => {
            effects.push(Effect::Audit(AuditKind::TrustedDeviceTheft));
            effects.push(Effect::Notify(SecurityEventKind::TrustedDeviceCookieReused));
        }
        TrustedDeviceVerdict::Absent | TrustedDeviceVerdict::Rejected => {}
    }
    if !valid.has_factor && valid.factor_optional {
        return with_first(
            effects,
            sign_in(valid.user_id, AuthMethod::Password, user_key, now),
        );
    }
    // The right password stays counted on the account until the second factor is proven
    // (a pending login is an attempt on it until then).
    park(
        valid.user_id,
        user_key,
        attempt.user_counted,
        (!valid.has_factor, valid.has_passkey),
        now,
        effects,
    )
}

/// `t` with `first` applied before its own effects.
fn with_first(mut first: Vec<Effect>, mut t: Transition) -> Transition {
    first.append(&mut t.effects);
    t.effects = first;
    t
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
                config,
                CodeTarget {
                    accepted: || stepped_up(&s.signed_in, s.lockout_key.clone(), now),
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
/// (already counted on the user's key; the attempt is abandoned at the limit).
fn code_attempt<A, C>(
    state: &LoginState,
    verdict: FactorVerdict,
    failed_so_far: u8,
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
            let mut effects = wrong_code_effects(verdict);
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

/// A wrong code (already counted on the second-factor counter before its check).
fn wrong_code_effects(verdict: FactorVerdict) -> Vec<Effect> {
    let mut effects = Vec::new();
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
                park(
                    user_id,
                    lockout_key,
                    None,
                    (!has_factor, false),
                    now,
                    vec![],
                )
            }
        }
    }
}

/// A passkey alone: signs in whoever it named, replacing whatever the session was (as
/// every sign-in does). The client address's lock was read when the attempt was counted;
/// a locked address's assertion was not checked.
fn passwordless(
    state: &LoginState,
    verdict: PasswordlessVerdict,
    now: OffsetDateTime,
) -> Transition {
    match verdict {
        PasswordlessVerdict::Locked { until } => Transition::stay(
            state,
            Outcome::Refused(Refusal::Locked { until }),
            vec![Effect::Audit(AuditKind::LoginLocked)],
        ),
        PasswordlessVerdict::Rejected => Transition::stay(
            state,
            Outcome::Refused(Refusal::PasskeyRejected),
            vec![Effect::Audit(AuditKind::LoginFailed)],
        ),
        PasswordlessVerdict::Accepted {
            user_id,
            lockout_key,
        } => sign_in(user_id, AuthMethod::Passkey, lockout_key, now),
    }
}

#[cfg(test)]
mod tests;
