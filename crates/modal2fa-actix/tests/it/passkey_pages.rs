//! The passkey pages over HTTP with the software authenticator: renaming and removing a
//! passkey from "Passkeys & trusted devices" (the last factor only after a confirmation,
//! and the session established with it ends), a passkey as the first factor of a set-up
//! login followed by the recovery-codes offer, and passwordless sign-in from the login
//! modal.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use modal2fa_core::policy::UserVerification;
use modal2fa_core::{AuthPolicy, User};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use modal2fa_actix::testing::TestResponse;

use crate::harness::{Browser, PASSWORD, between, browser};

fn origin() -> Url {
    Url::parse("http://localhost:8080").unwrap()
}

/// 2FA required; passkeys verify the user (so they may sign in alone).
struct Verifying;
impl AuthPolicy for Verifying {
    fn user_2fa_optional(&self, _u: &User) -> bool {
        false
    }
    fn passkey_user_verification(&self, _u: &User) -> UserVerification {
        UserVerification::Required
    }
}

/// Begins a registration and posts `key`'s answer, named `name`: the response, the user
/// handle the key was registered with, and its credential id (base64url).
async fn register_at<S, B>(
    b: &mut Browser<S>,
    key: &mut SoftPasskey,
    name: &str,
) -> (TestResponse, Vec<u8>, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let options = b.post("/auth/passkeys/register/options/", &[]).await;
    let options: CreationChallengeResponse =
        serde_json::from_str(&options.body).unwrap_or_else(|_| panic!("{}", options.body));
    let handle = options.public_key.user.id.to_vec();
    let answer = key.do_registration(origin(), options).unwrap();
    let id = answer.id.clone();
    let answer = serde_json::to_string(&answer).unwrap();
    let done = b
        .post(
            "/auth/passkeys/register/",
            &[("response", &answer), ("name", name)],
        )
        .await;
    (done, handle, id)
}

/// The password, then `key` as the second factor.
async fn sign_in_with_key<S, B>(b: &mut Browser<S>, key: &mut SoftPasskey)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let r = b.login(PASSWORD).await;
    assert!(r.body.contains("Use your passkey"), "{}", r.body);
    let options = b.post("/auth/2fa/passkey/options/", &[]).await;
    let options: RequestChallengeResponse = serde_json::from_str(&options.body).unwrap();
    let answer = key.do_authentication(origin(), options).unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let r = b.post("/auth/2fa/passkey/", &[("response", &answer)]).await;
    assert!(r.body.contains("Trust this device"), "{}", r.body);
}

#[actix_web::test]
async fn a_passkey_is_renamed_and_removed_from_the_devices_modal_the_last_only_when_confirmed() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    let mut key = SoftPasskey::new(true);
    let (done, ..) = register_at(&mut b, &mut key, "YubiKey").await;
    assert_eq!(done.header("HX-Refresh"), Some("true"), "{}", done.body);
    b.logout().await;
    sign_in_with_key(&mut b, &mut key).await;

    let list = b.get("/auth/devices/").await;
    let id = between(&list.body, "/auth/passkeys/", "/rename/").to_owned();
    assert!(id.parse::<i64>().is_ok(), "{}", list.body);
    let renamed = b
        .post(
            &format!("/auth/passkeys/{id}/rename/"),
            &[("name", "Blue key")],
        )
        .await;
    assert!(
        renamed.body.contains("value=\"Blue key\""),
        "{}",
        renamed.body
    );
    let empty = b
        .post(&format!("/auth/passkeys/{id}/rename/"), &[("name", " ")])
        .await;
    assert!(empty.body.contains("Name is required."), "{}", empty.body);

    let asked = b.post(&format!("/auth/passkeys/{id}/remove/"), &[]).await;
    assert!(
        asked.body.contains("is your only second factor"),
        "{}",
        asked.body
    );
    assert!(asked.body.contains("Blue key"));
    // Not removed yet.
    assert!(b.get("/auth/devices/").await.body.contains("Blue key"));
    let removed = b
        .post(
            &format!("/auth/passkeys/{id}/remove/"),
            &[("confirm", "yes")],
        )
        .await;
    // This session was established with it: it ended with it.
    assert_eq!(removed.header("HX-Redirect"), Some("/"), "{}", removed.body);
    let after = b.get("/auth/devices/").await;
    assert!(after.body.contains("name=\"password\""), "{}", after.body);
}

