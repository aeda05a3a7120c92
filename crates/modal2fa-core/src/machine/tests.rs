//! Table-driven tests: every transition of the sign-in flow, including every refusal.

use super::*;
use time::Duration;

use crate::model::FactorKind;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const UID: UserId = UserId(42);

fn ukey() -> LockoutKey {
    LockoutKey::User("alice".into())
}
fn ikey() -> LockoutKey {
    LockoutKey::Ip("203.0.113.1".into())
}

fn valid() -> ValidPassword {
    ValidPassword {
        user_id: UID,
        user_key: ukey(),
        password_login_allowed: true,
        two_factor_applies: true,
        trusted_device: TrustedDeviceVerdict::Absent,
        has_factor: true,
        has_passkey: false,
        factor_optional: true,
    }
}

fn attempt(verdict: PasswordVerdict) -> LoginEvent {
    LoginEvent::Password(PasswordAttempt {
        user_key: Some(ukey()),
        ip_key: Some(ikey()),
        lock: LockStatus::Open,
        user_counted: None,
        verdict,
    })
}

fn with_valid(f: impl FnOnce(&mut ValidPassword)) -> LoginEvent {
    let mut v = valid();
    f(&mut v);
    attempt(PasswordVerdict::Valid(v))
}

fn locked_attempt(verdict: PasswordVerdict) -> LoginEvent {
    LoginEvent::Password(PasswordAttempt {
        user_key: Some(ukey()),
        ip_key: Some(ikey()),
        lock: LockStatus::Locked {
            until: NOW + Duration::seconds(30),
        },
        user_counted: None,
        verdict,
    })
}

fn pending(setup: bool, failed: u8, since: OffsetDateTime) -> LoginState {
    LoginState::PendingSecondFactor(Pending {
        user_id: UID,
        lockout_key: ukey(),
        since,
        setup_required: setup,
        failed_codes: failed,
        counted: None,
        passkey: false,
    })
}

fn signed(method: AuthMethod) -> LoginState {
    LoginState::SignedIn(SignedIn {
        user_id: UID,
        method,
        at: NOW - Duration::hours(1),
        trust_offer: false,
        passkey: None,
    })
}

fn step_up(failed: u8, since: OffsetDateTime) -> LoginState {
    LoginState::StepUp(StepUp {
        signed_in: SignedIn {
            user_id: UID,
            method: AuthMethod::Cookie,
            at: NOW - Duration::hours(1),
            trust_offer: false,
            passkey: None,
        },
        lockout_key: ukey(),
        since,
        failed_codes: failed,
        passkey: false,
    })
}

/// Signed in now: right after a second factor, "trust this device?" may be answered.
fn signed_in_now(method: AuthMethod) -> SignedIn {
    SignedIn {
        user_id: UID,
        method,
        at: NOW,
        trust_offer: method == AuthMethod::TwoFactor,
        passkey: None,
    }
}

fn signed_now(method: AuthMethod) -> LoginState {
    LoginState::SignedIn(signed_in_now(method))
}

fn sign_in_effects() -> Vec<Effect> {
    vec![
        Effect::RenewSession,
        Effect::ClearFailures(ukey()),
        Effect::RecordLogin(UID),
        Effect::Audit(AuditKind::LoginSucceeded),
    ]
}

fn park_effects() -> Vec<Effect> {
    vec![
        Effect::RenewSession,
        Effect::Audit(AuditKind::PasswordAccepted),
    ]
}

/// A right password signs in: the address's count taken back, the account's cleared.
fn password_sign_in_effects() -> Vec<Effect> {
    [vec![Effect::Settle(ikey())], sign_in_effects()].concat()
}

/// A right password parks the login: the address's count taken back, the account's kept.
fn password_park_effects() -> Vec<Effect> {
    [vec![Effect::Settle(ikey())], park_effects()].concat()
}

fn step_up_event() -> LoginEvent {
    LoginEvent::BeginStepUp {
        allowed_methods: vec![AuthMethod::TwoFactor, AuthMethod::Microsoft],
        lockout_key: ukey(),
    }
}

fn passwordless_accepted() -> LoginEvent {
    LoginEvent::Passwordless(PasswordlessVerdict::Accepted {
        user_id: UID,
        lockout_key: ukey(),
    })
}

