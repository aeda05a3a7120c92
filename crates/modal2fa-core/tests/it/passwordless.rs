//! Passwordless sign-in with a discoverable passkey, driven by the software
//! authenticator. It keeps no resident credentials, so each test does what a
//! discoverable authenticator does by itself: it picks the credential (here: the one the
//! test registered) and answers with the user handle it was registered with (the handle
//! is not signed; the server must check it against the credential's owner).

use std::sync::Arc;

use data_encoding::BASE64URL_NOPAD;
use modal2fa_core::error::Forbidden;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::AuthMethod;
use modal2fa_core::policy::UserVerification;
use modal2fa_core::ports::UserStore;
use modal2fa_core::services::{Ceremony, LoginReport};
use modal2fa_core::{AuthPolicy, DefaultPolicy, ServiceError, User, UserId};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::passkeys::{ORIGIN, origin, passkey_world, registering};
use crate::world::{PASSWORD, World, ctx};

/// Passkeys verify the user; passwordless on (the default hook).
struct Verifying;
impl AuthPolicy for Verifying {
    fn passkey_user_verification(&self, _u: &User) -> UserVerification {
        UserVerification::Required
    }
}

/// As [`Verifying`], with the passwordless hook saying no.
struct NoPasswordless;
impl AuthPolicy for NoPasswordless {
    fn passkey_user_verification(&self, _u: &User) -> UserVerification {
        UserVerification::Required
    }
    fn allow_passwordless(&self, _user: Option<&User>) -> bool {
        false
    }
}

/// A registered passkey: its owner, its credential id and the user handle it was
/// registered with.
struct Registered {
    owner: UserId,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
}

/// `name`, signed in with the password (no factor yet), registers `key`.
async fn registered(w: &World, name: &str, key: &mut SoftPasskey) -> Registered {
    let (signed_in, ceremony) = registering(w, name).await;
    let owner = signed_in.user_id().unwrap();
    let options: CreationChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
    let user_handle = options.public_key.user.id.to_vec();
    let answer = key.do_registration(origin(ORIGIN), options).unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let stored = w
        .auth
        .passkeys
        .finish_registration(&signed_in, &ceremony.state, &answer, "", &ctx())
        .await
        .unwrap();
    Registered {
        owner,
        credential_id: stored.credential_id,
        user_handle,
    }
}

/// The authenticator's answer to a passwordless ceremony, for `passkey`, claiming
/// `handle`; with `verify` false the authenticator is asked for presence only.
fn answer_as(
    key: &mut SoftPasskey,
    ceremony: &Ceremony,
    passkey: &Registered,
    handle: &[u8],
    verify: bool,
) -> String {
    let mut options: Value = serde_json::from_str(&ceremony.options).unwrap();
    assert_eq!(
        options["publicKey"]["allowCredentials"],
        json!([]),
        "a passwordless ceremony names no credential"
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    options["publicKey"]["allowCredentials"] =
        json!([{"type": "public-key", "id": BASE64URL_NOPAD.encode(&passkey.credential_id)}]);
    if !verify {
        options["publicKey"]["userVerification"] = json!("discouraged");
    }
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = key.do_authentication(origin(ORIGIN), options).unwrap();
    let mut answer = serde_json::to_value(&answer).unwrap();
    answer["response"]["userHandle"] = json!(BASE64URL_NOPAD.encode(handle));
    answer.to_string()
}

async fn submit(w: &World, ceremony: &Ceremony, answer: &str) -> LoginReport {
    w.auth
        .passkeys
        .submit_passwordless(&LoginState::Anonymous, &ceremony.state, answer, &ctx())
        .await
        .unwrap()
}

fn rejected(r: &LoginReport) {
    assert_eq!(r.outcome, Outcome::Refused(Refusal::PasskeyRejected));
    assert_eq!(r.state, LoginState::Anonymous);
}

#[tokio::test]
async fn a_verified_discoverable_passkey_signs_in_alone_with_method_passkey() {
    let w = passkey_world(Arc::new(Verifying));
    let mut key = SoftPasskey::new(true);
    let passkey = registered(&w, "alice", &mut key).await;
    assert!(w.auth.passkeys.passwordless_offered());
    let ceremony = w.auth.passkeys.begin_passwordless().unwrap();
    let answer = answer_as(&mut key, &ceremony, &passkey, &passkey.user_handle, true);
    let r = submit(&w, &ceremony, &answer).await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Passkey
        }
    );
    assert!(r.renew_session, "a sign-in gets a new session id");
    let stored = w.auth.passkeys.list(&r.state).await.unwrap();
    assert_eq!(
        r.state.signed_in().and_then(|s| s.passkey),
        Some(stored[0].id)
    );
    assert!(stored[0].last_used_at.is_some());
    // A passwordless session may manage factors (it proved two) without a step-up.
    assert!(w.auth.passkeys.begin_registration(&r.state).await.is_ok());
}

