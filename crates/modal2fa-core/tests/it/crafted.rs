//! A hand-made authenticator for the answers the software authenticator never gives:
//! user presence off, a counter that stays 0, backup state without backup eligibility, a
//! credential id over 1023 bytes, the same credential twice. It signs what a WebAuthn
//! authenticator signs (ECDSA P-256 over the authenticator data and the client data's
//! hash) with flags, counter and id of the test's choosing; every check of what it sends
//! is webauthn-rs's, behind `PasskeyService`. Test code only: nothing here is used to
//! verify anything.

use std::sync::Arc;

use ciborium::Value as Cbor;
use data_encoding::BASE64URL_NOPAD;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::AuthMethod;
use modal2fa_core::services::Ceremony;
use modal2fa_core::{DefaultPolicy, ServiceError};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::passkeys::{ORIGIN, passkey_world, pending, registering};
use crate::world::{World, ctx};

/// User present.
const UP: u8 = 0x01;
/// Backup eligible.
const BE: u8 = 0x08;
/// Backed up.
const BS: u8 = 0x10;
/// Attested credential data follows.
const AT: u8 = 0x40;

struct Crafted {
    key: SigningKey,
    id: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

fn client_data(kind: &str, challenge: &[u8]) -> Vec<u8> {
    json!({"type": kind, "challenge": b64(challenge), "origin": ORIGIN, "crossOrigin": false})
        .to_string()
        .into_bytes()
}

impl Crafted {
    fn new(id: Vec<u8>) -> Self {
        Self {
            key: SigningKey::from_slice(&[7u8; 32]).unwrap(),
            id,
        }
    }

    /// The COSE form of the public key (EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let int = |i: i64| Cbor::Integer(i.into());
        let map = Cbor::Map(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Cbor::Bytes(bytes[1..33].to_vec())),
            (int(-3), Cbor::Bytes(bytes[33..65].to_vec())),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&map, &mut out).unwrap();
        out
    }

    /// The answer to a registration ceremony, with `flags`.
    fn register(&self, ceremony: &Ceremony, flags: u8) -> String {
        let options: CreationChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
        let o = options.public_key;
        let mut auth_data = Sha256::digest(o.rp.id.as_bytes()).to_vec();
        auth_data.push(flags | AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0; 16]);
        auth_data.extend_from_slice(&u16::try_from(self.id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&self.id);
        auth_data.extend_from_slice(&self.cose_key());
        let attestation = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let mut attestation_object = Vec::new();
        ciborium::into_writer(&attestation, &mut attestation_object).unwrap();
        json!({
            "id": b64(&self.id),
            "rawId": b64(&self.id),
            "response": {
                "attestationObject": b64(&attestation_object),
                "clientDataJSON": b64(&client_data("webauthn.create", &o.challenge)),
            },
            "type": "public-key",
            "extensions": {},
        })
        .to_string()
    }

    /// The answer to a sign-in ceremony, with `flags` and `counter`.
    fn assert(&self, ceremony: &Ceremony, flags: u8, counter: u32) -> String {
        let options: RequestChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
        let o = options.public_key;
        let mut auth_data = Sha256::digest(o.rp_id.as_bytes()).to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let client = client_data("webauthn.get", &o.challenge);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client));
        let signature: Signature = self.key.sign(&signed);
        let value: Value = json!({
            "id": b64(&self.id),
            "rawId": b64(&self.id),
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": null,
            },
            "type": "public-key",
            "extensions": {},
        });
        value.to_string()
    }
}

async fn registered(w: &World, key: &Crafted, flags: u8) -> Result<LoginState, ServiceError> {
    let (signed_in, ceremony) = registering(w, "alice").await;
    let answer = key.register(&ceremony, flags);
    w.auth
        .passkeys
        .finish_registration(&signed_in, &ceremony.state, &answer, "Crafted", &ctx())
        .await
        .map(|_| signed_in)
}

