//! The admin's session list reads the newest sessions first: one index on
//! `(created_at, id_hash)` serves that order (scanned backwards) without sorting.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    #[sea_orm(iden = "modal2fa_sessions")]
    Table,
    IdHash,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("modal2fa_sessions_created")
                .table(Sessions::Table)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("modal2fa_sessions_listing")
                .table(Sessions::Table)
                .col(Sessions::CreatedAt)
                .col(Sessions::IdHash)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("modal2fa_sessions_listing")
                .table(Sessions::Table)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("modal2fa_sessions_created")
                .table(Sessions::Table)
                .col(Sessions::CreatedAt)
                .to_owned(),
        )
        .await
    }
}
