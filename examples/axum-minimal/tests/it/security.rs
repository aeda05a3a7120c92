//! The four things a host must get right around the core, each proved over HTTP: CSRF on
//! every POST, the session cookie's flags, a new session id at every privilege change and
//! none after logout, and no internal text in any response.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::{Harness, ORIGIN, harness, harness_with};
use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use axum_minimal::Config;
use axum_minimal::copy::{CSRF_REFUSED, SOMETHING_WENT_WRONG};
use modal2fa_core::model::{Page, SessionRecord};
use modal2fa_core::ports::SessionStore;
use modal2fa_core::services::SessionService;
use modal2fa_core::{PortError, PortResult, SecretString, UserId};
use modal2fa_test_support::MemorySessions;
use time::OffsetDateTime;

const SIGN_IN: &str = "username=alice&password=demo+password";
const ANONYMOUS: &str = "You are not signed in.";
const SIGNED_IN: &str = "Signed in as user 1 with password.";

/// The store's key for a `name=value` cookie.
fn hash_of(cookie: &str) -> String {
    SessionService::id_hash(&SecretString::new(cookie.split_once('=').unwrap().1))
}

/// A POST with these headers and body, carrying `cookie`.
async fn post(
    h: &Harness,
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> crate::common::Reply {
    let mut all = vec![("cookie", cookie)];
    all.extend_from_slice(headers);
    h.send(Method::POST, path, &all, body).await
}

#[tokio::test]
async fn a_post_without_a_csrf_token_is_refused_and_changes_nothing() {
    let h = harness().await;
    let mut b = h.browser();
    b.get("/").await;
    let cookie = b.cookie.clone().unwrap();
    let (sessions, audit) = (h.mem.sessions.len(), h.mem.audit.events().len());
    let same_origin = [("sec-fetch-site", "same-origin")];
    for body in [
        SIGN_IN.to_owned(),
        format!("{SIGN_IN}&csrf="),
        format!("{SIGN_IN}&csrf=forged"),
    ] {
        let r = post(&h, "/login", &cookie, &same_origin, &body).await;
        assert_eq!(
            (r.status, r.message()),
            (StatusCode::FORBIDDEN, CSRF_REFUSED),
            "{body}"
        );
        assert_eq!(r.set_cookie, None, "no new session id");
    }
    // No token and no cookie at all: refused the same way.
    let r = h.send(Method::POST, "/login", &same_origin, SIGN_IN).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.mem.sessions.len(),
        sessions,
        "no session was made or moved"
    );
    assert!(h.mem.sessions.has_hash(&hash_of(&cookie)));
    assert_eq!(
        h.mem.audit.events().len(),
        audit,
        "no sign-in was attempted"
    );
    assert_eq!(h.get("/", Some(&cookie)).await.message(), ANONYMOUS);

    // Signed in, a logout without the token leaves the session alone.
    b.post("/login", SIGN_IN).await;
    let signed_in = b.cookie.clone().unwrap();
    let r = post(&h, "/logout", &signed_in, &same_origin, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.get("/", Some(&signed_in)).await.message(), SIGNED_IN);
}