fn ms_accepted(satisfies: bool, applies: bool, has_factor: bool, optional: bool) -> LoginEvent {
    LoginEvent::Microsoft(MicrosoftVerdict::Accepted {
        user_id: UID,
        lockout_key: ukey(),
        satisfies_2fa: satisfies,
        two_factor_applies: applies,
        has_factor,
        factor_optional: optional,
    })
}

struct Case {
    name: &'static str,
    from: LoginState,
    event: LoginEvent,
    to: LoginState,
    outcome: Outcome,
    effects: Vec<Effect>,
}

fn cases() -> Vec<Case> {
    let locked = Outcome::Refused(Refusal::Locked {
        until: NOW + Duration::seconds(30),
    });
    let expired_at = NOW - Duration::minutes(5) - Duration::seconds(1);
    vec![
        // --- password step ---
        Case {
            name: "a locked user or IP is refused before the password, even a correct one",
            from: LoginState::Anonymous,
            event: locked_attempt(PasswordVerdict::Valid(valid())),
            to: LoginState::Anonymous,
            outcome: locked,
            effects: vec![Effect::Audit(AuditKind::LoginLocked)],
        },
        Case {
            name: "a locked attempt with a wrong password is refused as locked and not counted",
            from: LoginState::Anonymous,
            event: locked_attempt(PasswordVerdict::Invalid),
            to: LoginState::Anonymous,
            outcome: locked,
            effects: vec![Effect::Audit(AuditKind::LoginLocked)],
        },
        Case {
            name: "a wrong password counts against the user and the IP",
            from: LoginState::Anonymous,
            event: attempt(PasswordVerdict::Invalid),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::InvalidCredentials),
            effects: vec![Effect::Audit(AuditKind::LoginFailed)],
        },
        Case {
            name: "a wrong password from an excluded IP counts against the user only",
            from: LoginState::Anonymous,
            event: LoginEvent::Password(PasswordAttempt {
                user_key: Some(ukey()),
                ip_key: None,
                lock: LockStatus::Open,
                user_counted: None,
                verdict: PasswordVerdict::Invalid,
            }),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::InvalidCredentials),
            effects: vec![Effect::Audit(AuditKind::LoginFailed)],
        },
        Case {
            name: "a wrong password while signed in leaves the session signed in",
            from: signed(AuthMethod::TwoFactor),
            event: attempt(PasswordVerdict::Invalid),
            to: signed(AuthMethod::TwoFactor),
            outcome: Outcome::Refused(Refusal::InvalidCredentials),
            effects: vec![Effect::Audit(AuditKind::LoginFailed)],
        },
        Case {
            name: "a correct password of an SSO-only user is refused with a pointer to Microsoft",
            from: LoginState::Anonymous,
            event: with_valid(|v| v.password_login_allowed = false),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::PasswordLoginNotAllowed),
            effects: vec![
                Effect::Settle(ukey()),
                Effect::Settle(ikey()),
                Effect::Audit(AuditKind::PasswordLoginRefused),
            ],
        },
        Case {
            name: "when 2FA does not apply to the request the password signs in directly",
            from: LoginState::Anonymous,
            event: with_valid(|v| v.two_factor_applies = false),
            to: signed_now(AuthMethod::Password),
            outcome: Outcome::SignedIn { method: AuthMethod::Password },
            effects: password_sign_in_effects(),
        },
        Case {
            name: "a valid trusted-device cookie signs in with method cookie",
            from: LoginState::Anonymous,
            event: with_valid(|v| v.trusted_device = TrustedDeviceVerdict::Accepted),
            to: signed_now(AuthMethod::Cookie),
            outcome: Outcome::SignedIn { method: AuthMethod::Cookie },
            effects: password_sign_in_effects(),
        },
        Case {
            name: "a superseded trusted-device cookie alerts the owner and asks for the second factor",
            from: LoginState::Anonymous,
            event: with_valid(|v| v.trusted_device = TrustedDeviceVerdict::Superseded),
            to: pending(false, 0, NOW),
            outcome: Outcome::SecondFactorRequired { setup: false },
            effects: [
                vec![
                    Effect::Settle(ikey()),
                    Effect::Audit(AuditKind::TrustedDeviceTheft),
                    Effect::Notify(SecurityEventKind::TrustedDeviceCookieReused),
                ],
                park_effects(),
            ]
            .concat(),
        },
        Case {
            name: "a rejected trusted-device cookie asks for the second factor",
            from: LoginState::Anonymous,
            event: with_valid(|v| v.trusted_device = TrustedDeviceVerdict::Rejected),
            to: pending(false, 0, NOW),
            outcome: Outcome::SecondFactorRequired { setup: false },
            effects: password_park_effects(),
        },
        Case {
            name: "a user without a factor for whom 2FA is optional signs in with the password",
            from: LoginState::Anonymous,
            event: with_valid(|v| v.has_factor = false),
            to: signed_now(AuthMethod::Password),
            outcome: Outcome::SignedIn { method: AuthMethod::Password },
            effects: password_sign_in_effects(),
        },
        Case {
            name: "a user without a factor for whom 2FA is required is parked for setup",
            from: LoginState::Anonymous,
            event: with_valid(|v| {
                v.has_factor = false;
                v.factor_optional = false;
            }),
            to: pending(true, 0, NOW),
            outcome: Outcome::SecondFactorRequired { setup: true },
            effects: password_park_effects(),
        },
        Case {
            name: "a user with a factor is parked for the second factor and the session id renewed",
            from: LoginState::Anonymous,
            event: attempt(PasswordVerdict::Valid(valid())),
            to: pending(false, 0, NOW),
            outcome: Outcome::SecondFactorRequired { setup: false },
            effects: password_park_effects(),
        },
        Case {
            name: "a new password step replaces an earlier pending login",
            from: pending(false, 3, NOW - Duration::minutes(2)),
            event: attempt(PasswordVerdict::Valid(valid())),
            to: pending(false, 0, NOW),
            outcome: Outcome::SecondFactorRequired { setup: false },
            effects: password_park_effects(),
        },
        // --- second factor ---
        Case {
            name: "a valid code completes the pending login with method 2fa",
            from: pending(false, 2, NOW - Duration::minutes(1)),
            event: LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::Totp)),
            to: signed_now(AuthMethod::TwoFactor),
            outcome: Outcome::SignedIn { method: AuthMethod::TwoFactor },
            effects: sign_in_effects(),
        },
        Case {
            name: "a passkey completes the pending login",
            from: pending(false, 0, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::WebAuthn)),
            to: signed_now(AuthMethod::TwoFactor),
            outcome: Outcome::SignedIn { method: AuthMethod::TwoFactor },
            effects: sign_in_effects(),
        },
        Case {
            name: "a wrong code counts against the user and keeps the login pending",
            from: pending(false, 0, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Rejected),
            to: pending(false, 1, NOW),
            outcome: Outcome::Refused(Refusal::InvalidCode),
            effects: vec![Effect::Audit(AuditKind::SecondFactorFailed)],
        },
        Case {
            name: "a replayed code is refused, audited distinctly and reported to the owner",
            from: pending(false, 0, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Replayed),
            to: pending(false, 1, NOW),
            outcome: Outcome::Refused(Refusal::CodeReused),
            effects: vec![
                Effect::Audit(AuditKind::CodeReplayed),
                Effect::Notify(SecurityEventKind::CodeReplayed),
            ],
        },
        Case {
            name: "the fifth wrong code destroys the pending login",
            from: pending(false, 4, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Rejected),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::TooManyAttempts),
            effects: vec![
                Effect::Audit(AuditKind::SecondFactorFailed),
                Effect::Audit(AuditKind::SecondFactorAbandoned),
                Effect::EndSession,
            ],
        },
        Case {
            name: "a locked user cannot try codes",
            from: pending(false, 0, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Locked { until: NOW + Duration::seconds(30) }),
            to: pending(false, 0, NOW),
            outcome: locked,
            effects: vec![Effect::Audit(AuditKind::LoginLocked)],
        },
        Case {
            name: "an expired pending login is refused and abandoned even with a valid code",
            from: pending(false, 0, expired_at),
            event: LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::Totp)),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::Expired),
            effects: vec![Effect::Audit(AuditKind::PendingExpired), Effect::EndSession],
        },
        Case {
            name: "a pending login exactly at its time limit is still accepted",
            from: pending(false, 0, NOW - Duration::minutes(5)),
            event: LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::Totp)),
            to: signed_now(AuthMethod::TwoFactor),
            outcome: Outcome::SignedIn { method: AuthMethod::TwoFactor },
            effects: sign_in_effects(),
        },
        Case {
            name: "a code without a pending login is refused",
            from: LoginState::Anonymous,
            event: LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::Totp)),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::NoPendingLogin),
            effects: vec![],
        },
        Case {
            name: "a code in a signed-in session without a step-up is refused",
            from: signed(AuthMethod::Cookie),
            event: LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::Totp)),
            to: signed(AuthMethod::Cookie),
            outcome: Outcome::Refused(Refusal::NoPendingLogin),
            effects: vec![],
        },
        // --- first-time setup ---
        Case {
            name: "setting up a first factor completes a pending setup login",
            from: pending(true, 0, NOW),
            event: LoginEvent::FactorEnrolled(FactorKind::Totp),
            to: signed_now(AuthMethod::TwoFactor),
            outcome: Outcome::SignedIn { method: AuthMethod::TwoFactor },
            effects: sign_in_effects(),
        },
        Case {
            name: "setting up a factor is refused when the pending user already has one",
            from: pending(false, 0, NOW),
            event: LoginEvent::FactorEnrolled(FactorKind::Totp),
            to: pending(false, 0, NOW),
            outcome: Outcome::Refused(Refusal::NotAllowed),
            effects: vec![],
        },
        Case {
            name: "setting up a factor without a pending login is refused",
            from: LoginState::Anonymous,
            event: LoginEvent::FactorEnrolled(FactorKind::WebAuthn),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::NoPendingLogin),
            effects: vec![],
        },
        Case {
            name: "setting up after the pending login expired is refused",
            from: pending(true, 0, expired_at),
            event: LoginEvent::FactorEnrolled(FactorKind::Totp),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::Expired),
            effects: vec![Effect::Audit(AuditKind::PendingExpired), Effect::EndSession],
        },
        // --- cancel and logout ---
        Case {
            name: "cancelling the 2FA modal abandons the pending login",
            from: pending(false, 1, NOW),
            event: LoginEvent::Cancel,
            to: LoginState::Anonymous,
            outcome: Outcome::Cancelled,
            effects: vec![Effect::Audit(AuditKind::PendingCancelled), Effect::EndSession],
        },
        Case {
            name: "cancelling with nothing pending changes nothing",
            from: signed(AuthMethod::Password),
            event: LoginEvent::Cancel,
            to: signed(AuthMethod::Password),
            outcome: Outcome::Unchanged,
            effects: vec![],
        },
        Case {
            name: "logging out ends a signed-in session",
            from: signed(AuthMethod::TwoFactor),
            event: LoginEvent::Logout,
            to: LoginState::Anonymous,
            outcome: Outcome::LoggedOut,
            effects: vec![Effect::Audit(AuditKind::Logout), Effect::EndSession],
        },
        Case {
            name: "logging out when nobody is signed in just ends the session",
            from: LoginState::Anonymous,
            event: LoginEvent::Logout,
            to: LoginState::Anonymous,
            outcome: Outcome::LoggedOut,
            effects: vec![Effect::EndSession],
        },
        Case {
            name: "logging out of a pending login ends it without a logout audit",
            from: pending(false, 0, NOW),
            event: LoginEvent::Logout,
            to: LoginState::Anonymous,
            outcome: Outcome::LoggedOut,
            effects: vec![Effect::EndSession],
        },
        // --- step-up ---
        Case {
            name: "a cookie session is sent through step-up before managing factors",
            from: signed(AuthMethod::Cookie),
            event: step_up_event(),
            to: step_up(0, NOW),
            outcome: Outcome::SecondFactorRequired { setup: false },
            effects: vec![Effect::Audit(AuditKind::StepUpStarted)],
        },
        Case {
            name: "a password session is sent through step-up too",
            from: signed(AuthMethod::Password),
            event: step_up_event(),
            to: LoginState::StepUp(StepUp {
                signed_in: SignedIn { user_id: UID, method: AuthMethod::Password, at: NOW - Duration::hours(1), trust_offer: false, passkey: None },
                lockout_key: ukey(),
                since: NOW,
                failed_codes: 0,
                passkey: false,
            }),
            outcome: Outcome::SecondFactorRequired { setup: false },
            effects: vec![Effect::Audit(AuditKind::StepUpStarted)],
        },
        Case {
            name: "a 2fa session needs no step-up",
            from: signed(AuthMethod::TwoFactor),
            event: step_up_event(),
            to: signed(AuthMethod::TwoFactor),
            outcome: Outcome::AlreadySatisfied,
            effects: vec![],
        },
        Case {
            name: "a microsoft session needs no step-up by default",
            from: signed(AuthMethod::Microsoft),
            event: step_up_event(),
            to: signed(AuthMethod::Microsoft),
            outcome: Outcome::AlreadySatisfied,
            effects: vec![],
        },
        Case {
            name: "step-up is refused to an anonymous session",
            from: LoginState::Anonymous,
            event: step_up_event(),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::NotAllowed),
            effects: vec![],
        },
        Case {
            name: "step-up is refused to a pending login",
            from: pending(false, 0, NOW),
            event: step_up_event(),
            to: pending(false, 0, NOW),
            outcome: Outcome::Refused(Refusal::NotAllowed),
            effects: vec![],
        },
        Case {
            name: "restarting a step-up refreshes its clock and keeps its failures",
            from: step_up(2, NOW - Duration::minutes(3)),
            event: step_up_event(),
            to: step_up(2, NOW),
            outcome: Outcome::SecondFactorRequired { setup: false },
            effects: vec![],
        },
        Case {
            name: "a valid code during step-up upgrades the session to 2fa with a new id, offering no trust",
            from: step_up(0, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::Totp)),
            to: LoginState::SignedIn(SignedIn { trust_offer: false, ..signed_in_now(AuthMethod::TwoFactor) }),
            outcome: Outcome::SignedIn { method: AuthMethod::TwoFactor },
            effects: vec![
                Effect::RenewSession,
                Effect::ClearFailures(ukey()),
                Effect::Audit(AuditKind::LoginSucceeded),
            ],
        },
        Case {
            name: "a wrong code during step-up counts and keeps the step-up",
            from: step_up(0, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Rejected),
            to: step_up(1, NOW),
            outcome: Outcome::Refused(Refusal::InvalidCode),
            effects: vec![Effect::Audit(AuditKind::SecondFactorFailed)],
        },
        Case {
            name: "a replayed code during step-up is refused as reused",
            from: step_up(0, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Replayed),
            to: step_up(1, NOW),
            outcome: Outcome::Refused(Refusal::CodeReused),
            effects: vec![
                Effect::Audit(AuditKind::CodeReplayed),
                Effect::Notify(SecurityEventKind::CodeReplayed),
            ],
        },
        Case {
            name: "too many wrong codes end the step-up and keep the cookie session",
            from: step_up(4, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Rejected),
            to: signed(AuthMethod::Cookie),
            outcome: Outcome::Refused(Refusal::TooManyAttempts),
            effects: vec![
                Effect::Audit(AuditKind::SecondFactorFailed),
                Effect::Audit(AuditKind::SecondFactorAbandoned),
            ],
        },
        Case {
            name: "a locked user cannot step up",
            from: step_up(0, NOW),
            event: LoginEvent::SecondFactor(FactorVerdict::Locked { until: NOW + Duration::seconds(30) }),
            to: step_up(0, NOW),
            outcome: locked,
            effects: vec![Effect::Audit(AuditKind::LoginLocked)],
        },
        Case {
            name: "an expired step-up returns to the original session",
            from: step_up(0, expired_at),
            event: LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::Totp)),
            to: signed(AuthMethod::Cookie),
            outcome: Outcome::Refused(Refusal::Expired),
            effects: vec![],
        },
        Case {
            name: "cancelling a step-up returns to the original session",
            from: step_up(1, NOW),
            event: LoginEvent::Cancel,
            to: signed(AuthMethod::Cookie),
            outcome: Outcome::Cancelled,
            effects: vec![],
        },
        Case {
            name: "setting up a factor is not a way to complete a step-up",
            from: step_up(0, NOW),
            event: LoginEvent::FactorEnrolled(FactorKind::Totp),
            to: step_up(0, NOW),
            outcome: Outcome::Refused(Refusal::NoPendingLogin),
            effects: vec![],
        },
        Case {
            name: "logging out during a step-up ends the session",
            from: step_up(0, NOW),
            event: LoginEvent::Logout,
            to: LoginState::Anonymous,
            outcome: Outcome::LoggedOut,
            effects: vec![Effect::Audit(AuditKind::Logout), Effect::EndSession],
        },
        // --- Microsoft ---
        Case {
            name: "a microsoft sign-in with fresh MFA signs in with method microsoft",
            from: LoginState::Anonymous,
            event: ms_accepted(true, true, true, false),
            to: signed_now(AuthMethod::Microsoft),
            outcome: Outcome::SignedIn { method: AuthMethod::Microsoft },
            effects: sign_in_effects(),
        },
        Case {
            name: "a microsoft sign-in without MFA continues to the 2FA modal",
            from: LoginState::Anonymous,
            event: ms_accepted(false, true, true, true),
            to: pending(false, 0, NOW),
            outcome: Outcome::SecondFactorRequired { setup: false },
            effects: park_effects(),
        },
        Case {
            name: "a microsoft sign-in without MFA for a user who must set up 2FA goes to setup",
            from: LoginState::Anonymous,
            event: ms_accepted(false, true, false, false),
            to: pending(true, 0, NOW),
            outcome: Outcome::SecondFactorRequired { setup: true },
            effects: park_effects(),
        },
        Case {
            name: "a microsoft sign-in without MFA for a user with optional 2FA and no factor signs in",
            from: LoginState::Anonymous,
            event: ms_accepted(false, true, false, true),
            to: signed_now(AuthMethod::Microsoft),
            outcome: Outcome::SignedIn { method: AuthMethod::Microsoft },
            effects: sign_in_effects(),
        },
        Case {
            name: "a microsoft sign-in where 2FA does not apply signs in",
            from: LoginState::Anonymous,
            event: ms_accepted(false, false, true, false),
            to: signed_now(AuthMethod::Microsoft),
            outcome: Outcome::SignedIn { method: AuthMethod::Microsoft },
            effects: sign_in_effects(),
        },
        // --- passwordless ---
        Case {
            name: "a passkey alone signs in with method passkey",
            from: LoginState::Anonymous,
            event: passwordless_accepted(),
            to: signed_now(AuthMethod::Passkey),
            outcome: Outcome::SignedIn { method: AuthMethod::Passkey },
            effects: sign_in_effects(),
        },
        Case {
            name: "a passkey alone replaces a pending login",
            from: pending(false, 2, NOW),
            event: passwordless_accepted(),
            to: signed_now(AuthMethod::Passkey),
            outcome: Outcome::SignedIn { method: AuthMethod::Passkey },
            effects: sign_in_effects(),
        },
        Case {
            name: "a rejected passkey changes nothing and is audited as a failed sign-in",
            from: LoginState::Anonymous,
            event: LoginEvent::Passwordless(PasswordlessVerdict::Rejected),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::PasskeyRejected),
            effects: vec![Effect::Audit(AuditKind::LoginFailed)],
        },
        Case {
            name: "a passkey from a locked address is refused as locked",
            from: LoginState::Anonymous,
            event: LoginEvent::Passwordless(PasswordlessVerdict::Locked {
                until: NOW + Duration::seconds(30),
            }),
            to: LoginState::Anonymous,
            outcome: locked,
            effects: vec![Effect::Audit(AuditKind::LoginLocked)],
        },
    ]
    .into_iter()
    .chain(
        [
            MicrosoftRefusal::WrongTenant,
            MicrosoftRefusal::Guest,
            MicrosoftRefusal::NoAccount,
            MicrosoftRefusal::NotAllowed,
            MicrosoftRefusal::Failed,
        ]
        .into_iter()
        .map(|r| Case {
            name: "a refused microsoft sign-in changes nothing and is audited",
            from: LoginState::Anonymous,
            event: LoginEvent::Microsoft(MicrosoftVerdict::Refused(r)),
            to: LoginState::Anonymous,
            outcome: Outcome::Refused(Refusal::Microsoft(r)),
            effects: vec![Effect::Audit(AuditKind::MicrosoftRefused)],
        }),
    )
    .collect()
}

