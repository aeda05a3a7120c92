//! The test harness: the app on in-memory adapters, driven without a socket, and a small
//! browser that keeps the session cookie and the forms' CSRF token as a real one would.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum_minimal::Config;
use modal2fa_core::ports::Clock;
use modal2fa_core::services::NewAccount;
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{DefaultPolicy, Modal2fa, Ports, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;
use tower::ServiceExt;

/// Where the test app is served.
pub const ORIGIN: &str = "https://app.example.test";

pub struct Harness {
    pub app: axum::Router,
    pub mem: MemoryPorts,
}

/// The app under [`ORIGIN`] with a user `alice` / `demo password`.
pub async fn harness() -> Harness {
    harness_with(Config::new(ORIGIN).unwrap(), |_| {}).await
}

/// The app with `config`, its ports changed by `adapt` first.
pub async fn harness_with(config: Config, adapt: impl FnOnce(&mut Ports)) -> Harness {
    let mem = MemoryPorts::new();
    let mut ports = mem.ports.clone();
    adapt(&mut ports);
    let settings = Settings {
        password_hashing: modal2fa_core::password::PasswordHashing::FOR_TESTS,
        ..Settings::default()
    };
    let secret = ServerSecret::new(vec![5; 32]).unwrap();
    let auth = Modal2fa::new(ports, Arc::new(DefaultPolicy), settings, &secret);
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
        app: axum_minimal::router(auth, &secret, config),
        mem,
    }
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    /// The whole `Set-Cookie` header, attributes included.
    pub set_cookie: Option<String>,
}

impl Reply {
    /// The page's message (the whole body of a plain-text answer).
    pub fn message(&self) -> &str {
        between(&self.body, r#"<p id="message">"#, "</p>").unwrap_or(&self.body)
    }

    /// The CSRF token in the page's forms.
    pub fn token(&self) -> Option<&str> {
        self.input("csrf")
    }

    /// The value of a form's hidden input.
    pub fn input(&self, name: &str) -> Option<&str> {
        between(&self.body, &format!(r#"name="{name}" value=""#), "\"")
    }

    /// The text of `<code id="…">`.
    pub fn code(&self, id: &str) -> Option<&str> {
        between(&self.body, &format!(r#"<code id="{id}">"#), "</code>")
    }

    /// `name=value` of the cookie set, unless it is being cleared.
    pub fn cookie(&self) -> Option<String> {
        let set = self.set_cookie.as_deref()?;
        (!set.contains("Max-Age=0")).then(|| set.split(';').next().unwrap().to_owned())
    }

    /// Whether the response clears the cookie.
    pub fn clears_cookie(&self) -> bool {
        self.set_cookie
            .as_deref()
            .is_some_and(|s| s.contains("Max-Age=0"))
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

impl Harness {
    /// Sends one request as it is.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if !body.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let set_cookie = resp
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            body: String::from_utf8(body.to_vec()).unwrap(),
            set_cookie,
        }
    }

    /// `GET path` with a `Cookie` header, if given.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let headers: Vec<_> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        self.send(Method::GET, path, &headers, "").await
    }

    /// A new browser with nothing stored.
    pub fn browser(&self) -> Browser<'_> {
        Browser {
            h: self,
            cookie: None,
            token: None,
        }
    }

    /// The current TOTP code for `secret`.
    pub fn code_for(&self, secret: &[u8]) -> String {
        totp::code_at(secret, &TotpParams::default(), self.mem.clock.now())
    }
}

/// Keeps the session cookie and the latest page's CSRF token; its POSTs are same-origin
/// and carry the token, as a form submitted from our page does.
pub struct Browser<'h> {
    h: &'h Harness,
    /// `name=value` of the session cookie.
    pub cookie: Option<String>,
    /// The token of the last page with forms.
    pub token: Option<String>,
}

impl Browser<'_> {
    /// Loads a page.
    pub async fn get(&mut self, path: &str) -> Reply {
        let reply = self.h.get(path, self.cookie.as_deref()).await;
        self.keep(&reply);
        reply
    }

    /// Submits a form (`form` urlencoded, without the token, which is added).
    pub async fn post(&mut self, path: &str, form: &str) -> Reply {
        let token = self.token.clone().expect("a page with forms first");
        let body = if form.is_empty() {
            format!("csrf={token}")
        } else {
            format!("{form}&csrf={token}")
        };
        let mut headers = vec![("sec-fetch-site", "same-origin"), ("origin", ORIGIN)];
        if let Some(c) = &self.cookie {
            headers.push(("cookie", c));
        }
        let reply = self.h.send(Method::POST, path, &headers, &body).await;
        self.keep(&reply);
        reply
    }

    fn keep(&mut self, reply: &Reply) {
        if reply.clears_cookie() {
            self.cookie = None;
        } else if let Some(c) = reply.cookie() {
            self.cookie = Some(c);
        }
        if let Some(t) = reply.token() {
            self.token = Some(t.to_owned());
        }
    }
}
