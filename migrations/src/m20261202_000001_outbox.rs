//! `modal2fa_outbox`: notifications waiting to be sent, and the record of those sent or
//! given up on until they are purged. A sender claims a row with a compare-and-set on
//! `claim` / `claimed_until` (so two processes never take one row), counts an attempt in
//! `attempts`, and settles it to `sent` or `failed` — erasing `payload`, which is sealed
//! and may carry a reset or invitation link — or back to `pending` with a later
//! `send_after`. The due index serves the claim, the cancel-key index the withdrawal of a
//! delayed alert, the finished index the purge. Binary collation on MySQL/MariaDB, as
//! every modal2fa table has.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    #[sea_orm(iden = "modal2fa_outbox")]
    Table,
    Id,
    UserId,
    Payload,
    CreatedAt,
    SendAfter,
    CancelKey,
    State,
    Attempts,
    Claim,
    ClaimedUntil,
    LastError,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Outbox::Table)
                .if_not_exists()
                .col(big_integer(Outbox::Id).auto_increment().primary_key())
                .col(big_integer(Outbox::UserId))
                .col(blob(Outbox::Payload))
                .col(big_integer(Outbox::CreatedAt))
                .col(big_integer(Outbox::SendAfter))
                .col(string_len_null(Outbox::CancelKey, 200))
                .col(string_len(Outbox::State, 16))
                .col(integer(Outbox::Attempts).default(0))
                .col(string_len_null(Outbox::Claim, 64))
                .col(big_integer_null(Outbox::ClaimedUntil))
                .col(string_len_null(Outbox::LastError, 1000))
                .col(big_integer_null(Outbox::FinishedAt))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            (
                "modal2fa_outbox_due",
                vec![Outbox::State, Outbox::SendAfter],
            ),
            ("modal2fa_outbox_cancel_key", vec![Outbox::CancelKey]),
            ("modal2fa_outbox_finished", vec![Outbox::FinishedAt]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Outbox::Table).if_not_exists();
            for c in cols {
                index.col(c);
            }
            m.create_index(index.to_owned()).await?;
        }
        if m.get_database_backend() == DatabaseBackend::MySql {
            let collation = crate::m20261201_000001_binary_collations::binary_collation(m).await?;
            m.get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE `modal2fa_outbox` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
