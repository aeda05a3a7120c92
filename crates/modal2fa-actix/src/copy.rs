//! Every sentence a user reads from the web layer's Rust code, in one place. Templates
//! hold the rest. The core returns typed refusals and errors; this table words them.

use modal2fa_core::ServiceError;
use modal2fa_core::error::Forbidden;
use modal2fa_core::machine::{MicrosoftRefusal, Refusal};
use modal2fa_core::model::{ParseError, Problem};
use modal2fa_core::ports::ConflictKind;
use modal2fa_core::tokens::LinkError;
use time::OffsetDateTime;

/// The body of a 403 for a form that failed its CSRF or origin check.
pub const FORM_REJECTED: &str =
    "The form has expired or did not come from this site. Reload the page and try again.";
/// The body of an opaque 500.
pub const SOMETHING_WENT_WRONG: &str = "Something went wrong. Please try again.";
/// Shown while a store cannot be reached.
pub const UNAVAILABLE: &str =
    "The service is temporarily unavailable. Please try again in a few seconds.";
/// The two new passwords typed differ.
pub const PASSWORDS_DIFFER: &str = "The two new passwords differ.";
/// The current password typed to change it is wrong.
pub const WRONG_CURRENT_PASSWORD: &str = "Your current password is incorrect.";
/// The title of the "Forgot your password?" modal.
pub const FORGOT_PASSWORD: &str = "Forgot your password?";
/// The title of a reset link's modal.
pub const SET_NEW_PASSWORD: &str = "Set a new password";
/// What a reset link's modal asks.
pub const SET_NEW_PASSWORD_INTRO: &str =
    "Choose a new password. Every session of your account will be signed out.";
/// The title of an invitation's modal.
pub const WELCOME: &str = "Welcome";
/// What an invitation's modal asks.
pub const WELCOME_INTRO: &str = "Choose a password for your new account.";
/// Shown on the login modal after a reset link set a new password.
pub const PASSWORD_SET: &str = "Your new password is set. Sign in with it.";
/// Shown when the site has no public URL to build emailed links from.
pub const NO_EMAIL_LINKS: &str =
    "Password reset by email is not available on this site. Ask your administrator.";
/// Shown on the 2FA modal when a step-up starts.
pub const CONFIRM_FIRST: &str = "Confirm with your second factor first.";

/// What a refusal says to the user.
pub fn refusal(r: Refusal, now: OffsetDateTime) -> String {
    match r {
        Refusal::InvalidCredentials => "Please enter a correct username and password.".into(),
        Refusal::Locked { until } => {
            let secs = (until - now).whole_seconds().max(1);
            format!("Too many failed attempts. Try again in {secs} seconds.")
        }
        Refusal::PasswordLoginNotAllowed => {
            "This account signs in with Microsoft: use the Microsoft button.".into()
        }
        Refusal::InvalidCode => "The code is incorrect.".into(),
        Refusal::CodeReused => "This code has already been used. Wait for the next one.".into(),
        Refusal::TooManyAttempts => "Too many wrong codes. Please sign in again.".into(),
        Refusal::Expired => "The sign-in took too long. Please sign in again.".into(),
        Refusal::EnrolmentExpired => {
            "This set-up page has expired. Scan the new QR code and enter its code.".into()
        }
        Refusal::NoPendingLogin => "Please sign in first.".into(),
        Refusal::NotAllowed => "That is not possible now.".into(),
        Refusal::Microsoft(m) => microsoft(m).into(),
        Refusal::Invalid(e) => field_error(e),
        Refusal::Link(l) => link(l).into(),
        Refusal::PasskeyRejected => "Your passkey could not be verified. Please try again.".into(),
        Refusal::CeremonyExpired => "The passkey prompt timed out. Please try again.".into(),
        _ => "That is not possible now.".into(),
    }
}

