//! What a sign-in step hands back to the web layer.

use crate::machine::{LoginState, Outcome, Refusal};
use crate::secret::SecretString;

/// What to do with the trusted-device cookie.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CookieUpdate {
    /// Leave it.
    #[default]
    Keep,
    /// Set it to this value (after rotation).
    Set(SecretString),
    /// Delete it.
    Clear,
}

/// The result of a sign-in step, for the web layer to apply. A user mistake arrives here
/// as `outcome: Outcome::Refused(_)`, with the state it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginReport {
    /// The state to keep in the session.
    pub state: LoginState,
    /// What to tell the user.
    pub outcome: Outcome,
    /// Issue a new session id (privilege changed).
    pub renew_session: bool,
    /// Delete the session.
    pub end_session: bool,
    /// The trusted-device cookie.
    pub trusted_device_cookie: CookieUpdate,
    /// Offer "name and trust this device" (after a 2FA sign-in, when policy and cap allow).
    pub offer_trust: bool,
    /// Offer a set of recovery codes first: the sign-in has just set up the user's first
    /// second factor.
    pub offer_recovery_codes: bool,
}

impl LoginReport {
    /// A refusal that ends the session: the browser is anonymous afterwards.
    pub fn ended(refusal: Refusal) -> Self {
        Self {
            state: LoginState::Anonymous,
            outcome: Outcome::Refused(refusal),
            renew_session: false,
            end_session: true,
            trusted_device_cookie: CookieUpdate::Keep,
            offer_trust: false,
            offer_recovery_codes: false,
        }
    }

    /// The report of a set-up login that has just enrolled its first factor: when it
    /// signed in, recovery codes are offered before anything else.
    pub(crate) fn first_factor_set_up(mut self) -> Self {
        self.offer_recovery_codes = matches!(self.outcome, Outcome::SignedIn { .. });
        self
    }

    /// A refusal that changes nothing: the state stays as it was.
    pub fn refused(state: &LoginState, refusal: Refusal) -> Self {
        Self {
            state: state.clone(),
            outcome: Outcome::Refused(refusal),
            renew_session: false,
            end_session: false,
            trusted_device_cookie: CookieUpdate::Keep,
            offer_trust: false,
            offer_recovery_codes: false,
        }
    }
}
