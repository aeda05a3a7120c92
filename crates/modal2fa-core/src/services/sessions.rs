//! Server-side sessions over the [`SessionStore`](crate::ports::SessionStore) port: random
//! 256-bit ids given to the browser, only their SHA-256 stored; idle and absolute timeouts.
//!
//! An ended session stays ended. A request that loaded a session before another request
//! ended it (a logout in another tab, "sign out other sessions", an admin's sign-out) can
//! only write to it by a conditional write — replace, renew, touch — that finds no row and
//! stores nothing; a new row is written only for a session that never had one. So the
//! request in flight ends anonymous, and so does the next one.

use std::sync::Arc;

use super::Context;
use crate::crypto::{random_token, sha256_hex};
use crate::error::{ServiceError, ServiceResult};
use crate::machine::LoginState;
use crate::model::{RequestContext, SessionRecord};
use crate::secret::SecretString;
use crate::settings::SessionSettings;
use time::OffsetDateTime;

/// When a session seen at `now` expires: after the idle timeout, but never later than its
/// creation plus the absolute timeout. The one place this rule is written.
pub fn session_expiry(
    created_at: OffsetDateTime,
    now: OffsetDateTime,
    settings: &SessionSettings,
) -> OffsetDateTime {
    (now + settings.idle_timeout).min(created_at + settings.absolute_timeout)
}

/// Whether a stored session is over at `now` (idle, absolute, or its stored expiry).
pub fn session_is_over(record: &SessionRecord, now: OffsetDateTime, s: &SessionSettings) -> bool {
    record.expires_at <= now
        || now - record.last_seen_at > s.idle_timeout
        || now - record.created_at >= s.absolute_timeout
}

/// A session read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSession {
    /// The stored row.
    pub record: SessionRecord,
    /// The login state it holds.
    pub state: LoginState,
}

/// Sessions.
#[derive(Clone)]
pub struct SessionService(pub(crate) Arc<Context>);

impl SessionService {
    /// The SHA-256 (hex) under which a session id is stored.
    pub fn id_hash(id: &SecretString) -> String {
        sha256_hex(id.expose().as_bytes())
    }

    /// Loads a session; an expired one (idle or absolute) is deleted and not returned.
    pub async fn load(&self, id: &SecretString) -> ServiceResult<Option<LoadedSession>> {
        let c = &self.0;
        if id.expose().len() > 128 {
            return Ok(None);
        }
        let hash = Self::id_hash(id);
        let Some(record) = c.ports.sessions.load(&hash).await? else {
            return Ok(None);
        };
        if session_is_over(&record, c.now(), &c.settings.session) {
            c.ports.sessions.delete(&hash).await?;
            return Ok(None);
        }
        let state = serde_json::from_str(&record.data)
            .map_err(|e| ServiceError::Unexpected(Box::new(e)))?;
        Ok(Some(LoadedSession { record, state }))
    }

    fn record(
        &self,
        hash: String,
        state: &LoginState,
        previous: Option<&SessionRecord>,
        ctx: &RequestContext,
    ) -> ServiceResult<SessionRecord> {
        let c = &self.0;
        let now = c.now();
        let created_at = previous.map(|p| p.created_at).unwrap_or(now);
        let expires_at = session_expiry(created_at, now, &c.settings.session);
        Ok(SessionRecord {
            id_hash: hash,
            user_id: state.signed_in().map(|s| s.user_id),
            method: state.signed_in().map(|s| s.method),
            passkey_id: state.signed_in().and_then(|s| s.passkey),
            ip: Some(ctx.ip),
            user_agent: ctx.user_agent.clone(),
            created_at,
            last_seen_at: now,
            expires_at,
            data: serde_json::to_string(state)
                .map_err(|e| ServiceError::Unexpected(Box::new(e)))?,
        })
    }