#[tokio::test]
async fn a_replayed_passwordless_answer_is_refused() {
    let w = passkey_world(Arc::new(Verifying));
    let mut key = SoftPasskey::new(true);
    let passkey = registered(&w, "alice", &mut key).await;
    let ceremony = w.auth.passkeys.begin_passwordless().unwrap();
    let answer = answer_as(&mut key, &ceremony, &passkey, &passkey.user_handle, true);
    let first = submit(&w, &ceremony, &answer).await;
    assert!(matches!(first.outcome, Outcome::SignedIn { .. }));
    // The same answer again (with the same kept state, as a copied request would).
    rejected(&submit(&w, &ceremony, &answer).await);
    // And with a new ceremony's state: another challenge.
    let other = w.auth.passkeys.begin_passwordless().unwrap();
    rejected(&submit(&w, &other, &answer).await);
}

#[tokio::test]
async fn a_touch_only_passkey_is_a_second_factor_and_never_signs_in_alone() {
    // Registered under the default policy: presence only, no user verification.
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    let passkey = registered(&w, "alice", &mut key).await;
    let ceremony = w.auth.passkeys.begin_passwordless().unwrap();
    // The authenticator verifies the user this time; the credential was enrolled without.
    let answer = answer_as(&mut key, &ceremony, &passkey, &passkey.user_handle, true);
    rejected(&submit(&w, &ceremony, &answer).await);
}

#[tokio::test]
async fn a_passwordless_assertion_without_user_verification_is_refused() {
    let w = passkey_world(Arc::new(Verifying));
    let mut key = SoftPasskey::new(true);
    let passkey = registered(&w, "alice", &mut key).await;
    let ceremony = w.auth.passkeys.begin_passwordless().unwrap();
    let answer = answer_as(&mut key, &ceremony, &passkey, &passkey.user_handle, false);
    rejected(&submit(&w, &ceremony, &answer).await);
}

#[tokio::test]
async fn a_passkey_answering_with_another_accounts_user_handle_is_refused() {
    let w = passkey_world(Arc::new(Verifying));
    let (mut alices, mut bobs) = (SoftPasskey::new(true), SoftPasskey::new(true));
    let alice = registered(&w, "alice", &mut alices).await;
    let bob = registered(&w, "bob", &mut bobs).await;
    let ceremony = w.auth.passkeys.begin_passwordless().unwrap();
    // alice's credential, claiming to be bob's.
    let answer = answer_as(&mut alices, &ceremony, &alice, &bob.user_handle, true);
    rejected(&submit(&w, &ceremony, &answer).await);
    // A handle of no one.
    let ceremony = w.auth.passkeys.begin_passwordless().unwrap();
    let answer = answer_as(&mut alices, &ceremony, &alice, &[7; 16], true);
    rejected(&submit(&w, &ceremony, &answer).await);
}

