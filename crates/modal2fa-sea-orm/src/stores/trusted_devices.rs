//! [`TrustedDeviceStore`] over `modal2fa_trusted_devices`.

use async_trait::async_trait;
use modal2fa_core::model::*;
use modal2fa_core::ports::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{hex, ip, unhex};
use crate::entities::*;
use crate::{SeaOrmStore, conflict_on, from_micros, map_err, to_micros};

fn device_from(m: trusted_devices::Model) -> PortResult<TrustedDevice> {
    Ok(TrustedDevice {
        id: m.id,
        user_id: UserId(m.user_id),
        name: m.name,
        key_hash: unhex(&m.key_hash)?,
        previous_key_hash: m.previous_key_hash.as_deref().map(unhex).transpose()?,
        created_at: from_micros(m.created_at),
        last_used_at: from_micros(m.last_used_at),
        last_ip: ip(m.last_ip)?,
        user_agent: m.user_agent,
    })
}

#[async_trait]
impl TrustedDeviceStore for SeaOrmStore {
    async fn list(&self, user: UserId) -> PortResult<Vec<TrustedDevice>> {
        trusted_devices::Entity::find()
            .filter(trusted_devices::Column::UserId.eq(user.0))
            .order_by_desc(trusted_devices::Column::LastUsedAt)
            .order_by_desc(trusted_devices::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(device_from)
            .collect()
    }

    async fn find(&self, id: &str) -> PortResult<Option<TrustedDevice>> {
        trusted_devices::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(map_err)?
            .map(device_from)
            .transpose()
    }

    async fn insert(&self, d: TrustedDevice) -> PortResult<()> {
        trusted_devices::Entity::insert(trusted_devices::ActiveModel {
            id: Set(d.id),
            user_id: Set(d.user_id.0),
            name: Set(d.name),
            key_hash: Set(hex(&d.key_hash)),
            previous_key_hash: Set(d.previous_key_hash.as_deref().map(hex)),
            created_at: Set(to_micros(d.created_at)),
            last_used_at: Set(to_micros(d.last_used_at)),
            last_ip: Set(d.last_ip.map(|i| i.to_string())),
            user_agent: Set(d.user_agent),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(conflict_on(ConflictKind::TrustedDevice))?;
        Ok(())
    }

    async fn rotate(&self, r: Rotation<'_>) -> PortResult<bool> {
        let Rotation {
            id,
            user,
            expected_hash,
            new_hash,
            used_after,
            created_after,
            at,
            ip,
            user_agent,
        } = r;
        let res = trusted_devices::Entity::update_many()
            .col_expr(
                trusted_devices::Column::KeyHash,
                Expr::value(hex(&new_hash)),
            )
            .col_expr(
                trusted_devices::Column::PreviousKeyHash,
                Expr::value(hex(expected_hash)),
            )
            .col_expr(
                trusted_devices::Column::LastUsedAt,
                Expr::value(to_micros(at)),
            )
            .col_expr(
                trusted_devices::Column::LastIp,
                Expr::value(ip.map(|i| i.to_string())),
            )
            .col_expr(
                trusted_devices::Column::UserAgent,
                Expr::value(user_agent.to_owned()),
            )
            .filter(trusted_devices::Column::Id.eq(id))
            .filter(trusted_devices::Column::UserId.eq(user.0))
            .filter(trusted_devices::Column::LastUsedAt.gt(to_micros(used_after)))
            .filter(trusted_devices::Column::CreatedAt.gt(to_micros(created_after)))
            .filter(trusted_devices::Column::KeyHash.eq(hex(expected_hash)))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete(&self, user: UserId, id: &str) -> PortResult<bool> {
        let res = trusted_devices::Entity::delete_many()
            .filter(trusted_devices::Column::Id.eq(id))
            .filter(trusted_devices::Column::UserId.eq(user.0))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete_all(&self, user: UserId) -> PortResult<u64> {
        Ok(trusted_devices::Entity::delete_many()
            .filter(trusted_devices::Column::UserId.eq(user.0))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }
}
