//! Answers a WebAuthn ceremony must refuse, beyond those of `passkeys.rs`: a `type`
//! swapped between registration and sign-in, an authenticator that signed for another RP
//! ID, another user's credential; and the challenge's size.

use std::sync::Arc;

use data_encoding::{BASE64URL, BASE64URL_NOPAD};
use modal2fa_core::DefaultPolicy;
use modal2fa_core::ServiceError;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use serde_json::Value;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::passkeys::{
    ORIGIN, alice_with_a_key, assert_with, origin, passkey_world, pending, register, registering,
};
use crate::world::{PASSWORD, ctx};

/// `answer` with the `type` of its client data replaced by `to`.
fn with_client_data_type(answer: &str, to: &str) -> String {
    let mut v: Value = serde_json::from_str(answer).unwrap();
    let field = &mut v["response"]["clientDataJSON"];
    let text = field.as_str().unwrap().to_owned();
    let raw = BASE64URL_NOPAD
        .decode(text.trim_end_matches('=').as_bytes())
        .or_else(|_| BASE64URL.decode(text.as_bytes()))
        .unwrap();
    let mut client: Value = serde_json::from_slice(&raw).unwrap();
    client["type"] = Value::String(to.to_owned());
    *field = Value::String(BASE64URL_NOPAD.encode(client.to_string().as_bytes()));
    v.to_string()
}

#[tokio::test]
async fn a_challenge_has_at_least_sixteen_random_bytes_and_differs_each_time() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    alice_with_a_key(&w, &mut key).await;
    let (state, first) = pending(&w).await;
    let second = w.auth.passkeys.begin_authentication(&state).await.unwrap();
    let challenge = |c: &modal2fa_core::services::Ceremony| {
        let o: RequestChallengeResponse = serde_json::from_str(&c.options).unwrap();
        o.public_key.challenge.to_vec()
    };
    assert!(challenge(&first).len() >= 16);
    assert_ne!(challenge(&first), challenge(&second));
}

#[tokio::test]
async fn a_sign_in_answer_whose_type_says_create_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    alice_with_a_key(&w, &mut key).await;
    let (state, ceremony) = pending(&w).await;
    let answer = assert_with(&mut key, &ceremony, ORIGIN);
    let swapped = with_client_data_type(&answer, "webauthn.create");
    let r = w
        .auth
        .passkeys
        .submit_passkey(&state, &ceremony.state, &swapped, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::PasskeyRejected));
    // Something that is no assertion at all.
    let (state, ceremony) = pending(&w).await;
    let r = w
        .auth
        .passkeys
        .submit_passkey(&state, &ceremony.state, "{\"id\":\"x\"}", &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::PasskeyRejected));
}

#[tokio::test]
async fn a_registration_answer_whose_type_says_get_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let (signed_in, ceremony) = registering(&w, "alice").await;
    let mut key = SoftPasskey::new(true);
    let answer = register(&mut key, &ceremony, ORIGIN);
    let swapped = with_client_data_type(&answer, "webauthn.get");
    let refused = w
        .auth
        .passkeys
        .finish_registration(&signed_in, &ceremony.state, &swapped, "Key", &ctx())
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Refused(Refusal::PasskeyRejected))
        ),
        "{refused:?}"
    );
    assert!(w.auth.passkeys.list(&signed_in).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_authenticator_that_signed_for_another_rp_id_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let (signed_in, ceremony) = registering(&w, "alice").await;
    // The authenticator is told another RP ID (straight, past the client's own check of
    // the RP ID against the origin): its rpIdHash is SHA-256 of that one, while the
    // client data still carries our origin.
    let mut options: CreationChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
    options.public_key.rp.id = "example.org".into();
    let mut key = SoftPasskey::new(true);
    let answer = key
        .perform_register(origin(ORIGIN), options.public_key, 60_000)
        .unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let refused = w
        .auth
        .passkeys
        .finish_registration(&signed_in, &ceremony.state, &answer, "Key", &ctx())
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Refused(Refusal::PasskeyRejected))
        ),
        "{refused:?}"
    );

    // The same at sign-in, with a key registered properly.
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut key = SoftPasskey::new(true);
    alice_with_a_key(&w, &mut key).await;
    let (state, ceremony) = pending(&w).await;
    let mut options: RequestChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
    options.public_key.rp_id = "example.org".into();
    let answer = key
        .perform_auth(origin(ORIGIN), options.public_key, 60_000)
        .unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let r = w
        .auth
        .passkeys
        .submit_passkey(&state, &ceremony.state, &answer, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::PasskeyRejected));
}

#[tokio::test]
async fn another_users_credential_does_not_answer_for_alice() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let mut alices = SoftPasskey::new(true);
    alice_with_a_key(&w, &mut alices).await;
    // bob registers a key of his own.
    w.user("bob").await;
    let bob = w
        .password(&LoginState::Anonymous, "bob", PASSWORD, None)
        .await
        .state;
    let ceremony = w.auth.passkeys.begin_registration(&bob).await.unwrap();
    let mut bobs = SoftPasskey::new(true);
    let answer = register(&mut bobs, &ceremony, ORIGIN);
    let bob_key = w
        .auth
        .passkeys
        .finish_registration(&bob, &ceremony.state, &answer, "Bob's", &ctx())
        .await
        .unwrap();
    // alice's pending login; bob's key answers, its credential slipped into the list.
    let (state, ceremony) = pending(&w).await;
    let mut options: Value = serde_json::from_str(&ceremony.options).unwrap();
    options["publicKey"]["allowCredentials"] = serde_json::json!([
        {"type": "public-key", "id": BASE64URL_NOPAD.encode(&bob_key.credential_id)}
    ]);
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = bobs.do_authentication(origin(ORIGIN), options).unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let r = w
        .auth
        .passkeys
        .submit_passkey(&state, &ceremony.state, &answer, &ctx())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Refused(Refusal::PasskeyRejected));
}
