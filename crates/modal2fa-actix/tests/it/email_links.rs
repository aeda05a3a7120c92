//! Links by email over HTTP: "Forgot your password?" answers alike for every address and
//! sends a link to the site's public URL; the link's page sets a new password once and
//! ends every session; an expired or used link says so; an invitation sets the first
//! password and signs in.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use modal2fa_actix::{Modal2faWeb, WebSettings};
use modal2fa_core::ports::Notification;
use modal2fa_core::services::InviteRequest;
use modal2fa_test_support::MemoryPorts;

use crate::harness::{Browser, PASSWORD, browser, modal_client, services};

const SENT: &str = "id=\"modal2fa-reset-sent\"";

/// The path of the newest emailed link of `kind`, under the public URL.
async fn newest_link<S, B>(b: &Browser<S>, reset: bool) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let link = b
        .mail()
        .await
        .into_iter()
        .rev()
        .find_map(|n| match (n, reset) {
            (Notification::PasswordReset { link, .. }, true)
            | (Notification::Invitation { link, .. }, false) => Some(link.expose().to_owned()),
            _ => None,
        })
        .expect("no link was sent");
    link.strip_prefix("http://localhost:8080")
        .unwrap_or_else(|| panic!("{link} is not under the public URL"))
        .to_owned()
}

async fn ask_for_a_link<S, B>(b: &mut Browser<S>, email: &str) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    b.submit(
        "/auth/password-reset/",
        "/auth/password-reset/",
        &[("email", email)],
    )
    .await
    .body
}

#[actix_web::test]
async fn forgot_password_answers_alike_for_every_address_and_mails_a_link_only_to_an_account() {
    let mut b = browser!(0);
    let login = b.get("/auth/login/").await;
    assert!(
        login.body.contains("id=\"modal2fa-forgot\""),
        "{}",
        login.body
    );
    let known = ask_for_a_link(&mut b, "alice@example.com").await;
    let unknown = ask_for_a_link(&mut b, "nobody@example.com").await;
    assert!(known.contains(SENT), "{known}");
    assert_eq!(
        known, unknown,
        "the answer tells which address has an account"
    );
    let mail = b.mail().await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(
        matches!(&mail[0], Notification::PasswordReset { to, .. } if to.email == "alice@example.com")
    );
    let bad = ask_for_a_link(&mut b, "not an address").await;
    assert!(bad.contains("alert-danger") && !bad.contains(SENT), "{bad}");
}

#[actix_web::test]
async fn a_reset_link_sets_a_new_password_once_and_the_old_password_stops_working() {
    let mut b = browser!(0);
    ask_for_a_link(&mut b, "alice@example.com").await;
    let link = newest_link(&b, true).await;
    assert!(link.starts_with("/auth/password-reset/"), "{link}");
    let page = b.get(&link).await;
    assert!(
        page.body.contains("name=\"new_password2\""),
        "{}",
        page.body
    );
    let differ = b
        .post(
            &link,
            &[
                ("new_password", "a fresh passphrase"),
                ("new_password2", "another one"),
            ],
        )
        .await;
    assert!(
        differ.body.contains("The two new passwords differ"),
        "{}",
        differ.body
    );
    let done = b
        .post(
            &link,
            &[
                ("new_password", "a fresh passphrase"),
                ("new_password2", "a fresh passphrase"),
            ],
        )
        .await;
    assert!(
        done.body.contains("id=\"modal2fa-notice\""),
        "{}",
        done.body
    );
    let again = b.get(&link).await;
    let reused = b
        .post(
            &link,
            &[
                ("new_password", "yet another pass"),
                ("new_password2", "yet another pass"),
            ],
        )
        .await;
    assert!(
        again.body.contains("name=\"new_password\""),
        "the page itself reads nothing"
    );
    assert!(
        reused.body.contains("id=\"modal2fa-link-problem\""),
        "{}",
        reused.body
    );
    let old = b.login(PASSWORD).await;
    assert!(
        old.body
            .contains("Please enter a correct username and password"),
        "{}",
        old.body
    );
    let new = b.login("a fresh passphrase").await;
    assert_eq!(
        new.header("HX-Redirect"),
        Some("/protected"),
        "{}",
        new.body
    );
}