async fn sign_in(w: &World, key: &Crafted, flags: u8, counter: u32) -> Outcome {
    let (state, ceremony) = pending(w).await;
    let answer = key.assert(&ceremony, flags, counter);
    w.auth
        .passkeys
        .submit_passkey(&state, &ceremony.state, &answer, &ctx())
        .await
        .unwrap()
        .outcome
}

const SIGNED_IN: Outcome = Outcome::SignedIn {
    method: AuthMethod::TwoFactor,
};

#[tokio::test]
async fn an_assertion_without_user_presence_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let key = Crafted::new(vec![1; 32]);
    registered(&w, &key, UP).await.unwrap();
    assert_eq!(
        sign_in(&w, &key, 0, 1).await,
        Outcome::Refused(Refusal::PasskeyRejected)
    );
    // The same authenticator with the bit set signs in: the refusal was the bit.
    assert_eq!(sign_in(&w, &key, UP, 2).await, SIGNED_IN);
}

#[tokio::test]
async fn a_counter_that_stays_zero_is_accepted_as_synced_passkeys_keep_it() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let key = Crafted::new(vec![2; 32]);
    registered(&w, &key, UP | BE | BS).await.unwrap();
    assert_eq!(sign_in(&w, &key, UP | BE | BS, 0).await, SIGNED_IN);
    assert_eq!(sign_in(&w, &key, UP | BE | BS, 0).await, SIGNED_IN);
}

#[tokio::test]
async fn a_counter_that_grows_is_stored_and_one_that_repeats_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let key = Crafted::new(vec![3; 32]);
    registered(&w, &key, UP).await.unwrap();
    assert_eq!(sign_in(&w, &key, UP, 5).await, SIGNED_IN);
    for again in [5, 3] {
        assert_eq!(
            sign_in(&w, &key, UP, again).await,
            Outcome::Refused(Refusal::PasskeyRejected),
            "counter {again} after 5"
        );
    }
    assert_eq!(sign_in(&w, &key, UP, 6).await, SIGNED_IN);
}

#[tokio::test]
async fn backed_up_without_being_backup_eligible_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let key = Crafted::new(vec![4; 32]);
    let refused = registered(&w, &key, UP | BS).await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Refused(Refusal::PasskeyRejected))
        ),
        "{refused:?}"
    );
    // At sign-in too: registered eligible-and-backed-up, then claiming backed up alone.
    let w = passkey_world(Arc::new(DefaultPolicy));
    let key = Crafted::new(vec![5; 32]);
    registered(&w, &key, UP | BE | BS).await.unwrap();
    assert_eq!(
        sign_in(&w, &key, UP | BS, 1).await,
        Outcome::Refused(Refusal::PasskeyRejected)
    );
}

#[tokio::test]
async fn a_credential_id_over_1023_bytes_is_refused() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let refused = registered(&w, &Crafted::new(vec![6; 1024]), UP).await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Refused(Refusal::PasskeyRejected))
        ),
        "{refused:?}"
    );
    // 1023 is the limit, and allowed.
    let w = passkey_world(Arc::new(DefaultPolicy));
    registered(&w, &Crafted::new(vec![6; 1023]), UP)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_credential_registered_already_is_not_registered_again() {
    let w = passkey_world(Arc::new(DefaultPolicy));
    let key = Crafted::new(vec![8; 32]);
    let signed_in = registered(&w, &key, UP).await.unwrap();
    // Signed in with it, alice asks for another registration: the key is excluded, and
    // an authenticator that registers it anyway is refused.
    let two_factor = {
        let (state, ceremony) = pending(&w).await;
        let answer = key.assert(&ceremony, UP, 1);
        w.auth
            .passkeys
            .submit_passkey(&state, &ceremony.state, &answer, &ctx())
            .await
            .unwrap()
            .state
    };
    let again = w
        .auth
        .passkeys
        .begin_registration(&two_factor)
        .await
        .unwrap();
    let answer = key.register(&again, UP);
    let refused = w
        .auth
        .passkeys
        .finish_registration(&two_factor, &again.state, &answer, "Twice", &ctx())
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(w.auth.passkeys.list(&signed_in).await.unwrap().len(), 1);
}
