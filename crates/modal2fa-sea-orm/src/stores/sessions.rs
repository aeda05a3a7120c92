//! [`SessionStore`] over `modal2fa_sessions`.

use async_trait::async_trait;
use modal2fa_core::model::*;
use modal2fa_core::ports::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use time::OffsetDateTime;

use super::{corrupt, ip};
use crate::entities::*;
use crate::{SeaOrmStore, conflict_on, from_micros, map_err, to_micros};

fn session_from(m: sessions::Model) -> PortResult<SessionRecord> {
    Ok(SessionRecord {
        id_hash: m.id_hash,
        user_id: m.user_id.map(UserId),
        method: m
            .method
            .as_deref()
            .map(str::parse::<AuthMethod>)
            .transpose()
            .map_err(|_| corrupt("method"))?,
        passkey_id: m.passkey_id,
        ip: ip(m.ip)?,
        user_agent: m.user_agent,
        created_at: from_micros(m.created_at),
        last_seen_at: from_micros(m.last_seen_at),
        expires_at: from_micros(m.expires_at),
        data: m.data,
    })
}

fn session_row(r: &SessionRecord) -> sessions::ActiveModel {
    sessions::ActiveModel {
        id_hash: Set(r.id_hash.clone()),
        user_id: Set(r.user_id.map(|u| u.0)),
        method: Set(r.method.map(|m| m.as_str().to_owned())),
        passkey_id: Set(r.passkey_id),
        ip: Set(r.ip.map(|i| i.to_string())),
        user_agent: Set(r.user_agent.clone()),
        created_at: Set(to_micros(r.created_at)),
        last_seen_at: Set(to_micros(r.last_seen_at)),
        expires_at: Set(to_micros(r.expires_at)),
        data: Set(r.data.clone()),
    }
}

#[async_trait]
impl SessionStore for SeaOrmStore {
    async fn load(&self, id_hash: &str) -> PortResult<Option<SessionRecord>> {
        sessions::Entity::find_by_id(id_hash.to_owned())
            .one(&self.db)
            .await
            .map_err(map_err)?
            .map(session_from)
            .transpose()
    }

    async fn save(&self, record: &SessionRecord) -> PortResult<()> {
        sessions::Entity::insert(session_row(record))
            .exec_without_returning(&self.db)
            .await
            .map_err(conflict_on(ConflictKind::Session))?;
        Ok(())
    }

    async fn renew(&self, old_hash: &str, record: &SessionRecord) -> PortResult<bool> {
        // One statement: the row takes its new id and contents in place. No row under the
        // old id means the session was ended meanwhile; it stays ended.
        let mut row = session_row(record);
        row.id_hash = Set(record.id_hash.clone());
        let res = sessions::Entity::update_many()
            .set(row)
            .filter(sessions::Column::IdHash.eq(old_hash))
            .exec(&self.db)
            .await
            .map_err(conflict_on(ConflictKind::Session))?;
        Ok(res.rows_affected == 1)
    }

    async fn replace(&self, record: &SessionRecord) -> PortResult<bool> {
        let res = sessions::Entity::update_many()
            .set(session_row(record))
            .filter(sessions::Column::IdHash.eq(record.id_hash.as_str()))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn touch(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
        idle_expiry: OffsetDateTime,
        absolute_timeout: time::Duration,
    ) -> PortResult<bool> {
        use sessions::Column as C;
        let idle = to_micros(idle_expiry);
        let absolute =
            (absolute_timeout.whole_microseconds()).clamp(0, i128::from(i64::MAX / 2)) as i64;
        let capped = Expr::col(C::CreatedAt).add(absolute);
        // expires_at = min(idle_expiry, created_at + absolute_timeout), in one statement.
        let expiry = Expr::case(capped.clone().lt(idle), capped).finally(idle);
        let res = sessions::Entity::update_many()
            .col_expr(C::LastSeenAt, Expr::value(to_micros(now)))
            .col_expr(C::ExpiresAt, expiry.into())
            .filter(C::IdHash.eq(id_hash))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete(&self, id_hash: &str) -> PortResult<bool> {
        let res = sessions::Entity::delete_by_id(id_hash.to_owned())
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn list_active(&self, now: OffsetDateTime, page: Page) -> PortResult<Vec<SessionRecord>> {
        sessions::Entity::find()
            .filter(sessions::Column::UserId.is_not_null())
            .filter(sessions::Column::ExpiresAt.gt(to_micros(now)))
            .order_by_desc(sessions::Column::CreatedAt)
            .order_by_desc(sessions::Column::IdHash)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(session_from)
            .collect()
    }

    async fn delete_for_user(&self, user: UserId) -> PortResult<u64> {
        Ok(sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user.0))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn delete_for_passkey(&self, user: UserId, passkey: i64) -> PortResult<u64> {
        Ok(sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user.0))
            .filter(sessions::Column::PasskeyId.eq(passkey))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> PortResult<u64> {
        Ok(sessions::Entity::delete_many()
            .filter(sessions::Column::ExpiresAt.lte(to_micros(now)))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }
}
