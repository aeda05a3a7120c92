//! Passkeys as a second factor, every ceremony completed by webauthn-authenticator-rs's
//! software authenticator against the services: registration, sign-in, and the answers
//! that must be refused.

use std::sync::Arc;

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, SecurityEventKind};
use modal2fa_core::services::{Ceremony, LoginReport};
use modal2fa_core::settings::RelyingParty;
use modal2fa_core::{AuthPolicy, DefaultPolicy, Modal2fa, ServerSecret, ServiceError, Settings};
use modal2fa_test_support::MemoryPorts;
use time::Duration;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::world::{PASSWORD, World, ctx, settings};

pub(crate) const ORIGIN: &str = "http://localhost:8080";

pub(crate) fn passkey_world(policy: Arc<dyn AuthPolicy>) -> World {
    let mem = MemoryPorts::new();
    let settings = Settings {
        relying_party: Some(RelyingParty::new("localhost", ORIGIN, "modal2fa tests").unwrap()),
        ..settings()
    };
    let auth = Modal2fa::new(
        mem.ports.clone(),
        policy,
        settings,
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    World { mem, auth }
}

pub(crate) fn origin(url: &str) -> Url {
    Url::parse(url).unwrap()
}

/// The authenticator's answer to a registration ceremony, as the browser would post it.
pub(crate) fn register(key: &mut SoftPasskey, ceremony: &Ceremony, at: &str) -> String {
    let options: CreationChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
    let answer = key.do_registration(origin(at), options).unwrap();
    serde_json::to_string(&answer).unwrap()
}

/// The authenticator's answer to a sign-in ceremony.
pub(crate) fn assert_with(key: &mut SoftPasskey, ceremony: &Ceremony, at: &str) -> String {
    let options: RequestChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
    let answer = key.do_authentication(origin(at), options).unwrap();
    serde_json::to_string(&answer).unwrap()
}

/// `name`, a new user signed in with the password (no factor yet), and a registration
/// ceremony begun for them.
pub(crate) async fn registering(w: &World, name: &str) -> (LoginState, Ceremony) {
    w.user(name).await;
    let signed_in = w
        .password(&LoginState::Anonymous, name, PASSWORD, None)
        .await
        .state;
    let ceremony = w
        .auth
        .passkeys
        .begin_registration(&signed_in)
        .await
        .unwrap();
    (signed_in, ceremony)
}

/// alice, signed in with her password (no factor yet), registers `key` as "YubiKey".
pub(crate) async fn alice_with_a_key(w: &World, key: &mut SoftPasskey) -> LoginState {
    let (signed_in, ceremony) = registering(w, "alice").await;
    let answer = register(key, &ceremony, ORIGIN);
    let stored = w
        .auth
        .passkeys
        .finish_registration(&signed_in, &ceremony.state, &answer, " YubiKey ", &ctx())
        .await
        .unwrap();
    assert_eq!(stored.name, "YubiKey");
    signed_in
}

/// alice's password step: the pending login and its passkey ceremony.
pub(crate) async fn pending(w: &World) -> (LoginState, Ceremony) {
    w.mem.clock.advance(Duration::seconds(1));
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
    assert!(
        matches!(&r.state, LoginState::PendingSecondFactor(p) if p.passkey),
        "the pending login offers the passkey"
    );
    let ceremony = w
        .auth
        .passkeys
        .begin_authentication(&r.state)
        .await
        .unwrap();
    (r.state, ceremony)
}

/// alice's password step, then `key`'s answer from `at` to its ceremony.
pub(crate) async fn sign_in_with(w: &World, key: &mut SoftPasskey, at: &str) -> LoginReport {
    let (state, ceremony) = pending(w).await;
    let answer = assert_with(key, &ceremony, at);
    w.auth
        .passkeys
        .submit_passkey(&state, &ceremony.state, &answer, &ctx())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_registered_key_is_the_second_factor_of_the_next_sign_in() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    let signed_in = alice_with_a_key(&w, &mut key).await;
    assert_eq!(w.notified(SecurityEventKind::PasskeyAdded).await, 1);
    let listed = w.auth.passkeys.list(&signed_in).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].credential_id.len() <= 1023);

    let r = sign_in_with(&w, &mut key, ORIGIN).await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::TwoFactor
        }
    );
}

#[tokio::test]
async fn an_answer_from_another_origin_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    alice_with_a_key(&w, &mut key).await;
    for other in [
        "http://localhost:8081",
        "https://localhost:8080",
        "https://evil.localhost:8080",
    ] {
        let r = sign_in_with(&w, &mut key, other).await;
        assert_eq!(
            r.outcome,
            Outcome::Refused(Refusal::PasskeyRejected),
            "{other}"
        );
    }
}

#[tokio::test]
async fn an_answer_to_another_ceremonys_challenge_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    alice_with_a_key(&w, &mut key).await;
    let (state, first) = pending(&w).await;
    let answer = assert_with(&mut key, &first, ORIGIN);
    // The answer to the first ceremony, posted with a second one's state (a replay).
    let second = w.auth.passkeys.begin_authentication(&state).await.unwrap();
    let r = w
        .auth
        .passkeys
        .submit_passkey(&state, &second.state, &answer, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::PasskeyRejected));
}

