//! Passkey ceremonies over HTTP, completed by webauthn-authenticator-rs's software
//! authenticator: registration from a signed-in session, the second factor of the next
//! sign-in, and the answers the web layer must refuse (a replay, another session's
//! challenge).

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::harness::{Browser, PASSWORD, browser};

fn origin() -> Url {
    Url::parse("http://localhost:8080").unwrap()
}

/// Registers `key` for the signed-in alice through the two POSTs.
async fn register<S, B>(b: &mut Browser<S>, key: &mut SoftPasskey)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let options = b.post("/auth/passkeys/register/options/", &[]).await;
    assert_eq!(
        options.header("content-type"),
        Some("application/json"),
        "{}",
        options.body
    );
    assert_eq!(options.header("cache-control"), Some("no-store"));
    let options: CreationChallengeResponse = serde_json::from_str(&options.body).unwrap();
    let answer = key.do_registration(origin(), options).unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let done = b
        .post(
            "/auth/passkeys/register/",
            &[("response", &answer), ("name", "YubiKey")],
        )
        .await;
    assert_eq!(done.header("HX-Refresh"), Some("true"), "{}", done.body);
}

/// The password step, then the options of the passkey ceremony and `key`'s answer.
async fn answer_for<S, B>(b: &mut Browser<S>, key: &mut SoftPasskey) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let options = b.post("/auth/2fa/passkey/options/", &[]).await;
    let options: RequestChallengeResponse =
        serde_json::from_str(&options.body).unwrap_or_else(|_| panic!("options: {}", options.body));
    let answer = key.do_authentication(origin(), options).unwrap();
    serde_json::to_string(&answer).unwrap()
}

#[actix_web::test]
async fn a_key_registered_over_http_is_the_second_factor_of_the_next_sign_in_once() {
    let mut b = browser!(0);
    let r = b.login(PASSWORD).await;
    assert_eq!(r.header("HX-Redirect"), Some("/protected"), "{}", r.body);
    let mut key = SoftPasskey::new(true);
    register(&mut b, &mut key).await;

    b.logout().await;
    let r = b.login(PASSWORD).await;
    assert!(
        r.body.contains("name=\"code\""),
        "the 2FA modal: {}",
        r.body
    );
    let answer = answer_for(&mut b, &mut key).await;
    let signed_in = b.post("/auth/2fa/passkey/", &[("response", &answer)]).await;
    assert!(
        signed_in.body.contains("Trust this device"),
        "{}",
        signed_in.body
    );

    // The same answer again, in a new pending login: its ceremony was used up.
    b.logout().await;
    b.login(PASSWORD).await;
    let replay = b.post("/auth/2fa/passkey/", &[("response", &answer)]).await;
    assert!(
        !replay.body.contains("Trust this device"),
        "a replay signs nobody in"
    );
    assert!(replay.body.contains("timed out"), "{}", replay.body);
}

#[actix_web::test]
async fn an_answer_to_another_sessions_challenge_is_refused_and_its_own_session_keeps_it() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    let mut key = SoftPasskey::new(true);
    register(&mut b, &mut key).await;
    b.logout().await;
    b.login(PASSWORD).await;
    // The first session asks for a challenge and the authenticator answers it...
    let answer = answer_for(&mut b, &mut key).await;
    let first_session = b.cookies().clone();
    // ...and a second pending login (another browser: another session) asks for its own.
    b.cookies_mut().clear();
    b.login(PASSWORD).await;
    b.post("/auth/2fa/passkey/options/", &[]).await;
    let elsewhere = b.post("/auth/2fa/passkey/", &[("response", &answer)]).await;
    assert!(
        !elsewhere.body.contains("Trust this device"),
        "{}",
        elsewhere.body
    );
    // The session that asked can still use its answer.
    *b.cookies_mut() = first_session;
    let own = b.post("/auth/2fa/passkey/", &[("response", &answer)]).await;
    assert!(own.body.contains("Trust this device"), "{}", own.body);
}

#[actix_web::test]
async fn a_password_only_session_cannot_begin_a_ceremony_once_a_key_exists() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    let mut key = SoftPasskey::new(true);
    register(&mut b, &mut key).await;
    // Still the password-only session: a second key needs the second factor first.
    let r = b.post("/auth/passkeys/register/options/", &[]).await;
    assert!(
        r.body.contains("name=\"code\""),
        "the 2FA modal: {}",
        r.body
    );
}