#[tokio::test]
async fn a_csrf_token_from_another_session_is_refused() {
    let h = harness().await;
    let (mut victim, mut attacker) = (h.browser(), h.browser());
    victim.get("/").await;
    attacker.get("/").await;
    let (cookie, foreign) = (
        victim.cookie.clone().unwrap(),
        attacker.token.clone().unwrap(),
    );
    let r = post(
        &h,
        "/login",
        &cookie,
        &[("sec-fetch-site", "same-origin")],
        &format!("{SIGN_IN}&csrf={foreign}"),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::FORBIDDEN, CSRF_REFUSED)
    );
    assert_eq!(h.get("/", Some(&cookie)).await.message(), ANONYMOUS);

    // The token from before sign-in belonged to the old id: it does not work with the new.
    let before = victim.token.clone().unwrap();
    victim.post("/login", SIGN_IN).await;
    assert_ne!(
        victim.token.as_deref(),
        Some(before.as_str()),
        "new id, new token"
    );
    let signed_in = victim.cookie.clone().unwrap();
    let r = post(
        &h,
        "/logout",
        &signed_in,
        &[("sec-fetch-site", "same-origin")],
        &format!("csrf={before}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.get("/", Some(&signed_in)).await.message(), SIGNED_IN);
}

#[tokio::test]
async fn a_cross_origin_post_is_refused() {
    let h = harness().await;
    let mut b = h.browser();
    b.get("/").await;
    let (cookie, token) = (b.cookie.clone().unwrap(), b.token.clone().unwrap());
    let body = format!("{SIGN_IN}&csrf={token}");
    let refused: &[&[(&str, &str)]] = &[
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        // Sec-Fetch-Site wins over a matching Origin.
        &[("sec-fetch-site", "cross-site"), ("origin", ORIGIN)],
        // Without Sec-Fetch-Site, the Origin must match in scheme, host and port.
        &[("origin", "https://evil.example")],
        &[("origin", "http://app.example.test")],
        &[("origin", "https://app.example.test:8443")],
        &[("origin", "https://app.example.test.evil.example")],
        &[("origin", "null")],
    ];
    for headers in refused {
        let r = post(&h, "/login", &cookie, headers, &body).await;
        assert_eq!(
            (r.status, r.message()),
            (StatusCode::FORBIDDEN, CSRF_REFUSED),
            "{headers:?}"
        );
        assert_eq!(r.set_cookie, None);
    }
    assert_eq!(
        h.get("/", Some(&cookie)).await.message(),
        ANONYMOUS,
        "nothing changed"
    );
    assert!(h.mem.audit.events().is_empty(), "no sign-in was attempted");

    // The same token from our own origin works, by either header.
    let r = post(
        &h,
        "/login",
        &cookie,
        &[("origin", "https://APP.example.test")],
        &body,
    )
    .await;
    assert_eq!((r.status, r.message()), (StatusCode::OK, SIGNED_IN));
}

#[tokio::test]
async fn the_session_cookie_is_host_prefixed_http_only_same_site_lax_secure_and_path_root() {
    let h = harness().await;
    let mut b = h.browser();
    let opened = b.get("/").await;
    let signed_in = b.post("/login", SIGN_IN).await;
    let ended = b.post("/logout", "").await;
    for reply in [&opened, &signed_in, &ended] {
        let set = reply.set_cookie.as_deref().expect("a Set-Cookie");
        let mut parts = set.split("; ");
        assert!(parts.next().unwrap().starts_with("__Host-sid="), "{set}");
        let mut flags: Vec<&str> = parts.collect();
        flags.sort();
        if reply.clears_cookie() {
            flags.retain(|f| *f != "Max-Age=0");
        }
        assert_eq!(
            flags,
            ["HttpOnly", "Path=/", "SameSite=Lax", "Secure"],
            "{set}"
        );
    }
}

#[tokio::test]
async fn only_the_development_switch_drops_secure_and_only_on_localhost() {
    let dev = Config::development_plain_http_on_localhost("http://127.0.0.1:3000").unwrap();
    assert!(!dev.secure());
    let h = harness_with(dev, |_| {}).await;
    let r = h.get("/", None).await;
    let set = r.set_cookie.unwrap();
    assert!(set.starts_with("sid="), "{set}");
    assert!(set.ends_with("; Path=/; HttpOnly; SameSite=Lax"), "{set}");
    for origin in [
        "http://localhost:3000",
        "http://[::1]:3000",
        "http://localhost",
    ] {
        assert!(
            Config::development_plain_http_on_localhost(origin).is_ok(),
            "{origin}"
        );
    }
    for origin in [
        "http://app.example.com",
        "http://localhost.evil.example",
        "https://localhost",
    ] {
        assert!(
            Config::development_plain_http_on_localhost(origin).is_err(),
            "{origin}"
        );
    }

    // Without the switch the cookie is always Secure, and plain http is refused.
    let production = Config::new("https://App.Example.test:443/").unwrap();
    assert!(production.secure());
    assert_eq!(production.origin(), ORIGIN);
    for origin in [
        "http://app.example.test",
        "https://app.example.test/path",
        "app.example.test",
    ] {
        assert!(Config::new(origin).is_err(), "{origin}");
    }
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in_and_the_pre_sign_in_cookie_no_longer_authenticates() {
    let h = harness().await;
    let mut b = h.browser();
    b.get("/").await;
    let before = b.cookie.clone().unwrap();
    let r = b.post("/login", SIGN_IN).await;
    assert_eq!(r.message(), SIGNED_IN);
    let after = r.cookie().expect("a new session id at sign-in");
    assert_ne!(after, before);
    assert!(
        !h.mem.sessions.has_hash(&hash_of(&before)),
        "the old id is gone from the store"
    );
    assert_eq!(h.get("/", Some(&after)).await.message(), SIGNED_IN);
    let r = h.get("/", Some(&before)).await;
    assert_eq!(
        r.message(),
        ANONYMOUS,
        "the pre-sign-in cookie opens nothing"
    );
    assert_ne!(
        r.cookie(),
        Some(after),
        "it is not handed the signed-in session"
    );
}

#[tokio::test]
async fn logout_ends_the_session_server_side_and_the_old_cookie_is_anonymous() {
    let h = harness().await;
    let mut b = h.browser();
    b.get("/").await;
    b.post("/login", SIGN_IN).await;
    let (cookie, token) = (b.cookie.clone().unwrap(), b.token.clone().unwrap());
    assert_eq!(h.mem.sessions.list_active_count(), 1);
    let r = b.post("/logout", "").await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::OK, "You are signed out.")
    );
    assert!(r.clears_cookie());
    assert!(
        !h.mem.sessions.has_hash(&hash_of(&cookie)),
        "deleted from the store"
    );
    assert_eq!(h.mem.sessions.list_active_count(), 0);

    // A browser that kept the cookie (or a thief who copied it) is nobody.
    assert_eq!(h.get("/", Some(&cookie)).await.message(), ANONYMOUS);
    let r = post(
        &h,
        "/totp/setup",
        &cookie,
        &[("sec-fetch-site", "same-origin")],
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::UNAUTHORIZED, "Please sign in first.")
    );
}