/// What a field that did not parse says: the field's name as the form labels it, then
/// the problem.
pub fn field_error(e: ParseError) -> String {
    let field = match e.field {
        "username" => "Username",
        "email" => "Email address",
        "password" => "Password",
        "code" => "Code",
        "name" => "Name",
        other => return capitalised(&format!("{other} {}.", e.problem)),
    };
    let problem = match e.problem {
        Problem::Required => "is required".to_owned(),
        Problem::TooLong { max } => format!("must be at most {max} characters long"),
        Problem::TooManyBytes { max } => format!("must be at most {max} bytes long"),
        Problem::TooShort { min } => format!("must be at least {min} characters long"),
        Problem::UsernameCharacters { allowed } => format!(
            "may contain only letters, digits and the characters {}",
            modal2fa_core::parse::spaced(allowed)
        ),
        Problem::ControlCharacter => "must not contain line breaks or tabs".to_owned(),
        Problem::MissingAt => "must contain an @".to_owned(),
        Problem::LocalPart => "has an invalid part before the @".to_owned(),
        Problem::Domain => "has an invalid domain after the @".to_owned(),
        Problem::DigitsOnly => "may contain only digits".to_owned(),
        Problem::DigitCount { min, max } => format!("must have {min} to {max} digits"),
        Problem::RepeatsOneCharacter => "must not be one character repeated".to_owned(),
        Problem::SameAsIdentity => "must not be your username or email address".to_owned(),
        other => other.to_string(),
    };
    format!("{field} {problem}.")
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn microsoft(m: MicrosoftRefusal) -> &'static str {
    match m {
        MicrosoftRefusal::WrongTenant => "This Microsoft account belongs to another organisation.",
        MicrosoftRefusal::Guest => "Guest accounts cannot sign in here.",
        MicrosoftRefusal::NoAccount => "No account here matches this Microsoft account.",
        MicrosoftRefusal::NotAllowed => "This account may not sign in with Microsoft.",
        _ => "Microsoft sign-in failed. Please try again.",
    }
}

fn link(l: LinkError) -> &'static str {
    match l {
        LinkError::Malformed | LinkError::Invalid => {
            "This link is invalid or has already been used."
        }
        LinkError::Expired => "This link has expired. Ask for a new one.",
    }
}

fn forbidden(f: Forbidden) -> &'static str {
    match f {
        Forbidden::FinishSigningInFirst => "Finish signing in first.",
        Forbidden::FactorEnrolledMeanwhile => {
            "This account has a second factor now. Please sign in again with it."
        }
        Forbidden::TrustOnlyAfterSecondFactor => {
            "A device can be trusted only right after confirming your second factor."
        }
        Forbidden::TrustedDevicesDisabled => "Trusted devices are turned off for your account.",
        Forbidden::TotpDisabled => "Authenticator apps are turned off for your account.",
        Forbidden::PasskeysDisabled => "Passkeys are turned off for your account.",
        Forbidden::PasskeysNotConfigured => "Passkeys are not available on this site.",
        Forbidden::PasswordlessDisabled => {
            "Signing in with a passkey alone is turned off. Sign in with your password."
        }
        Forbidden::ManageUsers | Forbidden::ManageSecurity => {
            "You do not have permission to do that."
        }
        _ => "You do not have permission to do that.",
    }
}

fn conflict(k: ConflictKind) -> &'static str {
    match k {
        ConflictKind::Username => "That username is taken.",
        ConflictKind::WebAuthnCredential => "This passkey is registered already.",
        _ => "That already exists.",
    }
}

/// What a service error says to the user, when it is one they can act on (`None` for
/// infrastructure failures, which get the opaque page).
pub fn service_error(e: &ServiceError, now: OffsetDateTime) -> Option<String> {
    Some(match e {
        ServiceError::Refused(r) => refusal(*r, now),
        ServiceError::Forbidden(f) => forbidden(*f).into(),
        ServiceError::Conflict(k) => conflict(*k).into(),
        ServiceError::NotFound => "That no longer exists. Reload the page.".into(),
        ServiceError::NotSignedIn => "Please sign in first.".into(),
        ServiceError::StepUpRequired => CONFIRM_FIRST.into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn a_lock_reads_the_same_whichever_service_refused() {
        let until = NOW + Duration::seconds(30);
        let from_login = refusal(Refusal::Locked { until }, NOW);
        let from_account = service_error(&Refusal::Locked { until }.into(), NOW).unwrap();
        assert_eq!(from_login, from_account);
        assert_eq!(
            from_login,
            "Too many failed attempts. Try again in 30 seconds."
        );
    }

    #[test]
    fn a_field_error_becomes_a_sentence() {
        let e = ParseError::new("username", Problem::Required);
        assert_eq!(refusal(Refusal::Invalid(e), NOW), "Username is required.");
        let e = ParseError::new("password", Problem::TooShort { min: 8 });
        assert_eq!(
            field_error(e),
            "Password must be at least 8 characters long."
        );
    }

    #[test]
    fn internal_failures_are_not_worded() {
        let e = ServiceError::Unexpected("driver said something".into());
        assert_eq!(service_error(&e, NOW), None);
    }
}
