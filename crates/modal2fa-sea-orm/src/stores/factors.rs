//! [`FactorStore`] over `modal2fa_totp_devices`, `modal2fa_webauthn_credentials` and
//! `modal2fa_recovery_codes`.

use async_trait::async_trait;
use modal2fa_core::crypto::sha256_hex;
use modal2fa_core::model::*;
use modal2fa_core::ports::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, NotSet, PaginatorTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use time::OffsetDateTime;

use super::{corrupt, hex};
use crate::entities::*;
use crate::{SeaOrmStore, conflict_on, from_micros, map_err, to_micros};

fn totp_from(m: totp_devices::Model) -> TotpDevice {
    TotpDevice {
        id: m.id,
        user_id: UserId(m.user_id),
        encrypted_secret: m.encrypted_secret,
        confirmed: m.confirmed,
        last_used_step: m.last_used_step,
        created_at: from_micros(m.created_at),
    }
}

fn webauthn_from(m: webauthn_credentials::Model) -> PortResult<WebAuthnCredential> {
    Ok(WebAuthnCredential {
        id: m.id,
        user_id: UserId(m.user_id),
        name: m.name,
        credential_id: m.credential_id,
        credential: m.credential,
        sign_count: u32::try_from(m.sign_count).map_err(|_| corrupt("sign count"))?,
        transports: serde_json::from_str(&m.transports).map_err(|_| corrupt("transports"))?,
        backup_eligible: m.backup_eligible,
        backup_state: m.backup_state,
        created_at: from_micros(m.created_at),
        last_used_at: m.last_used_at.map(from_micros),
    })
}

#[async_trait]
impl FactorStore for SeaOrmStore {
    async fn totp_devices(&self, user: UserId) -> PortResult<Vec<TotpDevice>> {
        Ok(totp_devices::Entity::find()
            .filter(totp_devices::Column::UserId.eq(user.0))
            .order_by_asc(totp_devices::Column::Id)
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(totp_from)
            .collect())
    }

    async fn add_totp(
        &self,
        user: UserId,
        encrypted_secret: Vec<u8>,
        at: OffsetDateTime,
    ) -> PortResult<TotpDevice> {
        let m = totp_devices::ActiveModel {
            id: NotSet,
            user_id: Set(user.0),
            encrypted_secret: Set(encrypted_secret),
            confirmed: Set(false),
            last_used_step: Set(None),
            created_at: Set(to_micros(at)),
        }
        .insert(&self.db)
        .await
        .map_err(map_err)?;
        Ok(totp_from(m))
    }

    async fn confirm_totp(&self, device: i64, step: i64) -> PortResult<bool> {
        let txn = self.db.begin().await.map_err(map_err)?;
        let c = &txn;
        let confirmed = {
            let res = totp_devices::Entity::update_many()
                .col_expr(totp_devices::Column::Confirmed, Expr::value(true))
                .col_expr(totp_devices::Column::LastUsedStep, Expr::value(step))
                .filter(totp_devices::Column::Id.eq(device))
                .filter(totp_devices::Column::Confirmed.eq(false))
                .exec(c)
                .await
                .map_err(map_err)?;
            if res.rows_affected == 1 {
                let owner = totp_devices::Entity::find_by_id(device)
                    .one(c)
                    .await
                    .map_err(map_err)?
                    .ok_or(PortError::NotFound)?;
                totp_devices::Entity::delete_many()
                    .filter(totp_devices::Column::UserId.eq(owner.user_id))
                    .filter(totp_devices::Column::Id.ne(device))
                    .exec(c)
                    .await
                    .map_err(map_err)?;
            }
            res.rows_affected == 1
        };
        // Nothing was written when the device was not confirmable: committing is a no-op.
        txn.commit().await.map_err(map_err)?;
        Ok(confirmed)
    }

