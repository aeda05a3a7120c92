//! [`AuditLog`] over `modal2fa_audit_events`.

use async_trait::async_trait;
use modal2fa_core::model::*;
use modal2fa_core::ports::*;
use sea_orm::{EntityTrait, NotSet, QueryOrder, QuerySelect, Set};

use super::{corrupt, ip};
use crate::entities::*;
use crate::{SeaOrmStore, from_micros, map_err, to_micros};

fn kind_name(kind: modal2fa_core::model::AuditKind) -> PortResult<String> {
    match serde_json::to_value(kind).map_err(|e| PortError::Unexpected(Box::new(e)))? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(corrupt("audit kind")),
    }
}

fn audit_from(m: audit_events::Model) -> PortResult<AuditEvent> {
    Ok(AuditEvent {
        at: from_micros(m.at),
        kind: serde_json::from_value(serde_json::Value::String(m.kind))
            .map_err(|_| corrupt("audit kind"))?,
        user_id: m.user_id.map(UserId),
        username: m.username,
        ip: ip(m.ip)?,
        user_agent: m.user_agent,
        detail: m.detail,
    })
}

#[async_trait]
impl AuditLog for SeaOrmStore {
    async fn record(&self, e: AuditEvent) -> PortResult<()> {
        audit_events::Entity::insert(audit_events::ActiveModel {
            id: NotSet,
            at: Set(to_micros(e.at)),
            kind: Set(kind_name(e.kind)?),
            user_id: Set(e.user_id.map(|u| u.0)),
            username: Set(e.username),
            ip: Set(e.ip.map(|i| i.to_string())),
            user_agent: Set(e.user_agent),
            detail: Set(e.detail),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list(&self, page: Page) -> PortResult<Vec<AuditEvent>> {
        audit_events::Entity::find()
            .order_by_desc(audit_events::Column::At)
            .order_by_desc(audit_events::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(audit_from)
            .collect()
    }
}