#[actix_web::test]
async fn a_reset_from_another_browser_ends_the_accounts_signed_in_session() {
    let mut b = browser!(0);
    b.login(PASSWORD).await;
    assert_eq!(b.get("/protected").await.body, "hello alice");
    let signed_in = b.cookies().clone();
    b.cookies_mut().clear();
    ask_for_a_link(&mut b, "alice@example.com").await;
    let link = newest_link(&b, true).await;
    b.get(&link).await;
    b.post(
        &link,
        &[
            ("new_password", "a fresh passphrase"),
            ("new_password2", "a fresh passphrase"),
        ],
    )
    .await;
    *b.cookies_mut() = signed_in;
    let after = b.get("/protected").await;
    assert_ne!(after.body, "hello alice", "the session survived the reset");
}

#[actix_web::test]
async fn an_expired_or_mangled_link_offers_a_new_one_instead_of_the_form() {
    let mut b = browser!(0);
    ask_for_a_link(&mut b, "alice@example.com").await;
    let link = newest_link(&b, true).await;
    b.mem.clock.advance(time::Duration::days(4));
    let expired = b.get(&link).await;
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert!(
        !expired.body.contains("name=\"new_password\""),
        "{}",
        expired.body
    );
    let mangled = b.get("/auth/password-reset/not-a-token").await;
    assert!(
        mangled.body.contains("id=\"modal2fa-link-problem\""),
        "{}",
        mangled.body
    );
}

#[actix_web::test]
async fn without_a_public_url_no_reset_is_offered_and_none_can_be_asked_for() {
    let mem = MemoryPorts::new();
    let auth = services(
        mem.ports.clone(),
        std::sync::Arc::new(modal2fa_core::DefaultPolicy),
        0,
    )
    .await;
    let web = Modal2faWeb::builder(auth)
        .settings(WebSettings {
            secure_cookies: false,
            ..WebSettings::default()
        })
        .build()
        .unwrap();
    let mut c = modal_client(&web).await;
    let login = c.get("/auth/login/").await;
    assert!(!login.body.contains("modal2fa-forgot"), "{}", login.body);
    c.get("/auth/password-reset/").await;
    let r = c
        .post_form("/auth/password-reset/", &[("email", "alice@example.com")])
        .await;
    assert!(r.body.contains("not available"), "{}", r.body);
    assert_eq!(mem.outbox.rows().len(), 0);
}

#[actix_web::test]
async fn an_invitation_sets_the_first_password_and_signs_the_new_user_in() {
    let mut b = browser!(0);
    let sender = {
        let secret = modal2fa_core::ServerSecret::new(vec![4; 32]).unwrap();
        modal2fa_core::Modal2fa::new(
            b.mem.ports.clone(),
            std::sync::Arc::new(modal2fa_core::DefaultPolicy),
            crate::harness::settings(0),
            &secret,
        )
    };
    let ctx = modal2fa_core::model::RequestContext::new("127.0.0.1".parse().unwrap(), "cli", "");
    sender
        .account
        .send_invitation(
            InviteRequest {
                email: "new@example.com".into(),
                first_name: "Nova".into(),
                last_name: String::new(),
            },
            "http://localhost:8080/auth/invitation/",
            None,
            &ctx,
        )
        .await
        .unwrap();
    let link = newest_link(&b, false).await;
    let page = b.get(&link).await;
    assert!(page.body.contains("Welcome"), "{}", page.body);
    let r = b
        .post(
            &link,
            &[
                ("new_password", "my first passphrase"),
                ("new_password2", "my first passphrase"),
            ],
        )
        .await;
    assert!(r.header("HX-Redirect").is_some(), "{}", r.body);
    assert_eq!(b.get("/protected").await.body, "hello new@example.com");
    let again = b
        .post(
            &link,
            &[
                ("new_password", "a second passphrase"),
                ("new_password2", "a second passphrase"),
            ],
        )
        .await;
    assert!(
        again.body.contains("id=\"modal2fa-link-problem\""),
        "{}",
        again.body
    );
}
