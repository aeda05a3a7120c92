//! The reference server's policy: the default hooks, with passkey user verification and
//! passwordless sign-in from `[webauthn]`.

use modal2fa_core::policy::UserVerification;
use modal2fa_core::{AuthPolicy, User};

use crate::config::Config;

/// [`modal2fa_core::DefaultPolicy`] with the `[webauthn]` settings.
#[derive(Debug, Clone, Copy)]
pub struct ServerPolicy {
    user_verification: UserVerification,
    passwordless: bool,
}

impl ServerPolicy {
    /// The policy `config` describes.
    pub fn new(config: &Config) -> Self {
        Self {
            user_verification: config.webauthn.user_verification.into(),
            passwordless: config.webauthn.passwordless,
        }
    }
}

impl AuthPolicy for ServerPolicy {
    fn passkey_user_verification(&self, _user: &User) -> UserVerification {
        self.user_verification
    }

    fn allow_passwordless(&self, _user: Option<&User>) -> bool {
        self.passwordless
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webauthn_section_sets_user_verification_and_passwordless() {
        let mut config = Config::default();
        let p = ServerPolicy::new(&config);
        assert!(p.allow_passwordless(None));
        assert_eq!(p.user_verification, UserVerification::Discouraged);
        config.webauthn.user_verification = crate::config::webauthn::Verification::Preferred;
        config.webauthn.passwordless = false;
        let p = ServerPolicy::new(&config);
        assert!(!p.allow_passwordless(None));
        assert_eq!(p.user_verification, UserVerification::Preferred);
    }
}
