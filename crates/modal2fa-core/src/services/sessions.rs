//! Server-side sessions over the [`SessionStore`](crate::ports::SessionStore) port: random
//! 256-bit ids given to the browser, only their SHA-256 stored; idle and absolute timeouts.

use std::sync::Arc;

use super::Context;
use crate::crypto::{random_token, sha256_hex};
use crate::error::{ServiceError, ServiceResult};
use crate::machine::LoginState;
use crate::model::{RequestContext, SessionRecord};
use crate::secret::SecretString;

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
        let now = c.now();
        let s = &c.settings.session;
        if record.expires_at <= now
            || now - record.last_seen_at > s.idle_timeout
            || now - record.created_at > s.absolute_timeout
        {
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
        let expires_at = (now + c.settings.session.idle_timeout)
            .min(created_at + c.settings.session.absolute_timeout);
        Ok(SessionRecord {
            id_hash: hash,
            user_id: state.signed_in().map(|s| s.user_id),
            method: state.signed_in().map(|s| s.method),
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

    /// Saves `state` under the same id.
    pub async fn update(
        &self,
        id: &SecretString,
        previous: &SessionRecord,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let record = self.record(Self::id_hash(id), state, Some(previous), ctx)?;
        self.0.ports.sessions.save(&record).await?;
        Ok(())
    }

    /// Moves the session to a new id (privilege change) and returns the new id.
    /// A renewal starts the absolute timeout afresh only when the user changes.
    pub async fn renew(
        &self,
        old: Option<(&SecretString, &SessionRecord)>,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<SecretString> {
        let c = &self.0;
        let id = SecretString::new(random_token(c.ports.random.as_ref(), 32));
        let keep_age = old
            .map(|(_, r)| r)
            .filter(|r| r.user_id.is_some() && r.user_id == state.signed_in().map(|s| s.user_id));
        let record = self.record(Self::id_hash(&id), state, keep_age, ctx)?;
        match old {
            Some((old_id, _)) => {
                c.ports
                    .sessions
                    .renew(&Self::id_hash(old_id), &record)
                    .await?
            }
            None => c.ports.sessions.save(&record).await?,
        }
        Ok(id)
    }

    /// Deletes a session.
    pub async fn end(&self, id: &SecretString) -> ServiceResult<()> {
        self.0.ports.sessions.delete(&Self::id_hash(id)).await?;
        Ok(())
    }
}