#[tokio::test]
async fn a_ceremony_expires_and_belongs_to_its_account() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    alice_with_a_key(&w, &mut key).await;
    let (state, ceremony) = pending(&w).await;
    let answer = assert_with(&mut key, &ceremony, ORIGIN);
    w.mem.clock.advance(Duration::minutes(6));
    let late = w
        .auth
        .passkeys
        .submit_passkey(&state, &ceremony.state, &answer, &ctx())
        .await
        .unwrap();
    assert_eq!(late.outcome, Outcome::Refused(Refusal::CeremonyExpired));

    // bob's pending login cannot finish with alice's ceremony.
    w.user("bob").await;
    let bob = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    let mut bobs_key = SoftPasskey::new(true);
    let bob_ceremony = w
        .auth
        .passkeys
        .begin_registration(&bob.state)
        .await
        .unwrap();
    let bob_answer = register(&mut bobs_key, &bob_ceremony, ORIGIN);
    w.auth
        .passkeys
        .finish_registration(&bob.state, &bob_ceremony.state, &bob_answer, "", &ctx())
        .await
        .unwrap();
    let bob_pending = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await;
    let (_, alices) = pending(&w).await;
    let answer = assert_with(&mut key, &alices, ORIGIN);
    let r = w
        .auth
        .passkeys
        .submit_passkey(&bob_pending.state, &alices.state, &answer, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::CeremonyExpired));
}

#[tokio::test]
async fn a_second_key_needs_a_second_factor_session_and_the_first_is_excluded() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    let password_only = alice_with_a_key(&w, &mut key).await;
    // With a factor registered, the password-only session must step up first.
    assert!(matches!(
        w.auth.passkeys.begin_registration(&password_only).await,
        Err(ServiceError::StepUpRequired)
    ));
    let two_factor = sign_in_with(&w, &mut key, ORIGIN).await.state;
    let again = w
        .auth
        .passkeys
        .begin_registration(&two_factor)
        .await
        .unwrap();
    let options: CreationChallengeResponse = serde_json::from_str(&again.options).unwrap();
    let excluded: Vec<Vec<u8>> = options
        .public_key
        .exclude_credentials
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id.to_vec())
        .collect();
    let first = w.auth.passkeys.list(&two_factor).await.unwrap();
    assert_eq!(excluded, vec![first[0].credential_id.clone()]);
    let mut second_key = SoftPasskey::new(true);
    let answer = register(&mut second_key, &again, ORIGIN);
    w.auth
        .passkeys
        .finish_registration(&two_factor, &again.state, &answer, "Backup key", &ctx())
        .await
        .unwrap();
    let names: Vec<String> = w
        .auth
        .passkeys
        .list(&two_factor)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["YubiKey", "Backup key"]);
}

#[tokio::test]
async fn without_a_relying_party_passkeys_are_off() {
    let w = crate::world::world();
    w.user("alice").await;
    let signed_in = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await
        .state;
    assert!(!w.auth.passkeys.enabled());
    assert!(matches!(
        w.auth.passkeys.begin_registration(&signed_in).await,
        Err(ServiceError::Forbidden(
            modal2fa_core::error::Forbidden::PasskeysNotConfigured
        ))
    ));
}

#[test]
fn a_relying_party_needs_a_secure_origin_and_a_matching_id() {
    assert!(RelyingParty::new("localhost", "http://localhost:8080", "x").is_ok());
    assert!(RelyingParty::new("example.com", "https://login.example.com", "x").is_ok());
    assert!(RelyingParty::new("example.com", "http://example.com", "x").is_err());
    assert!(RelyingParty::new("other.org", "https://example.com", "x").is_err());
    assert!(RelyingParty::new("localhost", "not a url", "x").is_err());
}

/// Sets every `counter` field of a serialized credential to `to`.
fn set_counter(v: &mut serde_json::Value, to: u32) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "counter" {
                    *x = serde_json::json!(to);
                } else {
                    set_counter(x, to);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| set_counter(x, to)),
        _ => {}
    }
}

#[tokio::test]
async fn a_signature_counter_that_goes_backwards_is_refused_and_the_owner_told() {
    use modal2fa_core::ports::FactorStore;
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    let signed_in = alice_with_a_key(&w, &mut key).await;
    // The store has seen a higher counter than this authenticator will send: a clone.
    let stored = w.auth.passkeys.list(&signed_in).await.unwrap().remove(0);
    let mut json: serde_json::Value = serde_json::from_str(&stored.credential).unwrap();
    set_counter(&mut json, 1_000);
    w.mem
        .factors
        .update_webauthn_use(stored.id, 1_000, false, json.to_string(), w.auth.now())
        .await
        .unwrap();
    let r = sign_in_with(&w, &mut key, ORIGIN).await;
    assert_eq!(r.outcome, Outcome::Refused(Refusal::PasskeyRejected));
    assert_eq!(
        w.notified(SecurityEventKind::PasskeyCounterRegressed).await,
        1
    );
}
