//! The session cookie and the session it names.
//!
//! The cookie holds only a random id; the store keeps the id's SHA-256 and the login
//! state. The cookie is set as
//!
//! ```text
//! __Host-sid=<id>; Path=/; Secure; HttpOnly; SameSite=Lax
//! ```
//!
//! - `HttpOnly`: no script, and so no injected script, can read the id;
//! - `SameSite=Lax`: the browser leaves it off POSTs from other sites (a second guard
//!   behind [`csrf`](crate::csrf));
//! - `Secure`: never sent over plain http, where anyone on the path would read it;
//! - the `__Host-` prefix: the browser accepts the cookie only with `Secure`, `Path=/`
//!   and no `Domain`, so a sibling subdomain or a plain-http page cannot plant a session
//!   id of its choosing (the start of a session fixation).
//!
//! Under [`Config::development_plain_http_on_localhost`] the cookie is a plain `sid`
//! without `Secure` (browsers refuse `Secure` over http).
//!
//! The id changes whenever privilege does ([`Session::persist`]) and is deleted from the
//! store at logout, so an old id, wherever it was seen, opens nothing.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use modal2fa_core::services::{LoadedSession, LoginReport};
use modal2fa_core::{LoginState, Modal2fa, RequestContext, SecretString, ServiceResult};

use crate::{App, Config};

/// The cookie's name with `Secure`.
pub const SECURE_COOKIE: &str = "__Host-sid";
/// The cookie's name under the development switch (the prefix requires `Secure`).
pub const DEVELOPMENT_COOKIE: &str = "sid";

/// What every handler needs from the request: the client and the session cookie.
pub struct Client {
    peer: IpAddr,
    forwarded_for: Vec<Vec<u8>>,
    user_agent: String,
    path: String,
    session: Option<SecretString>,
}

impl FromRequestParts<App> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header = |name| parts.headers.get_all(name).iter();
        Ok(Self {
            peer: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            forwarded_for: header("x-forwarded-for")
                .map(|v| v.as_bytes().to_vec())
                .collect(),
            user_agent: header(header::USER_AGENT.as_str())
                .find_map(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            path: parts.uri.path().to_owned(),
            session: cookie(&parts.headers, cookie_name(&app.config)).map(SecretString::new),
        })
    }
}

impl Client {
    /// The request as the core sees it (the client IP resolved by the core's settings).
    pub fn context(&self, auth: &Modal2fa) -> RequestContext {
        let xff: Vec<&[u8]> = self.forwarded_for.iter().map(Vec::as_slice).collect();
        let ip = auth.settings().client_ip.resolve(self.peer, &xff);
        RequestContext::new(ip, &self.user_agent, &self.path)
    }

    /// The id in the session cookie, live or not.
    pub fn session_id(&self) -> Option<&SecretString> {
        self.session.as_ref()
    }

    /// The session the cookie names, if the store still has it.
    pub async fn session(&self, auth: &Modal2fa) -> ServiceResult<Session> {
        let loaded = match &self.session {
            Some(id) => auth.sessions.load(id).await?,
            None => None,
        };
        Ok(Session {
            id: self.session.clone().filter(|_| loaded.is_some()),
            loaded,
        })
    }
}

/// The browser's session as the store has it: none when the cookie is missing, unknown,
/// expired or ended.
pub struct Session {
    id: Option<SecretString>,
    loaded: Option<LoadedSession>,
}

impl Session {
    /// The login state (anonymous without a session).
    pub fn state(&self) -> LoginState {
        self.loaded
            .as_ref()
            .map(|l| l.state.clone())
            .unwrap_or_default()
    }

    /// The id of the live session.
    pub fn id(&self) -> Option<&SecretString> {
        self.id.as_ref()
    }

    /// Stores the state a sign-in step leaves, as the report asks: ends the session, or
    /// moves it to a new id (privilege changed, or there was no live session), or saves it
    /// under the same id.
    pub async fn persist(
        self,
        auth: &Modal2fa,
        report: &LoginReport,
        ctx: &RequestContext,
    ) -> ServiceResult<Cookie> {
        if report.end_session {
            if let Some(id) = &self.id {
                auth.sessions.end(id).await?;
            }
            return Ok(Cookie::Clear);
        }
        let current = self
            .id
            .as_ref()
            .zip(self.loaded.as_ref().map(|l| &l.record));
        match current {
            // `false` / `None`: the session was ended while this request ran; it stays
            // ended and the browser is anonymous from now on.
            Some((id, record)) if !report.renew_session => {
                let kept = auth.sessions.update(id, record, &report.state, ctx).await?;
                Ok(if kept {
                    Cookie::Keep(id.clone())
                } else {
                    Cookie::Clear
                })
            }
            // `renew` deletes the old id in the same store call that saves the new one.
            _ => Ok(auth
                .sessions
                .renew(current, &report.state, ctx)
                .await?
                .map_or(Cookie::Clear, Cookie::Set)),
        }
    }
}

/// What a response does with the session cookie.
pub enum Cookie {
    /// The browser's id stays.
    Keep(SecretString),
    /// A new id.
    Set(SecretString),
    /// The session ended.
    Clear,
}

impl Cookie {
    /// The id the page's forms are for, if any.
    pub fn id(&self) -> Option<&SecretString> {
        match self {
            Self::Keep(id) | Self::Set(id) => Some(id),
            Self::Clear => None,
        }
    }

    /// The `Set-Cookie` header, if the cookie changes.
    pub fn header(&self, config: &Config) -> Option<HeaderValue> {
        let (name, flags) = (cookie_name(config), flags(config));
        let value = match self {
            Self::Keep(_) => return None,
            Self::Set(id) => format!("{name}={}; {flags}", id.expose()),
            Self::Clear => format!("{name}=; {flags}; Max-Age=0"),
        };
        Some(HeaderValue::from_str(&value).expect("a session id is base64url"))
    }
}

fn cookie_name(config: &Config) -> &'static str {
    if config.secure() {
        SECURE_COOKIE
    } else {
        DEVELOPMENT_COOKIE
    }
}

fn flags(config: &Config) -> &'static str {
    if config.secure() {
        "Path=/; Secure; HttpOnly; SameSite=Lax"
    } else {
        "Path=/; HttpOnly; SameSite=Lax"
    }
}

/// The value of the cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}