#[tokio::test]
async fn a_passwordless_ceremony_expires_and_a_second_factor_ceremony_is_not_one() {
    let w = passkey_world(Arc::new(Verifying));
    let mut key = SoftPasskey::new(true);
    let passkey = registered(&w, "alice", &mut key).await;
    let ceremony = w.auth.passkeys.begin_passwordless().unwrap();
    let answer = answer_as(&mut key, &ceremony, &passkey, &passkey.user_handle, true);
    w.mem.clock.advance(time::Duration::minutes(6));
    let r = submit(&w, &ceremony, &answer).await;
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CeremonyExpired));
    // The second-factor ceremony of a pending login is not a passwordless one.
    let pending = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await
        .state;
    let second_factor = w
        .auth
        .passkeys
        .begin_authentication(&pending)
        .await
        .unwrap();
    let r = submit(&w, &second_factor, &answer).await;
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CeremonyExpired));
}

#[tokio::test]
async fn the_policy_hook_turns_passwordless_off() {
    let w = passkey_world(Arc::new(NoPasswordless));
    assert!(!w.auth.passkeys.passwordless_offered());
    assert!(matches!(
        w.auth.passkeys.begin_passwordless(),
        Err(ServiceError::Forbidden(Forbidden::PasswordlessDisabled))
    ));
}

#[tokio::test]
async fn a_deactivated_owners_passkey_does_not_sign_in() {
    let w = passkey_world(Arc::new(Verifying));
    let mut key = SoftPasskey::new(true);
    let passkey = registered(&w, "alice", &mut key).await;
    w.mem.users.set_active(passkey.owner, false).await.unwrap();
    let ceremony = w.auth.passkeys.begin_passwordless().unwrap();
    let answer = answer_as(&mut key, &ceremony, &passkey, &passkey.user_handle, true);
    rejected(&submit(&w, &ceremony, &answer).await);
}

/// Passkeys verify the user when they can.
struct Preferring;
impl AuthPolicy for Preferring {
    fn passkey_user_verification(&self, _u: &User) -> UserVerification {
        UserVerification::Preferred
    }
}

/// The registration options alice's signed-in session gets under `policy`.
async fn registration_options(policy: Arc<dyn AuthPolicy>) -> Value {
    let w = passkey_world(policy);
    let (_, ceremony) = registering(&w, "alice").await;
    serde_json::from_str::<Value>(&ceremony.options).unwrap()["publicKey"].clone()
}

#[tokio::test]
async fn the_registration_options_follow_the_user_verification_and_resident_key_hooks() {
    // Touch-only (the default): a security key, nothing resident, no verification.
    let o = registration_options(Arc::new(DefaultPolicy)).await;
    let sel = &o["authenticatorSelection"];
    assert_eq!(sel["userVerification"], "discouraged");
    assert_eq!(sel["residentKey"], "discouraged");
    assert_eq!(o["hints"], json!(["security-key"]));
    assert!(o["extensions"].get("credentialProtectionPolicy").is_none());
    // Preferred: a discoverable passkey if the authenticator can, with no hint steering
    // away from phones and platform authenticators, and no protection that would lock a
    // PIN-less key out of its own credential.
    let o = registration_options(Arc::new(Preferring)).await;
    let sel = &o["authenticatorSelection"];
    assert_eq!(sel["userVerification"], "preferred");
    assert_eq!(sel["residentKey"], "preferred");
    assert!(o.get("hints").is_none_or(Value::is_null), "{o}");
    assert!(o["extensions"].get("credentialProtectionPolicy").is_none());
    // Required: the browser is told, and the credential is protected by verification.
    let o = registration_options(Arc::new(Verifying)).await;
    let sel = &o["authenticatorSelection"];
    assert_eq!(sel["userVerification"], "required");
    assert_eq!(
        o["extensions"]["credentialProtectionPolicy"],
        "userVerificationRequired"
    );
}