    /// Stores `state` under a new id and returns the id for the cookie.
    pub async fn create(
        &self,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<SecretString> {
        let c = &self.0;
        let id = SecretString::new(random_token(c.ports.random.as_ref(), 32));
        let record = self.record(Self::id_hash(&id), state, None, ctx)?;
        c.ports.sessions.save(&record).await?;
        Ok(id)
    }

    /// Saves `state` under the same id. `false`, storing nothing, when the session was
    /// ended meanwhile: it stays ended and the caller treats the browser as anonymous.
    pub async fn update(
        &self,
        id: &SecretString,
        previous: &SessionRecord,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<bool> {
        let record = self.record(Self::id_hash(id), state, Some(previous), ctx)?;
        Ok(self.0.ports.sessions.replace(&record).await?)
    }

    /// Moves the session to a new id (privilege change) and returns the new id; with no
    /// session before, stores a new one. `None`, storing nothing, when the old session was
    /// ended meanwhile: it stays ended. A renewal starts the absolute timeout afresh only
    /// when the user changes.
    pub async fn renew(
        &self,
        old: Option<(&SecretString, &SessionRecord)>,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<Option<SecretString>> {
        let c = &self.0;
        let id = SecretString::new(random_token(c.ports.random.as_ref(), 32));
        let keep_age = old
            .map(|(_, r)| r)
            .filter(|r| r.user_id.is_some() && r.user_id == state.signed_in().map(|s| s.user_id));
        let record = self.record(Self::id_hash(&id), state, keep_age, ctx)?;
        let stored = match old {
            Some((old_id, _)) => {
                c.ports
                    .sessions
                    .renew(&Self::id_hash(old_id), &record)
                    .await?
            }
            None => {
                c.ports.sessions.save(&record).await?;
                true
            }
        };
        Ok(stored.then_some(id))
    }

    /// Deletes a session.
    pub async fn end(&self, id: &SecretString) -> ServiceResult<()> {
        self.0.ports.sessions.delete(&Self::id_hash(id)).await?;
        Ok(())
    }

    /// The session settings in force.
    pub fn settings(&self) -> &SessionSettings {
        &self.0.settings.session
    }

    /// Now, by the configured clock.
    pub fn now(&self) -> OffsetDateTime {
        self.0.now()
    }

    /// The stored row with this id hash, if it exists and is not over (an expired one is
    /// deleted). For session bridges such as the actix-web layer's.
    pub async fn load_record(&self, id_hash: &str) -> ServiceResult<Option<SessionRecord>> {
        let c = &self.0;
        let Some(record) = c.ports.sessions.load(id_hash).await? else {
            return Ok(None);
        };
        if session_is_over(&record, c.now(), &c.settings.session) {
            c.ports.sessions.delete(id_hash).await?;
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// Stores a new session row (never replaces one).
    pub async fn save_record(&self, record: &SessionRecord) -> ServiceResult<()> {
        Ok(self.0.ports.sessions.save(record).await?)
    }

    /// Moves the row of `old_hash` to `record`'s new id (a renewal, one statement); `false`,
    /// storing nothing, when the old row is gone (the session was ended meanwhile).
    pub async fn renew_record(
        &self,
        old_hash: &str,
        record: &SessionRecord,
    ) -> ServiceResult<bool> {
        Ok(self.0.ports.sessions.renew(old_hash, record).await?)
    }

    /// Replaces an existing row; `false`, storing nothing, when it is gone.
    pub async fn replace_record(&self, record: &SessionRecord) -> ServiceResult<bool> {
        Ok(self.0.ports.sessions.replace(record).await?)
    }

    /// Marks a session seen now, sliding its expiry (capped by the absolute timeout).
    pub async fn touch_record(&self, id_hash: &str) -> ServiceResult<bool> {
        let c = &self.0;
        let now = c.now();
        let s = &c.settings.session;
        Ok(c.ports
            .sessions
            .touch(id_hash, now, now + s.idle_timeout, s.absolute_timeout)
            .await?)
    }

    /// Deletes a session row.
    pub async fn delete_record(&self, id_hash: &str) -> ServiceResult<bool> {
        Ok(self.0.ports.sessions.delete(id_hash).await?)
    }
}