    async fn advance_totp_step(&self, device: i64, step: i64) -> PortResult<bool> {
        let res = totp_devices::Entity::update_many()
            .col_expr(totp_devices::Column::LastUsedStep, Expr::value(step))
            .filter(totp_devices::Column::Id.eq(device))
            .filter(
                Condition::any()
                    .add(totp_devices::Column::LastUsedStep.is_null())
                    .add(totp_devices::Column::LastUsedStep.lt(step)),
            )
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete_totp(&self, user: UserId) -> PortResult<u64> {
        Ok(totp_devices::Entity::delete_many()
            .filter(totp_devices::Column::UserId.eq(user.0))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn purge_unconfirmed_totp(&self, before: OffsetDateTime) -> PortResult<u64> {
        Ok(totp_devices::Entity::delete_many()
            .filter(totp_devices::Column::Confirmed.eq(false))
            .filter(totp_devices::Column::CreatedAt.lt(to_micros(before)))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn webauthn_credentials(&self, user: UserId) -> PortResult<Vec<WebAuthnCredential>> {
        webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .order_by_asc(webauthn_credentials::Column::Id)
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(webauthn_from)
            .collect()
    }

    async fn find_webauthn(&self, credential_id: &[u8]) -> PortResult<Option<WebAuthnCredential>> {
        webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::CredentialIdHash.eq(sha256_hex(credential_id)))
            .one(&self.db)
            .await
            .map_err(map_err)?
            .map(webauthn_from)
            .transpose()
    }

    async fn add_webauthn(&self, c: NewWebAuthnCredential) -> PortResult<WebAuthnCredential> {
        let m = webauthn_credentials::ActiveModel {
            id: NotSet,
            user_id: Set(c.user_id.0),
            name: Set(c.name),
            credential_id_hash: Set(sha256_hex(&c.credential_id)),
            credential_id: Set(c.credential_id),
            credential: Set(c.credential),
            sign_count: Set(i64::from(c.sign_count)),
            transports: Set(serde_json::to_string(&c.transports)
                .map_err(|e| PortError::Unexpected(Box::new(e)))?),
            backup_eligible: Set(c.backup_eligible),
            backup_state: Set(c.backup_state),
            created_at: Set(to_micros(c.created_at)),
            last_used_at: Set(None),
        }
        .insert(&self.db)
        .await
        .map_err(conflict_on(ConflictKind::WebAuthnCredential))?;
        webauthn_from(m)
    }

    async fn update_webauthn_use(
        &self,
        id: i64,
        sign_count: u32,
        backup_state: bool,
        credential: String,
        at: OffsetDateTime,
    ) -> PortResult<bool> {
        let res = webauthn_credentials::Entity::update_many()
            .col_expr(
                webauthn_credentials::Column::SignCount,
                Expr::value(i64::from(sign_count)),
            )
            .col_expr(
                webauthn_credentials::Column::BackupState,
                Expr::value(backup_state),
            )
            .col_expr(
                webauthn_credentials::Column::Credential,
                Expr::value(credential),
            )
            .col_expr(
                webauthn_credentials::Column::LastUsedAt,
                Expr::value(to_micros(at)),
            )
            .filter(webauthn_credentials::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn rename_webauthn(&self, user: UserId, id: i64, name: &str) -> PortResult<bool> {
        let exists = webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .count(&self.db)
            .await
            .map_err(map_err)?;
        if exists == 0 {
            return Ok(false);
        }
        webauthn_credentials::Entity::update_many()
            .col_expr(
                webauthn_credentials::Column::Name,
                Expr::value(name.to_owned()),
            )
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(true)
    }

    async fn delete_webauthn(&self, user: UserId, id: i64) -> PortResult<bool> {
        let res = webauthn_credentials::Entity::delete_many()
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete_all_webauthn(&self, user: UserId) -> PortResult<u64> {
        Ok(webauthn_credentials::Entity::delete_many()
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: Vec<Vec<u8>>,
        at: OffsetDateTime,
    ) -> PortResult<()> {
        let txn = self.db.begin().await.map_err(map_err)?;
        let c = &txn;
        {
            recovery_codes::Entity::delete_many()
                .filter(recovery_codes::Column::UserId.eq(user.0))
                .exec(c)
                .await
                .map_err(map_err)?;
            if !hashes.is_empty() {
                let rows = hashes.iter().map(|h| recovery_codes::ActiveModel {
                    id: NotSet,
                    user_id: Set(user.0),
                    code_hash: Set(hex(h)),
                    created_at: Set(to_micros(at)),
                });
                recovery_codes::Entity::insert_many(rows)
                    .exec(c)
                    .await
                    .map_err(map_err)?;
            }
        }
        txn.commit().await.map_err(map_err)
    }

    async fn consume_recovery_code(&self, user: UserId, hash: &[u8]) -> PortResult<bool> {
        let Some(row) = recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(user.0))
            .filter(recovery_codes::Column::CodeHash.eq(hex(hash)))
            .one(&self.db)
            .await
            .map_err(map_err)?
        else {
            return Ok(false);
        };
        // Deleting by primary key: of concurrent consumers exactly one deletes the row.
        let res = recovery_codes::Entity::delete_by_id(row.id)
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn count_factors(&self, user: UserId) -> PortResult<FactorCounts> {
        // Both counts in one statement (two scalar subqueries).
        let backend = self.db.get_database_backend();
        let (a, b) = match backend {
            DbBackend::Postgres => ("$1", "$2"),
            _ => ("?", "?"),
        };
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM modal2fa_totp_devices WHERE user_id = {a} AND confirmed = TRUE) AS totp, \
             (SELECT COUNT(*) FROM modal2fa_webauthn_credentials WHERE user_id = {b}) AS webauthn"
        );
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [user.0.into(), user.0.into()],
            ))
            .await
            .map_err(map_err)?
            .ok_or_else(|| corrupt("factor counts"))?;
        let count = |col: &str| -> PortResult<u64> {
            let n: i64 = row.try_get("", col).map_err(map_err)?;
            u64::try_from(n).map_err(|_| corrupt("factor count"))
        };
        Ok(FactorCounts {
            confirmed_totp: count("totp")?,
            webauthn: count("webauthn")?,
        })
    }

    async fn count_recovery_codes(&self, user: UserId) -> PortResult<u64> {
        recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(user.0))
            .count(&self.db)
            .await
            .map_err(map_err)
    }
}
