//! actix-session bridged onto the core [`SessionStore`](modal2fa_core::ports::SessionStore)
//! port: the browser holds a random 64-character key, the database only its SHA-256, with
//! the user, method, IP, browser and expiry as columns so admins can list and end
//! sessions. Sessions also end after the absolute timeout, however active.

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration as CookieDuration;
use modal2fa_core::LoginState;
use modal2fa_core::crypto::sha256_hex;
use modal2fa_core::model::SessionRecord;
use modal2fa_core::ports::{Clock, SessionStore as SessionPort};
use time::{Duration, OffsetDateTime};

/// The session entry holding the [`LoginState`].
pub const LOGIN_STATE: &str = "modal2fa.login";
/// The session entry holding the client address (shown to admins).
pub const CLIENT_IP: &str = "modal2fa.ip";
/// The session entry holding the browser (shown to admins).
pub const USER_AGENT: &str = "modal2fa.ua";
/// The session entry holding the creation time (Unix seconds) for the absolute timeout.
pub const CREATED: &str = "modal2fa.created";

/// actix-session storage over the core session port.
#[derive(Clone)]
pub struct PortSessionStore {
    port: Arc<dyn SessionPort>,
    clock: Arc<dyn Clock>,
    absolute_timeout: Duration,
}

impl PortSessionStore {
    /// A bridge to `port`, ending sessions older than `absolute_timeout`.
    pub fn new(
        port: Arc<dyn SessionPort>,
        clock: Arc<dyn Clock>,
        absolute_timeout: Duration,
    ) -> Self {
        Self {
            port,
            clock,
            absolute_timeout,
        }
    }

    fn record(
        &self,
        key: &SessionKey,
        state: &HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> anyhow::Result<SessionRecord> {
        let now = self.clock.now();
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
        let ttl = Duration::seconds(ttl.whole_seconds());
        Ok(SessionRecord {
            id_hash: sha256_hex(key.as_ref().as_bytes()),
            user_id: login.signed_in().map(|s| s.user_id),
            method: login.signed_in().map(|s| s.method),
            ip: text(CLIENT_IP).and_then(|v| v.parse().ok()),
            user_agent: text(USER_AGENT).unwrap_or_default(),
            created_at,
            last_seen_at: now,
            expires_at: (now + ttl).min(created_at + self.absolute_timeout),
            data: serde_json::to_string(state)?,
        })
    }
}

impl SessionStore for PortSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let hash = sha256_hex(key.as_ref().as_bytes());
        let Some(record) = self
            .port
            .load(&hash)
            .await
            .map_err(|e| LoadError::Other(anyhow::anyhow!(e)))?
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        if record.expires_at <= now || now - record.created_at >= self.absolute_timeout {
            self.port
                .delete(&hash)
                .await
                .map_err(|e| LoadError::Other(anyhow::anyhow!(e)))?;
            return Ok(None);
        }
        serde_json::from_str(&record.data)
            .map(Some)
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = generate_session_key();
        let record = self
            .record(&key, &state, ttl)
            .map_err(SaveError::Serialization)?;
        self.port
            .save(&record)
            .await
            .map_err(|e| SaveError::Other(anyhow::anyhow!(e)))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let record = self
            .record(&key, &state, ttl)
            .map_err(UpdateError::Serialization)?;
        let replaced = self
            .port
            .replace(&record)
            .await
            .map_err(|e| UpdateError::Other(anyhow::anyhow!(e)))?;
        if replaced {
            Ok(key)
        } else {
            // Ended meanwhile (an admin signed it out): start a new session instead.
            self.save(state, ttl)
                .await
                .map_err(|e| UpdateError::Other(anyhow::anyhow!(e.to_string())))
        }
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        let now = self.clock.now();
        self.port
            .touch(
                &sha256_hex(key.as_ref().as_bytes()),
                now,
                now + Duration::seconds(ttl.whole_seconds()),
                self.absolute_timeout,
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        self.port
            .delete(&sha256_hex(key.as_ref().as_bytes()))
            .await?;
        Ok(())
    }
}