#[test]
fn every_transition_of_the_login_machine_behaves_as_specified() {
    let config = MachineConfig::default();
    let mut failures = Vec::new();
    for case in cases() {
        let t = step(&case.from, case.event.clone(), NOW, &config);
        if t.state != case.to || t.outcome != case.outcome || t.effects != case.effects {
            failures.push(format!(
                "{}:\n  state   {:?}\n  outcome {:?}\n  effects {:?}",
                case.name, t.state, t.outcome, t.effects
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_state_and_event_pair_is_covered_by_the_table() {
    fn state_kind(s: &LoginState) -> u8 {
        match s {
            LoginState::Anonymous => 0,
            LoginState::PendingSecondFactor(_) => 1,
            LoginState::SignedIn(_) => 2,
            LoginState::StepUp(_) => 3,
        }
    }
    fn event_kind(e: &LoginEvent) -> u8 {
        match e {
            LoginEvent::Password(_) => 0,
            LoginEvent::SecondFactor(_) => 1,
            LoginEvent::FactorEnrolled(_) => 2,
            LoginEvent::Microsoft(_) => 3,
            LoginEvent::BeginStepUp { .. } => 4,
            LoginEvent::Cancel => 5,
            LoginEvent::Logout => 6,
            LoginEvent::Passwordless(_) => 7,
        }
    }
    let covered: std::collections::HashSet<(u8, u8)> = cases()
        .iter()
        .map(|c| (state_kind(&c.from), event_kind(&c.event)))
        .collect();
    // Pairs whose behaviour is the same rule as a covered sibling are exercised below.
    let config = MachineConfig::default();
    let states = [
        LoginState::Anonymous,
        pending(false, 0, NOW),
        signed(AuthMethod::Cookie),
        step_up(0, NOW),
    ];
    let events = [
        attempt(PasswordVerdict::Valid(valid())),
        LoginEvent::SecondFactor(FactorVerdict::Rejected),
        LoginEvent::FactorEnrolled(FactorKind::Totp),
        ms_accepted(true, true, true, false),
        step_up_event(),
        LoginEvent::Cancel,
        LoginEvent::Logout,
        passwordless_accepted(),
    ];
    let mut uncovered = Vec::new();
    for s in &states {
        for e in &events {
            let pair = (state_kind(s), event_kind(e));
            if !covered.contains(&pair) {
                uncovered.push(pair);
            }
            // No pair panics, and the outcome always matches the state it leaves.
            let t = step(s, e.clone(), NOW, &config);
            if let Outcome::SignedIn { method } = t.outcome {
                assert_eq!(t.state.signed_in().map(|s| s.method), Some(method));
            }
        }
    }
    let allowed_by_sibling = [
        (1, 3),
        (2, 3),
        (3, 3),
        (3, 0),
        (0, 5),
        (1, 0),
        (2, 2),
        (2, 7),
        (3, 7),
    ];
    uncovered.retain(|p| !allowed_by_sibling.contains(p));
    assert!(
        uncovered.is_empty(),
        "uncovered (state, event) pairs: {uncovered:?}"
    );
}

#[test]
fn a_sign_in_from_any_state_replaces_it() {
    let config = MachineConfig::default();
    for from in [
        pending(false, 0, NOW),
        signed(AuthMethod::Password),
        step_up(0, NOW),
    ] {
        let t = step(
            &from,
            with_valid(|v| v.two_factor_applies = false),
            NOW,
            &config,
        );
        assert_eq!(t.state, signed_now(AuthMethod::Password));
        let t = step(&from, ms_accepted(true, true, true, false), NOW, &config);
        assert_eq!(t.state, signed_now(AuthMethod::Microsoft));
        let t = step(&from, passwordless_accepted(), NOW, &config);
        assert_eq!(t.state, signed_now(AuthMethod::Passkey));
    }
}

#[test]
fn the_state_survives_a_json_round_trip() {
    for s in [
        LoginState::Anonymous,
        pending(true, 2, NOW),
        signed(AuthMethod::TwoFactor),
        step_up(1, NOW),
    ] {
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<LoginState>(&json).unwrap(), s);
    }
}

#[test]
fn a_step_up_keeps_the_passkey_that_established_the_session() {
    let mut s = step_up(0, NOW);
    if let LoginState::StepUp(u) = &mut s {
        u.signed_in.passkey = Some(7);
    }
    let t = step(
        &s,
        LoginEvent::SecondFactor(FactorVerdict::Accepted(FactorKind::Totp)),
        NOW,
        &MachineConfig::default(),
    );
    assert_eq!(t.state.signed_in().and_then(|s| s.passkey), Some(7));
}

#[test]
fn a_pending_login_is_not_signed_in() {
    assert!(pending(false, 0, NOW).signed_in().is_none());
    assert_eq!(pending(false, 0, NOW).user_id(), Some(UID));
    assert!(step_up(0, NOW).signed_in().is_some());
    assert!(LoginState::Anonymous.user_id().is_none());
}
