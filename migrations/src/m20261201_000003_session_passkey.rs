//! `modal2fa_sessions.passkey_id`: the passkey a session was established with (a passkey
//! as the second factor, the first factor of a set-up login, or a passwordless sign-in),
//! so that removing the passkey ends those sessions at once. Null for every other
//! session, and for the rows already there. Deletes filter on the user first, which the
//! existing `user_id` index serves; a user has a handful of sessions.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    #[sea_orm(iden = "modal2fa_sessions")]
    Table,
    PasskeyId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .add_column(ColumnDef::new(Sessions::PasskeyId).big_integer().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .drop_column(Sessions::PasskeyId)
                .to_owned(),
        )
        .await
    }
}
