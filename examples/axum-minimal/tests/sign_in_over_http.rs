//! Drives the axum example over HTTP: password, then TOTP, with a session cookie.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use modal2fa_core::ports::Clock;
use modal2fa_core::services::NewAccount;
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;
use tower::ServiceExt;

struct Harness {
    app: axum::Router,
    mem: MemoryPorts,
}

async fn harness() -> Harness {
    let mem = MemoryPorts::new();
    let settings = Settings {
        password_hashing: modal2fa_core::password::PasswordHashing::Argon2id {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Settings::default()
    };
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        settings,
        &ServerSecret::new(vec![5; 32]).unwrap(),
    );
    auth.account
        .create_user(NewAccount {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            first_name: String::new(),
            last_name: String::new(),
            password: Some("demo password".into()),
            superuser: false,
        })
        .await
        .unwrap();
    Harness {
        app: axum_minimal::router(auth),
        mem,
    }
}

impl Harness {
    async fn post(
        &self,
        path: &str,
        body: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, String, Option<String>) {
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::from(body.to_owned())).unwrap())
            .await
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> (StatusCode, String, Option<String>) {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, String, Option<String>) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let cookie = resp
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), cookie)
    }

    fn code(&self, secret: &[u8]) -> String {
        totp::code_at(secret, &TotpParams::default(), self.mem.clock.now())
    }
}

#[tokio::test]
async fn the_axum_app_signs_in_with_password_and_totp() {
    let h = harness().await;
    // Sign in with the password (no factor yet) and enrol an authenticator app.
    let (status, body, cookie) = h
        .post("/login", "username=alice&password=demo+password", None)
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "signed in with password")
    );
    let cookie = cookie.expect("session cookie");
    let (_, setup, _) = h.post("/totp/setup", "", Some(&cookie)).await;
    let field = |name: &str| {
        setup
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let secret = totp::decode_secret(&field("secret")).unwrap();
    let body = format!("device_id={}&code={}", field("device_id"), h.code(&secret));
    let (status, body, _) = h.post("/totp/confirm", &body, Some(&cookie)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "authenticator app added")
    );
    let (_, body, cleared) = h.post("/logout", "", Some(&cookie)).await;
    assert_eq!(body, "signed out");
    assert!(cleared.is_some());
    let (_, body, _) = h.get("/", Some(&cookie)).await;
    assert_eq!(body, "anonymous", "the old session cookie no longer works");

    // Password, then the 2FA step.
    h.mem.clock.advance(time::Duration::seconds(30));
    let (status, body, pending) = h
        .post("/login", "username=alice&password=demo+password", None)
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "second factor required")
    );
    let pending = pending.unwrap();
    let (_, body, _) = h.get("/", Some(&pending)).await;
    assert_eq!(
        body, "second factor required",
        "a pending login is not signed in"
    );
    let (status, body, _) = h.post("/totp", "code=000000", Some(&pending)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body, signed) = h
        .post(
            "/totp",
            &format!("code={}", h.code(&secret)),
            Some(&pending),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "signed in with 2fa")
    );
    let signed = signed.expect("the session id is renewed after the second factor");
    assert_ne!(signed, pending);
    let (_, body, _) = h.get("/", Some(&signed)).await;
    assert_eq!(body, "signed in as user 1 with 2fa");
    let (_, body, _) = h.get("/", Some(&pending)).await;
    assert_eq!(body, "anonymous", "the pre-2FA session id is dead");
    // The same code cannot be used again.
    let (_, _, again) = h
        .post("/login", "username=alice&password=demo+password", None)
        .await;
    let (status, body, _) = h
        .post(
            "/totp",
            &format!("code={}", h.code(&secret)),
            Some(&again.unwrap()),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "refused: CodeReused")
    );
}

#[tokio::test]
async fn the_axum_app_refuses_a_wrong_password() {
    let h = harness().await;
    let (status, body, _) = h.post("/login", "username=alice&password=nope", None).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "refused: InvalidCredentials")
    );
    let (status, _, _) = h.post("/login", "username=&password=x", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
