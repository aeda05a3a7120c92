//! Recovery codes in the browser: a set shown once (never cached, downloadable), the
//! count, a code that signs in once in place of an app code, and a new set voiding the old.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};

use crate::harness::{Browser, PASSWORD, between, browser};

/// The codes of a recovery-codes modal that shows a new set.
fn codes(body: &str) -> Vec<String> {
    between(body, "id=\"modal2fa-recovery-codes\">", "</ol>")
        .split("<li class=\"col\">")
        .skip(1)
        .map(|li| li.trim().trim_end_matches("</li>").trim().to_owned())
        .collect()
}

/// Signs in with the password and a code from `secret` (a `2fa` session).
async fn second_factor_session<S, B>(b: &mut Browser<S>, secret: &[u8])
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    b.logout().await;
    b.mem.clock.advance(time::Duration::seconds(30));
    let r = b.login(PASSWORD).await;
    let token = r.csrf_token().unwrap();
    let code = b.code(secret);
    let r = b
        .post("/auth/2fa/", &[("code", &code), ("csrf_token", &token)])
        .await;
    assert!(r.body.contains("Trust this device"), "{}", r.body);
}

#[actix_web::test]
async fn a_new_set_is_shown_once_uncached_downloadable_and_counted() {
    let mut b = browser!(0);
    let secret = b.enrol().await;
    second_factor_session(&mut b, &secret).await;

    let none = b.get("/auth/recovery-codes/").await;
    assert!(
        none.body.contains("You have no unused codes."),
        "{}",
        none.body
    );
    let made = b.post("/auth/recovery-codes/", &[]).await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.header("cache-control"), Some("no-store"));
    let set = codes(&made.body);
    assert_eq!(set.len(), 10, "{}", made.body);
    for code in &set {
        assert_eq!(
            code.len(),
            29,
            "six groups of four base32 characters: {code}"
        );
    }
    assert!(made.body.contains("download=\"recovery-codes.txt\""));
    assert!(made.body.contains(&set[0]), "the download holds the codes");

    let counted = b.get("/auth/recovery-codes/").await;
    assert!(
        counted.body.contains("<strong>10</strong> unused codes"),
        "{}",
        counted.body
    );
    assert!(!counted.body.contains(&set[0]), "a set is shown only once");
}

#[actix_web::test]
async fn a_code_signs_in_once_and_a_new_set_voids_the_old_one() {
    let mut b = browser!(0);
    let secret = b.enrol().await;
    second_factor_session(&mut b, &secret).await;
    let first = codes(&b.post("/auth/recovery-codes/", &[]).await.body);

    // A recovery code in the 2FA modal's code field signs in, once.
    b.logout().await;
    let r = b.login(PASSWORD).await;
    let token = r.csrf_token().unwrap();
    let r = b
        .post(
            "/auth/2fa/",
            &[("code", &first[0].to_lowercase()), ("csrf_token", &token)],
        )
        .await;
    assert!(r.body.contains("Trust this device"), "{}", r.body);
    b.logout().await;
    let r = b.login(PASSWORD).await;
    let token = r.csrf_token().unwrap();
    let again = b
        .post("/auth/2fa/", &[("code", &first[0]), ("csrf_token", &token)])
        .await;
    assert!(
        !again.body.contains("Trust this device"),
        "a code works once"
    );
    let r = b
        .post("/auth/2fa/", &[("code", &first[1]), ("csrf_token", &token)])
        .await;
    assert!(r.body.contains("Trust this device"), "{}", r.body);
    let left = b.get("/auth/recovery-codes/").await;
    assert!(
        left.body.contains("<strong>8</strong> unused codes"),
        "{}",
        left.body
    );

    // A new set: every old code stops working.
    let second = codes(&b.post("/auth/recovery-codes/", &[]).await.body);
    assert_eq!(second.len(), 10);
    b.logout().await;
    let r = b.login(PASSWORD).await;
    let token = r.csrf_token().unwrap();
    let old = b
        .post("/auth/2fa/", &[("code", &first[2]), ("csrf_token", &token)])
        .await;
    assert!(
        !old.body.contains("Trust this device"),
        "the old set is void"
    );
}

#[actix_web::test]
async fn a_password_only_session_steps_up_before_a_new_set_is_made() {
    let mut b = browser!(0);
    b.enrol().await;
    // Still the password-only session that enrolled the app.
    let r = b.post("/auth/recovery-codes/", &[]).await;
    assert!(
        r.body.contains("name=\"code\""),
        "the 2FA modal: {}",
        r.body
    );
    assert!(
        !r.body.contains("modal2fa-recovery-codes"),
        "no codes before the step-up"
    );
}
