//! [`LockoutStore`] over `modal2fa_lockout`: compare-and-set on the `version` column.
//!
//! Keys are compared as bytes (on MySQL/MariaDB by the binary collation of
//! `m20261201_000001_binary_collations`): `user:alíce` and `user:alice` are two rows.

use async_trait::async_trait;
use modal2fa_core::lockout::{self, LockoutEntry, LockoutKey, LockoutRule};
use modal2fa_core::model::*;
use modal2fa_core::ports::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use time::OffsetDateTime;

use super::corrupt;
use crate::entities::known_clients;
use crate::entities::lockout as lockout_rows;
use crate::{SeaOrmStore, from_micros, map_err, to_micros, truncate};

/// Gives other tasks a turn (a contended compare-and-set lost eight times in a row).
async fn tokio_yield() {
    struct YieldOnce(bool);
    impl std::future::Future for YieldOnce {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if self.0 {
                return std::task::Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
    YieldOnce(false).await
}

fn entry_from(m: lockout_rows::Model) -> PortResult<LockoutEntry> {
    Ok(LockoutEntry {
        key: LockoutKey::from_storage_string(&m.key).map_err(|_| corrupt("lockout key"))?,
        failures: u32::try_from(m.failures).map_err(|_| corrupt("failure count"))?,
        lock_count: u32::try_from(m.lock_count).map_err(|_| corrupt("lock count"))?,
        last_failure_at: from_micros(m.last_failure_at),
        locked_until: m.locked_until.map(from_micros),
        revision: u64::try_from(m.version).map_err(|_| corrupt("version"))?,
    })
}

fn clamp(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// How often a lockout compare-and-set is retried before giving up.
const MAX_CAS_ATTEMPTS: usize = 10_000;

impl SeaOrmStore {
    /// Stores `next` on top of `previous` (the entry as read; `None`: no row) by
    /// compare-and-set: an insert for a key without a row, an update guarded by the
    /// read's version otherwise. `false` when another writer got there first.
    async fn store_counter(
        &self,
        id: &str,
        previous: Option<&LockoutEntry>,
        next: &LockoutEntry,
    ) -> PortResult<bool> {
        match previous {
            None => {
                let insert = lockout_rows::Entity::insert(lockout_rows::ActiveModel {
                    key: Set(id.to_owned()),
                    failures: Set(clamp(next.failures)),
                    lock_count: Set(clamp(next.lock_count)),
                    last_failure_at: Set(to_micros(next.last_failure_at)),
                    locked_until: Set(next.locked_until.map(to_micros)),
                    version: Set(1),
                })
                .exec_without_returning(&self.db)
                .await;
                match insert.map_err(map_err) {
                    Ok(_) => Ok(true),
                    Err(PortError::Conflict(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Some(p) => {
                let version = i64::try_from(p.revision).map_err(|_| corrupt("version"))?;
                let res = lockout_rows::Entity::update_many()
                    .col_expr(
                        lockout_rows::Column::Failures,
                        Expr::value(clamp(next.failures)),
                    )
                    .col_expr(
                        lockout_rows::Column::LockCount,
                        Expr::value(clamp(next.lock_count)),
                    )
                    .col_expr(
                        lockout_rows::Column::LastFailureAt,
                        Expr::value(to_micros(next.last_failure_at)),
                    )
                    .col_expr(
                        lockout_rows::Column::LockedUntil,
                        Expr::value(next.locked_until.map(to_micros)),
                    )
                    .col_expr(lockout_rows::Column::Version, Expr::value(version + 1))
                    .filter(lockout_rows::Column::Key.eq(id))
                    .filter(lockout_rows::Column::Version.eq(version))
                    .exec(&self.db)
                    .await
                    .map_err(map_err)?;
                Ok(res.rows_affected == 1)
            }
        }
    }
}

#[async_trait]
impl LockoutStore for SeaOrmStore {
    async fn get(&self, key: &LockoutKey) -> PortResult<Option<LockoutEntry>> {
        let id = key.as_storage_string();
        lockout_rows::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await
            .map_err(map_err)?
            // The collation already compares bytes; this also holds where it would not.
            .filter(|m| m.key == id)
            .map(entry_from)
            .transpose()
    }

    async fn get_many(&self, keys: &[&LockoutKey]) -> PortResult<Vec<LockoutEntry>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = keys.iter().map(|k| k.as_storage_string()).collect();
        lockout_rows::Entity::find()
            .filter(lockout_rows::Column::Key.is_in(ids.iter().map(String::as_str)))
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .filter(|m| ids.contains(&m.key))
            .map(entry_from)
            .collect()
    }

    async fn record_failure(
        &self,
        key: &LockoutKey,
        seen: Option<&LockoutEntry>,
        now: OffsetDateTime,
        rule: LockoutRule,
    ) -> PortResult<LockoutEntry> {
        let id = key.as_storage_string();
        let now = truncate(now);
        let mut previous = seen.cloned();
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let mut next = lockout::apply_failure(previous.as_ref(), key, now, rule);
            if self.store_counter(&id, previous.as_ref(), &next).await? {
                next.revision = previous.map_or(1, |p| p.revision + 1);
                return Ok(next);
            }
            if attempt % 8 == 7 {
                // Let the winners finish before trying again.
                tokio_yield().await;
            }
            previous = self.get(key).await?;
        }
        Err(PortError::Unavailable(
            format!("lockout counter for {id} too contended").into(),
        ))
    }

    async fn settle(
        &self,
        key: &LockoutKey,
        reserved: &LockoutEntry,
        before: Option<&LockoutEntry>,
    ) -> PortResult<()> {
        let id = key.as_storage_string();
        // Nobody counted since: the row becomes what it was before the reservation.
        let version = i64::try_from(reserved.revision).map_err(|_| corrupt("version"))?;
        // Restore `before` only when the reservation was written right on top of it (no
        // retry in between); otherwise take back one failure.
        let direct = before.map_or(1, |b| b.revision + 1) == reserved.revision;
        let restored = direct
            && match before {
                None => {
                    lockout_rows::Entity::delete_many()
                        .filter(lockout_rows::Column::Key.eq(id.as_str()))
                        .filter(lockout_rows::Column::Version.eq(version))
                        .exec(&self.db)
                        .await
                        .map_err(map_err)?
                        .rows_affected
                        == 1
                }
                // (`store_counter` guards on the revision of the entry it is given.)
                Some(b) => self.store_counter(&id, Some(reserved), b).await?,
            };
        if restored {
            return Ok(());
        }
        // Others counted meanwhile: remove this one failure from what is stored.
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let Some(current) = self.get(key).await? else {
                return Ok(());
            };
            let mut one_less = current.clone();
            one_less.failures = one_less.failures.saturating_sub(1);
            if self.store_counter(&id, Some(&current), &one_less).await? {
                return Ok(());
            }
            if attempt % 8 == 7 {
                tokio_yield().await;
            }
        }
        Err(PortError::Unavailable(
            format!("lockout counter for {id} too contended").into(),
        ))
    }

    async fn clear(&self, key: &LockoutKey) -> PortResult<bool> {
        let res = lockout_rows::Entity::delete_by_id(key.as_storage_string())
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn list(&self, page: Page) -> PortResult<Vec<LockoutEntry>> {
        lockout_rows::Entity::find()
            .order_by_desc(lockout_rows::Column::LastFailureAt)
            .order_by_asc(lockout_rows::Column::Key)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(entry_from)
            .collect()
    }

    async fn purge_expired(&self, cutoff: OffsetDateTime) -> PortResult<u64> {
        let cutoff = to_micros(cutoff);
        let res = lockout_rows::Entity::delete_many()
            .filter(lockout_rows::Column::LastFailureAt.lt(cutoff))
            .filter(
                Condition::any()
                    .add(lockout_rows::Column::LockedUntil.is_null())
                    .add(lockout_rows::Column::LockedUntil.lt(cutoff)),
            )
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected)
    }

    async fn remember_client(
        &self,
        account: &str,
        bucket: &str,
        at: OffsetDateTime,
    ) -> PortResult<()> {
        use known_clients::Column as C;
        let row = known_clients::ActiveModel {
            account: Set(account.to_owned()),
            ip_bucket: Set(bucket.to_owned()),
            last_success_at: Set(to_micros(at)),
        };
        known_clients::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([C::Account, C::IpBucket])
                    .update_column(C::LastSuccessAt)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn knows_client(
        &self,
        account: &str,
        bucket: &str,
        since: OffsetDateTime,
    ) -> PortResult<bool> {
        use known_clients::Column as C;
        let row = known_clients::Entity::find()
            .filter(C::Account.eq(account))
            .filter(C::IpBucket.eq(bucket))
            .filter(C::LastSuccessAt.gt(to_micros(since)))
            .one(&self.db)
            .await
            .map_err(map_err)?;
        // Bytes, whatever the collation said.
        Ok(row.is_some_and(|r| r.account == account && r.ip_bucket == bucket))
    }

    async fn forget_clients(&self, before: OffsetDateTime) -> PortResult<u64> {
        let res = known_clients::Entity::delete_many()
            .filter(known_clients::Column::LastSuccessAt.lt(to_micros(before)))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected)
    }
}