#[actix_web::test]
async fn a_set_up_login_sets_up_a_passkey_then_offers_recovery_codes() {
    let mut b = browser!(0, None::<modal2fa_sea_orm::SeaOrmStore>, false, Verifying);
    let choice = b.login(PASSWORD).await;
    assert!(choice.body.contains("Set up a passkey"), "{}", choice.body);
    let mut key = SoftPasskey::new(true);
    let (done, ..) = register_at(&mut b, &mut key, "Laptop").await;
    assert!(
        done.body.contains("Your second factor is set up"),
        "{}",
        done.body
    );
    assert!(done.body.contains("Not now"));
    let codes = b
        .post(
            "/auth/recovery-codes/",
            &[("next", "/protected"), ("after", "trust")],
        )
        .await;
    assert_eq!(codes.header("cache-control"), Some("no-store"));
    assert!(
        codes
            .body
            .contains("href=\"/auth/trust-device/?next=/protected\""),
        "{}",
        codes.body
    );
    assert_eq!(codes.body.matches("<li class=\"col\">").count(), 10);
}

#[actix_web::test]
async fn the_login_modal_offers_passwordless_and_a_verified_passkey_signs_in_alone() {
    let mut b = browser!(0, None::<modal2fa_sea_orm::SeaOrmStore>, false, Verifying);
    let modal = b.get("/auth/login/").await;
    assert!(modal.body.contains("autocomplete=\"username webauthn\""));
    assert!(modal.body.contains("Sign in with a passkey"));
    // alice sets up a passkey as her first factor, and signs out.
    b.login(PASSWORD).await;
    let mut key = SoftPasskey::new(true);
    let (_, handle, credential_id) = register_at(&mut b, &mut key, "Laptop").await;
    b.logout().await;

    let options = b.post("/auth/passkey/options/", &[]).await;
    assert_eq!(options.header("cache-control"), Some("no-store"));
    let mut options: Value = serde_json::from_str(&options.body).unwrap();
    assert_eq!(options["mediation"], "conditional");
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    // What a discoverable authenticator does by itself: pick its credential, and answer
    // with the user handle it was registered with.
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": credential_id}]);
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = key.do_authentication(origin(), options).unwrap();
    let mut answer = serde_json::to_value(&answer).unwrap();
    answer["response"]["userHandle"] = json!(data_encoding::BASE64URL_NOPAD.encode(&handle));
    let answer = answer.to_string();
    let r = b.post("/auth/passkey/", &[("response", &answer)]).await;
    assert_eq!(r.header("HX-Redirect"), Some("/"), "{}", r.body);
    // Signed in: the devices modal opens without a step-up.
    let list = b.get("/auth/devices/").await;
    assert!(list.body.contains("Laptop"), "{}", list.body);

    // The same answer again (the ceremony was taken out of the session).
    b.logout().await;
    b.post("/auth/passkey/options/", &[]).await;
    b.post("/auth/passkey/", &[("response", &answer)]).await;
    let replay = b.post("/auth/passkey/", &[("response", &answer)]).await;
    assert!(replay.header("HX-Redirect").is_none(), "{}", replay.body);
    assert!(replay.body.contains("name=\"password\""), "{}", replay.body);
}

#[actix_web::test]
async fn a_passkey_only_user_manages_2fa_from_the_menu_as_a_totp_user_does() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    let menu = b.get("/auth/menu/").await.body;
    assert!(
        menu.contains("href=\"/auth/2fa/\""),
        "Add 2FA opens the choice: {menu}"
    );
    let mut key = SoftPasskey::new(true);
    register_at(&mut b, &mut key, "YubiKey").await;
    let menu = b.get("/auth/menu/").await.body;
    assert!(menu.contains("Remove 2FA"), "{menu}");
    assert!(menu.contains("Recovery codes"), "{menu}");
    assert!(menu.contains("Add an authenticator app"), "{menu}");
    assert!(!menu.contains(">Add 2FA<"), "{menu}");
}