/// Sessions that fail, once told to, as a database driver would: with text no user may see.
struct BrokenSessions {
    inner: Arc<MemorySessions>,
    broken: Arc<AtomicBool>,
}

const DRIVER_TEXT: &str = "connection to db.internal:5432 refused (user modal2fa)";

impl BrokenSessions {
    fn check(&self) -> PortResult<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(PortError::Unexpected(DRIVER_TEXT.into()));
        }
        Ok(())
    }
}

#[async_trait]
impl SessionStore for BrokenSessions {
    async fn load(&self, id_hash: &str) -> PortResult<Option<SessionRecord>> {
        self.check()?;
        self.inner.load(id_hash).await
    }
    async fn save(&self, record: &SessionRecord) -> PortResult<()> {
        self.check()?;
        self.inner.save(record).await
    }
    async fn renew(&self, old_hash: &str, record: &SessionRecord) -> PortResult<bool> {
        self.check()?;
        self.inner.renew(old_hash, record).await
    }
    async fn replace(&self, record: &SessionRecord) -> PortResult<bool> {
        self.check()?;
        self.inner.replace(record).await
    }
    async fn touch(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
        idle_expiry: OffsetDateTime,
        absolute_timeout: time::Duration,
    ) -> PortResult<bool> {
        self.check()?;
        self.inner
            .touch(id_hash, now, idle_expiry, absolute_timeout)
            .await
    }
    async fn delete(&self, id_hash: &str) -> PortResult<bool> {
        self.check()?;
        self.inner.delete(id_hash).await
    }
    async fn list_active(&self, now: OffsetDateTime, page: Page) -> PortResult<Vec<SessionRecord>> {
        self.check()?;
        self.inner.list_active(now, page).await
    }
    async fn delete_for_user(&self, user: UserId) -> PortResult<u64> {
        self.check()?;
        self.inner.delete_for_user(user).await
    }
    async fn delete_for_passkey(&self, user: UserId, passkey: i64) -> PortResult<u64> {
        self.check()?;
        self.inner.delete_for_passkey(user, passkey).await
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> PortResult<u64> {
        self.check()?;
        self.inner.purge_expired(now).await
    }
}

/// Collects what `tracing` writes.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn an_internal_error_answers_a_fixed_message_and_only_the_log_has_the_cause() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _log = tracing::subscriber::set_default(subscriber);
    let broken = Arc::new(AtomicBool::new(false));
    let switch = broken.clone();
    let h = harness_with(Config::new(ORIGIN).unwrap(), move |ports| {
        ports.sessions = Arc::new(BrokenSessions {
            inner: Arc::new(MemorySessions::default()),
            broken: switch,
        });
    })
    .await;
    let mut b = h.browser();
    b.get("/").await;
    broken.store(true, Ordering::SeqCst);

    let r = b.post("/login", SIGN_IN).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, SOMETHING_WENT_WRONG)
    );
    let r = b.get("/").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, SOMETHING_WENT_WRONG)
    );

    let log = log.text();
    assert!(log.contains(DRIVER_TEXT), "the cause is logged: {log}");
    let (cookie, token) = (b.cookie.unwrap(), b.token.unwrap());
    for secret in ["demo password", cookie.split_once('=').unwrap().1, &token] {
        assert!(!log.contains(secret), "{secret} is not logged: {log}");
    }
}

#[tokio::test]
async fn a_malformed_form_answers_fixed_copy_not_the_parser_s_message() {
    let h = harness().await;
    let mut b = h.browser();
    b.get("/").await;
    b.post("/login", SIGN_IN).await;
    let r = b.post("/totp/confirm", "enrolment=x").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check what you typed and try again."
        )
    );
    let r = b.post("/login", "username=alice").await;
    assert_eq!(
        r.body, "Please check what you typed and try again.",
        "no field names"
    );
}
