//! A store outage: every request answers 503 with `Retry-After` (a fragment for htmx, a
//! page otherwise), also when the session itself cannot be read; when the store comes
//! back, service resumes with sessions and counters intact. And HEAD on every GET route.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::Method;
use actix_web::test;
use async_trait::async_trait;
use modal2fa_actix::{Modal2faWeb, ModalAppearance, WebSettings};
use modal2fa_core::lockout::{LockoutEntry, LockoutKey, LockoutRule};
use modal2fa_core::model::{Page, SessionRecord, UserId};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::{LockoutStore, PortError, PortResult, SessionStore};
use modal2fa_core::services::NewAccount;
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;
use time::OffsetDateTime;

/// The memory stores, unreachable while `down` is set.
struct Outage<S: ?Sized> {
    inner: Arc<S>,
    down: Arc<AtomicBool>,
}

impl<S: ?Sized> Outage<S> {
    fn up(&self) -> PortResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(PortError::Unavailable(
                "connection refused (test outage)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl LockoutStore for Outage<dyn LockoutStore> {
    async fn get(&self, key: &LockoutKey) -> PortResult<Option<LockoutEntry>> {
        self.up()?;
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[&LockoutKey]) -> PortResult<Vec<LockoutEntry>> {
        self.up()?;
        self.inner.get_many(keys).await
    }
    async fn record_failure(
        &self,
        key: &LockoutKey,
        seen: Option<&LockoutEntry>,
        now: OffsetDateTime,
        rule: LockoutRule,
    ) -> PortResult<LockoutEntry> {
        self.up()?;
        self.inner.record_failure(key, seen, now, rule).await
    }
    async fn settle(
        &self,
        key: &LockoutKey,
        reserved: &LockoutEntry,
        before: Option<&LockoutEntry>,
    ) -> PortResult<()> {
        self.up()?;
        self.inner.settle(key, reserved, before).await
    }
    async fn clear(&self, key: &LockoutKey) -> PortResult<bool> {
        self.up()?;
        self.inner.clear(key).await
    }
    async fn list(&self, page: Page) -> PortResult<Vec<LockoutEntry>> {
        self.up()?;
        self.inner.list(page).await
    }
    async fn purge_expired(&self, cutoff: OffsetDateTime) -> PortResult<u64> {
        self.up()?;
        self.inner.purge_expired(cutoff).await
    }
    async fn remember_client(&self, a: &str, b: &str, at: OffsetDateTime) -> PortResult<()> {
        self.up()?;
        self.inner.remember_client(a, b, at).await
    }
    async fn knows_client(&self, a: &str, b: &str, since: OffsetDateTime) -> PortResult<bool> {
        self.up()?;
        self.inner.knows_client(a, b, since).await
    }
    async fn forget_clients(&self, before: OffsetDateTime) -> PortResult<u64> {
        self.up()?;
        self.inner.forget_clients(before).await
    }
}

#[async_trait]
impl SessionStore for Outage<dyn SessionStore> {
    async fn load(&self, id_hash: &str) -> PortResult<Option<SessionRecord>> {
        self.up()?;
        self.inner.load(id_hash).await
    }
    async fn save(&self, record: &SessionRecord) -> PortResult<()> {
        self.up()?;
        self.inner.save(record).await
    }
    async fn renew(&self, old_hash: &str, record: &SessionRecord) -> PortResult<bool> {
        self.up()?;
        self.inner.renew(old_hash, record).await
    }
    async fn replace(&self, record: &SessionRecord) -> PortResult<bool> {
        self.up()?;
        self.inner.replace(record).await
    }
    async fn touch(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
        idle_expiry: OffsetDateTime,
        absolute_timeout: time::Duration,
    ) -> PortResult<bool> {
        self.up()?;
        self.inner
            .touch(id_hash, now, idle_expiry, absolute_timeout)
            .await
    }
    async fn delete(&self, id_hash: &str) -> PortResult<bool> {
        self.up()?;
        self.inner.delete(id_hash).await
    }
    async fn list_active(&self, now: OffsetDateTime, page: Page) -> PortResult<Vec<SessionRecord>> {
        self.up()?;
        self.inner.list_active(now, page).await
    }
    async fn delete_for_user(&self, user: UserId) -> PortResult<u64> {
        self.up()?;
        self.inner.delete_for_user(user).await
    }
    async fn delete_for_passkey(&self, user: UserId, passkey: i64) -> PortResult<u64> {
        self.up()?;
        self.inner.delete_for_passkey(user, passkey).await
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> PortResult<u64> {
        self.up()?;
        self.inner.purge_expired(now).await
    }
}

async fn web(
    down: Arc<AtomicBool>,
    appearance: HashMap<String, ModalAppearance>,
) -> (Modal2faWeb, MemoryPorts) {
    let mem = MemoryPorts::new();
    let mut ports = mem.ports.clone();
    ports.lockout = Arc::new(Outage {
        inner: ports.lockout.clone(),
        down: down.clone(),
    });
    ports.sessions = Arc::new(Outage {
        inner: ports.sessions.clone(),
        down,
    });
    let settings = Settings {
        password_hashing: PasswordHashing::Argon2id {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Settings::default()
    };
    let secret = ServerSecret::new(vec![5; 32]).unwrap();
    let auth = Modal2fa::new(ports, Arc::new(DefaultPolicy), settings, &secret);
    auth.account
        .create_user(NewAccount {
            username: "alice".into(),
            email: None,
            first_name: String::new(),
            last_name: String::new(),
            password: Some("correct horse battery".into()),
            superuser: false,
        })
        .await
        .unwrap();
    let web = Modal2faWeb::builder(auth)
        .settings(WebSettings {
            secure_cookies: false,
            appearance,
            ..WebSettings::default()
        })
        .build()
        .unwrap();
    (web, mem)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).unwrap() + start.len();
    &s[from..from + s[from..].find(end).unwrap()]
}

#[actix_web::test]
async fn an_unreachable_store_answers_503_with_retry_after_and_service_resumes_with_sessions_intact()
 {
    let down = Arc::new(AtomicBool::new(false));
    let (web, mem) = web(down.clone(), HashMap::new()).await;
    let client = crate::harness::modal_client(&web).await;
    let app = client.app();
    let peer = "203.0.113.9:4000".parse().unwrap();
    let page = test::call_service(
        app,
        test::TestRequest::get()
            .uri("/auth/login/")
            .peer_addr(peer)
            .to_request(),
    )
    .await;
    // The anonymous token is bound to the nonce cookie that came with it.
    let nonce = page
        .response()
        .cookies()
        .find(|c| c.name() == "modal2fa_csrf")
        .map(|c| format!("modal2fa_csrf={}", c.value()))
        .expect("a CSRF nonce cookie");
    let page = test::read_body(page).await;
    let token = between(
        std::str::from_utf8(&page).unwrap(),
        "name=\"csrf_token\" value=\"",
        "\"",
    )
    .to_owned();
    let login = |password: &str, cookie: Option<&str>, htmx: bool| {
        let mut req = test::TestRequest::post()
            .uri("/auth/login/")
            .peer_addr(peer)
            .insert_header(("Sec-Fetch-Site", "same-origin"))
            .set_form([
                ("username", "alice"),
                ("password", password),
                ("csrf_token", token.as_str()),
            ]);
        if htmx {
            req = req.insert_header(("HX-Request", "true"));
        }
        let cookies = match cookie {
            Some(c) => format!("{nonce}; {c}"),
            None => nonce.clone(),
        };
        req.insert_header(("Cookie", cookies)).to_request()
    };
    // A failure counted and a session signed in before the outage.
    test::call_service(app, login("wrong", None, true)).await;
    let signed_in = test::call_service(app, login("correct horse battery", None, true)).await;
    let cookie = signed_in
        .response()
        .cookies()
        .find(|c| c.name() == "modal2fa_session")
        .map(|c| format!("modal2fa_session={}", c.value()))
        .expect("a session cookie");

    down.store(true, Ordering::SeqCst);
    let during = test::call_service(app, login("wrong", None, true)).await;
    assert_eq!(during.status(), 503);
    assert_eq!(during.headers().get("Retry-After").unwrap(), "5");
    let body = String::from_utf8(test::read_body(during).await.to_vec()).unwrap();
    assert!(
        body.contains("temporarily unavailable") && !body.contains("<html"),
        "{body}"
    );
    let page = test::call_service(app, login("wrong", None, false)).await;
    assert_eq!(page.status(), 503);
    let body = String::from_utf8(test::read_body(page).await.to_vec()).unwrap();
    assert!(
        body.starts_with("<!doctype html>"),
        "a full page without htmx: {body}"
    );
    // The session middleware fails before any handler: actix answers with the error's
    // response, as a server would.
    let with_session = test::try_call_service(
        app,
        test::TestRequest::get()
            .uri("/auth/menu/")
            .peer_addr(peer)
            .insert_header(("Cookie", cookie.clone()))
            .to_request(),
    )
    .await;
    let status = match with_session {
        Ok(resp) => resp.status(),
        Err(e) => e.error_response().status(),
    };
    assert_eq!(status, 503, "a session that cannot be loaded is not a 500");

    down.store(false, Ordering::SeqCst);
    let menu = test::call_and_read_body(
        app,
        test::TestRequest::get()
            .uri("/auth/menu/")
            .peer_addr(peer)
            .insert_header(("Cookie", cookie))
            .to_request(),
    )
    .await;
    assert!(
        std::str::from_utf8(&menu).unwrap().contains("alice"),
        "the session survived the outage"
    );
    let counter = mem
        .lockout
        .get(&LockoutKey::Ip("203.0.113.9".into()))
        .await
        .unwrap()
        .expect("the counter survived the outage");
    assert_eq!(
        counter.failures, 1,
        "and nothing was counted while it was down"
    );
}

#[actix_web::test]
async fn every_get_route_answers_head() {
    let (web, _) = web(Arc::new(AtomicBool::new(false)), HashMap::new()).await;
    let client = crate::harness::modal_client(&web).await;
    let app = client.app();
    for path in [
        "/auth/login/",
        "/auth/2fa/",
        "/auth/2fa/totp/",
        "/auth/trust-device/",
        "/auth/devices/",
        "/auth/remove-2fa/",
        "/auth/change-password/",
        "/auth/menu/",
        "/auth/static/modal2fa.js",
    ] {
        let resp = test::call_service(
            app,
            test::TestRequest::default()
                .method(Method::HEAD)
                .uri(path)
                .to_request(),
        )
        .await;
        assert_ne!(resp.status(), 405, "HEAD {path}");
        assert!(
            resp.status().as_u16() < 500,
            "HEAD {path}: {}",
            resp.status()
        );
    }
}

#[actix_web::test]
async fn the_unavailable_modal_takes_its_configured_appearance() {
    let down = Arc::new(AtomicBool::new(true));
    let look = ModalAppearance {
        size: Some("sm".into()),
        title: Some("Back in a moment".into()),
        classes: Some("outage-notice".into()),
    };
    let (web, _) = web(down, HashMap::from([("unavailable".to_owned(), look)])).await;
    let mut client = crate::harness::modal_client(&web).await;
    client.set_htmx(true);
    let r = client.sign_in("alice", "wrong").await;
    assert_eq!(r.status, 503, "{}", r.body);
    for part in [
        "Back in a moment",
        "outage-notice",
        "data-modal2fa-size=\"sm\"",
    ] {
        assert!(r.body.contains(part), "{part}: {}", r.body);
    }
}
