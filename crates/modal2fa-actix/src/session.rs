//! actix-session bridged onto the core session service: the browser holds a random
//! 64-character key, the database only its SHA-256, with the user, method, IP, browser
//! and expiry as columns so admins can list and end sessions. Sessions end after the idle
//! timeout and after the absolute timeout, however active.
//!
//! Writes are kept to what changes: a request that changes the session's state writes it
//! (which also slides its expiry); one that does not writes nothing, unless the session
//! was last seen longer ago than a tenth of the idle timeout, when loading it marks it
//! seen. So a burst of requests costs one read each, and the idle timeout is still kept
//! to within a tenth of itself. A renewal (actix-session deletes the old key, then saves
//! under a new one) becomes one statement moving the row to its new id: within a request
//! the deletion waits (see [`SessionLayer`](crate::SessionLayer)), and the save that
//! follows renews instead of inserting; a deletion no save follows runs when the request
//! is done.
//!
//! An ended session stays ended: a request that loaded it before another request ended it
//! writes only by conditional writes (replace, renew, touch) that find no row and store
//! nothing, so its cookie, and the next request, are anonymous.

use std::cell::RefCell;
use std::collections::HashMap;

use actix_session::Session;
use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration as CookieDuration;
use modal2fa_core::LoginState;
use modal2fa_core::crypto::sha256_hex;
use modal2fa_core::model::SessionRecord;
use modal2fa_core::services::{SessionService, session_expiry};
use time::OffsetDateTime;

/// The session entry holding the [`LoginState`].
pub const LOGIN_STATE: &str = "modal2fa.login";
/// The session entry holding the client address (shown to admins).
pub const CLIENT_IP: &str = "modal2fa.ip";
/// The session entry holding the browser (shown to admins).
pub const USER_AGENT: &str = "modal2fa.ua";
/// The session entry holding the creation time (Unix seconds) for the absolute timeout.
pub const CREATED: &str = "modal2fa.created";

/// What a session store error says when the store cannot be reached: the session layer
/// answers such a request with 503 instead of 500.
pub(crate) const STORE_UNAVAILABLE: &str = "modal2fa: the session store is unavailable";

/// A session store failure, kept apart from an unavailable store.
fn store_error(e: modal2fa_core::ServiceError) -> anyhow::Error {
    match e {
        modal2fa_core::ServiceError::Unavailable(source) => {
            tracing::error!(error = %crate::error::chain(source.as_ref()), "the session store is unavailable");
            anyhow::anyhow!(STORE_UNAVAILABLE)
        }
        other => anyhow::Error::new(other),
    }
}

tokio::task_local! {
    /// Within a request: the id hash whose deletion waits for a renewal's save.
    pub(crate) static DEFERRED_DELETE: RefCell<Option<String>>;
}

/// The login state a session holds (anonymous when it holds none).
pub fn login_state(session: &Session) -> LoginState {
    session
        .get::<LoginState>(LOGIN_STATE)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// actix-session storage over the core session service.
#[derive(Clone)]
pub struct PortSessionStore {
    sessions: SessionService,
}

impl PortSessionStore {
    /// A bridge to the core's sessions.
    pub fn new(sessions: SessionService) -> Self {
        Self { sessions }
    }

    fn record(
        &self,
        key: &SessionKey,
        state: &HashMap<String, String>,
    ) -> anyhow::Result<SessionRecord> {
        let now = self.sessions.now();
        let login: LoginState = state
            .get(LOGIN_STATE)
            .map(|v| serde_json::from_str(v))
            .transpose()?
            .unwrap_or_default();
        let text = |k: &str| {
            state
                .get(k)
                .and_then(|v| serde_json::from_str::<String>(v).ok())
        };
        let created_at = state
            .get(CREATED)
            .and_then(|v| serde_json::from_str::<i64>(v).ok())
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(now);
        Ok(SessionRecord {
            id_hash: hash(key),
            user_id: login.signed_in().map(|s| s.user_id),
            method: login.signed_in().map(|s| s.method),
            passkey_id: login.signed_in().and_then(|s| s.passkey),
            ip: text(CLIENT_IP).and_then(|v| v.parse().ok()),
            user_agent: text(USER_AGENT).unwrap_or_default(),
            created_at,
            last_seen_at: now,
            expires_at: session_expiry(created_at, now, self.sessions.settings()),
            data: serde_json::to_string(state)?,
        })
    }
}

/// Deletes a session row now.
pub(crate) async fn delete_now(sessions: &SessionService, id_hash: &str) -> anyhow::Result<()> {
    sessions.delete_record(id_hash).await.map_err(store_error)?;
    Ok(())
}

fn hash(key: &SessionKey) -> String {
    sha256_hex(key.as_ref().as_bytes())
}

impl SessionStore for PortSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let id_hash = hash(key);
        let other = |e| LoadError::Other(store_error(e));
        let Some(record) = self.sessions.load_record(&id_hash).await.map_err(other)? else {
            return Ok(None);
        };
        let now = self.sessions.now();
        if now - record.last_seen_at >= self.sessions.settings().idle_timeout / 10 {
            self.sessions.touch_record(&id_hash).await.map_err(other)?;
        }
        serde_json::from_str(&record.data)
            .map(Some)
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = generate_session_key();
        let record = self
            .record(&key, &state)
            .map_err(SaveError::Serialization)?;
        let renewing = DEFERRED_DELETE
            .try_with(|d| d.borrow_mut().take())
            .ok()
            .flatten();
        match renewing {
            Some(old) => {
                let renewed = self.sessions.renew_record(&old, &record).await;
                // `false`: the session was ended while this request ran. It stays ended:
                // the browser gets a key under which nothing is stored, i.e. anonymous.
                renewed.map_err(|e| SaveError::Other(store_error(e)))?;
            }
            None => self
                .sessions
                .save_record(&record)
                .await
                .map_err(|e| SaveError::Other(store_error(e)))?,
        }
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let record = self
            .record(&key, &state)
            .map_err(UpdateError::Serialization)?;
        // `false`: the session was ended while this request ran. It stays ended: nothing
        // is stored, and the browser's key now finds nothing (anonymous).
        self.sessions
            .replace_record(&record)
            .await
            .map_err(|e| UpdateError::Other(store_error(e)))?;
        Ok(key)
    }

    async fn update_ttl(&self, key: &SessionKey, _ttl: &CookieDuration) -> anyhow::Result<()> {
        self.sessions
            .touch_record(&hash(key))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        // Within a request the deletion waits: a save that follows turns it into a renewal.
        let deferred = DEFERRED_DELETE.try_with(|d| *d.borrow_mut() = Some(hash(key)));
        if deferred.is_err() {
            delete_now(&self.sessions, &hash(key)).await?;
        }
        Ok(())
    }
}
