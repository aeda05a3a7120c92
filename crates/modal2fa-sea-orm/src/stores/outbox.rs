//! [`Outbox`] over `modal2fa_outbox`. A claim reads the due ids, then takes each with a
//! compare-and-set (`UPDATE … WHERE id = ? AND state = 'pending' AND` the claim is free
//! or expired): of several processes claiming at once, one `UPDATE` matches each row.
//! The same statements run on SQLite, PostgreSQL and MySQL/MariaDB (no `UPDATE …
//! RETURNING`, which MariaDB lacks).

use async_trait::async_trait;
use modal2fa_core::model::UserId;
use modal2fa_core::ports::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use time::OffsetDateTime;

use crate::entities::outbox;
use crate::{SeaOrmStore, from_micros, map_err, to_micros};

const PENDING: &str = "pending";
const SENT: &str = "sent";
const FAILED: &str = "failed";

/// The longest error text kept (the column's width).
const ERROR_LEN: usize = 1000;

fn claim_free(now: OffsetDateTime) -> Condition {
    Condition::any()
        .add(outbox::Column::ClaimedUntil.is_null())
        .add(outbox::Column::ClaimedUntil.lt(to_micros(now)))
}

fn clip(error: Option<&str>) -> Option<String> {
    error.map(|e| {
        let mut end = e.len().min(ERROR_LEN);
        while !e.is_char_boundary(end) {
            end -= 1;
        }
        e[..end].to_owned()
    })
}

#[async_trait]
impl Outbox for SeaOrmStore {
    async fn enqueue(&self, m: NewOutboxMessage) -> PortResult<i64> {
        let res = outbox::Entity::insert(outbox::ActiveModel {
            id: NotSet,
            user_id: Set(m.user_id.0),
            payload: Set(m.payload),
            created_at: Set(to_micros(m.created_at)),
            send_after: Set(to_micros(m.send_after)),
            cancel_key: Set(m.cancel_key),
            state: Set(PENDING.to_owned()),
            attempts: Set(0),
            claim: Set(None),
            claimed_until: Set(None),
            last_error: Set(None),
            finished_at: Set(None),
        })
        .exec(&self.db)
        .await
        .map_err(map_err)?;
        Ok(res.last_insert_id)
    }

    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        claim: &str,
        limit: u64,
    ) -> PortResult<Vec<OutboxMessage>> {
        let candidates: Vec<i64> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .filter(outbox::Column::State.eq(PENDING))
            .filter(outbox::Column::SendAfter.lte(to_micros(now)))
            .filter(claim_free(now))
            .order_by_asc(outbox::Column::SendAfter)
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(map_err)?;
        let mut taken = Vec::with_capacity(candidates.len());
        for id in candidates {
            let res = outbox::Entity::update_many()
                .col_expr(outbox::Column::Claim, Expr::value(claim))
                .col_expr(
                    outbox::Column::ClaimedUntil,
                    Expr::value(to_micros(lease_until)),
                )
                .col_expr(
                    outbox::Column::Attempts,
                    Expr::col(outbox::Column::Attempts).add(1),
                )
                .filter(outbox::Column::Id.eq(id))
                .filter(outbox::Column::State.eq(PENDING))
                .filter(claim_free(now))
                .exec(&self.db)
                .await
                .map_err(map_err)?;
            if res.rows_affected == 1 {
                taken.push(id);
            }
        }
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Id.is_in(taken))
            .filter(outbox::Column::Claim.eq(claim))
            .order_by_asc(outbox::Column::SendAfter)
            .order_by_asc(outbox::Column::Id)
            .all(&self.db)
            .await
            .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|r| OutboxMessage {
                id: r.id,
                user_id: UserId(r.user_id),
                payload: r.payload,
                created_at: from_micros(r.created_at),
                attempts: u32::try_from(r.attempts).unwrap_or(0),
            })
            .collect())
    }

    async fn settle(
        &self,
        id: i64,
        claim: &str,
        outcome: OutboxOutcome,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> PortResult<bool> {
        let mut update = outbox::Entity::update_many()
            .col_expr(outbox::Column::Claim, Expr::value(Option::<String>::None))
            .col_expr(
                outbox::Column::ClaimedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(outbox::Column::LastError, Expr::value(clip(error)));
        update = match outcome {
            OutboxOutcome::RetryAt(at) => {
                update.col_expr(outbox::Column::SendAfter, Expr::value(to_micros(at)))
            }
            OutboxOutcome::Sent | OutboxOutcome::Failed => update
                .col_expr(
                    outbox::Column::State,
                    Expr::value(if outcome == OutboxOutcome::Sent {
                        SENT
                    } else {
                        FAILED
                    }),
                )
                .col_expr(outbox::Column::Payload, Expr::value(Vec::<u8>::new()))
                .col_expr(outbox::Column::FinishedAt, Expr::value(to_micros(now))),
        };
        let res = update
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::State.eq(PENDING))
            .filter(outbox::Column::Claim.eq(claim))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn cancel(&self, cancel_key: &str, now: OffsetDateTime) -> PortResult<u64> {
        Ok(outbox::Entity::delete_many()
            .filter(outbox::Column::CancelKey.eq(cancel_key))
            .filter(outbox::Column::State.eq(PENDING))
            .filter(claim_free(now))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn pending(&self) -> PortResult<u64> {
        outbox::Entity::find()
            .filter(outbox::Column::State.eq(PENDING))
            .count(&self.db)
            .await
            .map_err(map_err)
    }

    async fn purge_finished(&self, before: OffsetDateTime) -> PortResult<u64> {
        Ok(outbox::Entity::delete_many()
            .filter(outbox::Column::FinishedAt.lt(to_micros(before)))
            .exec(&self.db)
            .await
            .map_err(map_err)?
            .rows_affected)
    }
}
