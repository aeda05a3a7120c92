//! The one customisation object. Every hook has a working default; a host
//! overrides only what it needs. Appearance hooks (modal size, titles, CSS) belong to the
//! web layer.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};

use crate::client_ip::IpSet;
use crate::model::{AuthMethod, NameRules, RequestContext, SecurityEventKind, User};
use crate::ports::ExternalClaims;

/// WebAuthn user verification requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserVerification {
    /// Presence (touch) only; the original's behaviour and the default.
    #[default]
    Discouraged,
    /// Verify when the authenticator can.
    Preferred,
    /// Always verify (PIN or biometrics).
    Required,
}

/// WebAuthn resident (discoverable) key requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResidentKey {
    /// Not requested.
    #[default]
    Discouraged,
    /// Requested if possible.
    Preferred,
    /// Required.
    Required,
}

/// Authentication-method references that count as multi-factor in a Microsoft token.
pub const MFA_AMR: [&str; 6] = ["mfa", "otp", "fido", "hwk", "phr", "phh"];

/// Hooks deciding who may do what. Implement it on your own type and override methods.
pub trait AuthPolicy: Send + Sync {
    /// What a new username or address must look like when modal2fa creates an account or
    /// sets an address (default: [`NameRules::DJANGO`]). Sign-in is not bound by it: any
    /// name a store holds can sign in (see [`NameRules`]).
    fn name_rules(&self) -> NameRules {
        NameRules::DJANGO
    }

    /// Whether a user without a second factor may sign in with the password alone
    /// (default: yes, as in the original).
    fn user_2fa_optional(&self, _user: &User) -> bool {
        true
    }

    /// Whether 2FA applies to this request at all (default: yes).
    fn two_factor_enabled(&self, _request: &RequestContext) -> bool {
        true
    }

    /// Whether this user may sign in with a password (default: yes; `false` for SSO-only users).
    fn password_login_allowed(&self, _user: &User) -> bool {
        true
    }

    /// Whether the user may use passkeys (default: yes).
    fn allow_passkeys(&self, _user: &User) -> bool {
        true
    }

    /// Whether the user may use an authenticator app (default: yes).
    fn allow_totp(&self, _user: &User) -> bool {
        true
    }

    /// User verification for this user's passkeys (default: discouraged).
    fn passkey_user_verification(&self, _user: &User) -> UserVerification {
        UserVerification::Discouraged
    }

    /// Resident-key (discoverable credential) requirement for this user's passkeys: only
    /// a discoverable passkey can sign in without a username (default: `preferred` when
    /// [`Self::passkey_user_verification`] asks for verification, else `discouraged`, so a
    /// touch-only security key keeps its few resident slots).
    fn passkey_resident_key(&self, user: &User) -> ResidentKey {
        match self.passkey_user_verification(user) {
            UserVerification::Discouraged => ResidentKey::Discouraged,
            UserVerification::Preferred | UserVerification::Required => ResidentKey::Preferred,
        }
    }

    /// Whether a passkey alone may sign in (passwordless): with `None`, whether the login
    /// modal offers it at all (the "Sign in with a passkey" button and browser autofill);
    /// with the user a passkey named, whether that user may sign in so (default: yes).
    /// Whatever this says, only a passkey registered with user verification, whose
    /// assertion verified the user again, signs in alone.
    fn allow_passwordless(&self, _user: Option<&User>) -> bool {
        true
    }

    /// Whether the user may trust devices (default: yes).
    fn allowed_remember(&self, _user: &User) -> bool {
        true
    }

    /// How many trusted devices the user may keep (default: 2; the least recently used is evicted).
    fn max_trusted_devices(&self, _user: &User) -> usize {
        2
    }

    /// Whether failures from `ip` are exempt from the IP counter (default: the configured set).
    fn is_ip_excluded(&self, ip: IpAddr, configured: &IpSet) -> bool {
        configured.contains(ip)
    }

    /// Session methods that may manage second factors; others are sent through step-up
    /// (default: `2fa`, `microsoft` and `passkey` — a passwordless sign-in used a passkey
    /// with user verification, itself two factors).
    fn factor_management_methods(&self) -> Vec<AuthMethod> {
        vec![
            AuthMethod::TwoFactor,
            AuthMethod::Microsoft,
            AuthMethod::Passkey,
        ]
    }

    /// Session methods that pass the page guard `SecondFactorUser` of a web layer (the
    /// host's pages "behind 2FA"); others are sent through step-up (default: `2fa`,
    /// `microsoft` and `passkey`). Separate from [`Self::factor_management_methods`], so
    /// relaxing who may manage factors never weakens the host's page guards.
    fn page_guard_methods(&self) -> Vec<AuthMethod> {
        vec![
            AuthMethod::TwoFactor,
            AuthMethod::Microsoft,
            AuthMethod::Passkey,
        ]
    }

    /// Whether the user may use the user admin (default: superusers).
    fn can_manage_users(&self, user: &User) -> bool {
        user.is_superuser && user.is_active
    }

    /// Whether the user may use the security admin (default: superusers).
    fn can_manage_security(&self, user: &User) -> bool {
        user.is_superuser && user.is_active
    }

    /// Whether Microsoft sign-in may be used by this user (default: yes).
    fn microsoft_allowed(&self, _user: &User) -> bool {
        true
    }

