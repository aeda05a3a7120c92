//! `modal2fa_known_clients`: the addresses (bucketed as the lockout buckets them) each
//! account signed in from successfully, with the last time. While an account is locked by
//! failures from elsewhere, its owner may still try from such an address. Keyed by the
//! account's canonical username, compared as bytes (a binary collation on MySQL/MariaDB,
//! as every modal2fa table has); the last-success index serves the purge.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum KnownClients {
    #[sea_orm(iden = "modal2fa_known_clients")]
    Table,
    Account,
    IpBucket,
    LastSuccessAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(KnownClients::Table)
                .if_not_exists()
                .col(string_len(KnownClients::Account, 320))
                .col(string_len(KnownClients::IpBucket, 64))
                .col(big_integer(KnownClients::LastSuccessAt))
                .primary_key(
                    Index::create()
                        .col(KnownClients::Account)
                        .col(KnownClients::IpBucket),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("modal2fa_known_clients_last_success")
                .table(KnownClients::Table)
                .col(KnownClients::LastSuccessAt)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        if m.get_database_backend() == DatabaseBackend::MySql {
            let collation = crate::m20261201_000001_binary_collations::binary_collation(m).await?;
            m.get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE `modal2fa_known_clients` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(KnownClients::Table).to_owned())
            .await
    }
}