    /// Whether guests (B2B) may sign in with Microsoft (default: no).
    fn microsoft_allow_guests(&self) -> bool {
        false
    }

    /// Whether the token describes a B2B guest: `acct == 1`; without `acct`, an `idp` that
    /// differs from `iss`.
    fn microsoft_is_guest(&self, claims: &ExternalClaims) -> bool {
        match claims.acct {
            Some(acct) => acct == 1,
            None => claims
                .idp
                .as_deref()
                .is_some_and(|idp| !idp.is_empty() && idp != claims.issuer),
        }
    }

    /// The local username a token maps to: `preferred_username`, else `email`, lower-cased.
    fn microsoft_username(&self, claims: &ExternalClaims) -> Option<String> {
        claims
            .preferred_username
            .as_deref()
            .or(claims.email.as_deref())
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
    }

    /// How recent `auth_time` must be for the sign-in to count as 2FA (default: 600 s).
    fn microsoft_freshness(&self) -> Duration {
        Duration::seconds(600)
    }

    /// Whether a Microsoft sign-in satisfies 2FA: an MFA-class `amr` and a fresh `auth_time`.
    fn microsoft_satisfies_2fa(&self, claims: &ExternalClaims, now: OffsetDateTime) -> bool {
        let mfa = claims.amr.iter().any(|m| MFA_AMR.contains(&m.as_str()));
        let fresh = claims.auth_time.is_some_and(|t| {
            t <= now + Duration::seconds(60) && now - t <= self.microsoft_freshness()
        });
        mfa && fresh
    }

    /// Whether the owner is emailed about this change (default: always).
    fn notify_security_change(&self, _user: &User, _kind: SecurityEventKind) -> bool {
        true
    }
}

/// The policy with every default.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

impl AuthPolicy for DefaultPolicy {}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn claims() -> ExternalClaims {
        ExternalClaims {
            tenant_id: "t".into(),
            object_id: "o".into(),
            issuer: "https://login.microsoftonline.com/t/v2.0".into(),
            preferred_username: Some("Alice@Example.com".into()),
            amr: vec!["pwd".into(), "mfa".into()],
            auth_time: Some(NOW - Duration::seconds(30)),
            ..Default::default()
        }
    }

    #[test]
    fn microsoft_guests_are_recognised_by_acct_then_by_idp() {
        let p = DefaultPolicy;
        assert!(!p.microsoft_is_guest(&claims()));
        assert!(p.microsoft_is_guest(&ExternalClaims {
            acct: Some(1),
            ..claims()
        }));
        assert!(!p.microsoft_is_guest(&ExternalClaims {
            acct: Some(0),
            idp: Some("https://sts.windows.net/other/".into()),
            ..claims()
        }));
        assert!(p.microsoft_is_guest(&ExternalClaims {
            idp: Some("https://sts.windows.net/other/".into()),
            ..claims()
        }));
        let c = claims();
        assert!(!p.microsoft_is_guest(&ExternalClaims {
            idp: Some(c.issuer.clone()),
            ..c
        }));
    }

    #[test]
    fn microsoft_usernames_are_lower_cased_with_email_as_fallback() {
        let p = DefaultPolicy;
        assert_eq!(
            p.microsoft_username(&claims()).as_deref(),
            Some("alice@example.com")
        );
        let c = ExternalClaims {
            preferred_username: None,
            email: Some("Bob@X.org".into()),
            ..claims()
        };
        assert_eq!(p.microsoft_username(&c).as_deref(), Some("bob@x.org"));
        let none = ExternalClaims {
            preferred_username: None,
            ..claims()
        };
        assert_eq!(p.microsoft_username(&none), None);
    }

    #[test]
    fn microsoft_satisfies_2fa_only_with_mfa_and_a_fresh_auth_time() {
        let p = DefaultPolicy;
        assert!(p.microsoft_satisfies_2fa(&claims(), NOW));
        assert!(!p.microsoft_satisfies_2fa(
            &ExternalClaims {
                amr: vec!["pwd".into()],
                ..claims()
            },
            NOW
        ));
        assert!(!p.microsoft_satisfies_2fa(
            &ExternalClaims {
                auth_time: Some(NOW - Duration::seconds(601)),
                ..claims()
            },
            NOW
        ));
        assert!(!p.microsoft_satisfies_2fa(
            &ExternalClaims {
                auth_time: None,
                ..claims()
            },
            NOW
        ));
        for m in MFA_AMR {
            assert!(p.microsoft_satisfies_2fa(
                &ExternalClaims {
                    amr: vec![m.into()],
                    ..claims()
                },
                NOW
            ));
        }
    }

    #[test]
    fn defaults_match_the_original_package() {
        let p = DefaultPolicy;
        let ctx = RequestContext::new("127.0.0.1".parse().unwrap(), "ua", "/");
        assert!(p.two_factor_enabled(&ctx));
        assert_eq!(
            p.factor_management_methods(),
            vec![
                AuthMethod::TwoFactor,
                AuthMethod::Microsoft,
                AuthMethod::Passkey
            ]
        );
        assert!(!p.microsoft_allow_guests());
        assert!(p.is_ip_excluded(
            "10.0.0.1".parse().unwrap(),
            &IpSet::parse(&["10.0.0.0/8"]).unwrap()
        ));
    }
}
