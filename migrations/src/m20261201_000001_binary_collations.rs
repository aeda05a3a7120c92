//! Identifiers compare as bytes on every backend, and usernames and email addresses are
//! stored in their new canonical form.
//!
//! MySQL and MariaDB compare text by the table's collation, and their defaults
//! (`utf8mb4_general_ci`, `utf8mb4_0900_ai_ci`, …) ignore case and accents: `alíce` found
//! the row of `alice`, and the lockout key `user:alíce` hit the row of `user:alice`. On
//! MySQL/MariaDB every modal2fa table is converted to `utf8mb4` with a binary collation
//! that does not pad with spaces where the server has one (`utf8mb4_nopad_bin` on
//! MariaDB, `utf8mb4_0900_bin` on MySQL 8), `utf8mb4_bin` otherwise. That covers every
//! key, username, email, hash and id column, and becomes the tables' default, so columns
//! added later compare bytes too. PostgreSQL and SQLite already compare text as bytes
//! (the stores use no `LIKE` and no `lower()`).
//!
//! The canonical form changed from lower case to NFKC, lower case, NFKC (see
//! `modal2fa_core::model`): `username_canonical` and `email_canonical` are recomputed
//! for every row. The function is copied here, frozen as this migration's meaning, and a
//! test checks that it agrees with the core's. When two accounts fall onto one canonical
//! name (say `alice` and a fullwidth `ａｌｉｃｅ` created before), the migration fails
//! before it writes a row, naming both: one account must be renamed first.

use std::collections::HashMap;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use unicode_normalization::UnicodeNormalization;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    #[sea_orm(iden = "modal2fa_users")]
    Table,
    Id,
    Username,
    UsernameCanonical,
    Email,
    EmailCanonical,
}

/// The canonical form this migration stores: NFKC, lower case, NFKC.
fn canonical(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let lower = text.nfkc().collect::<String>().to_lowercase();
    lower.nfkc().collect()
}

/// The canonical form before this migration (what `down` restores).
fn lower_case(text: &str) -> String {
    text.to_lowercase()
}

/// One user's identifiers as stored.
struct Row {
    id: i64,
    username: String,
    username_canonical: String,
    email: Option<String>,
    email_canonical: Option<String>,
}

async fn rows(m: &SchemaManager<'_>) -> Result<Vec<Row>, DbErr> {
    let select = Query::select()
        .columns([
            Users::Id,
            Users::Username,
            Users::UsernameCanonical,
            Users::Email,
            Users::EmailCanonical,
        ])
        .from(Users::Table)
        .order_by(Users::Id, Order::Asc)
        .to_owned();
    m.get_connection()
        .query_all(&select)
        .await?
        .iter()
        .map(|r| {
            Ok(Row {
                id: r.try_get("", "id")?,
                username: r.try_get("", "username")?,
                username_canonical: r.try_get("", "username_canonical")?,
                email: r.try_get("", "email")?,
                email_canonical: r.try_get("", "email_canonical")?,
            })
        })
        .collect()
}

/// Rewrites both canonical columns with `form`, refusing (before any write) when two
/// accounts would share a canonical username.
async fn recompute(m: &SchemaManager<'_>, form: fn(&str) -> String) -> Result<(), DbErr> {
    let rows = rows(m).await?;
    let mut taken: HashMap<String, &Row> = HashMap::new();
    let mut changes = Vec::new();
    for row in &rows {
        let username = form(&row.username);
        if let Some(other) = taken.insert(username.clone(), row) {
            return Err(DbErr::Migration(format!(
                "users {} ({:?}) and {} ({:?}) have one canonical username, {username:?}: \
                 rename one of them, then migrate again",
                other.id, other.username, row.id, row.username
            )));
        }
        let email = row.email.as_deref().map(form);
        if username != row.username_canonical || email != row.email_canonical {
            changes.push((row.id, username, email));
        }
    }
    let conn = m.get_connection();
    // Two passes, so that no intermediate state breaks the unique index: first a
    // placeholder no username can have (a control character and the id), then the form.
    for (id, _, _) in &changes {
        let update = Query::update()
            .table(Users::Table)
            .value(Users::UsernameCanonical, format!("\u{1}{id}"))
            .and_where(Expr::col(Users::Id).eq(*id))
            .to_owned();
        conn.execute(&update).await?;
    }
    for (id, username, email) in changes {
        let update = Query::update()
            .table(Users::Table)
            .value(Users::UsernameCanonical, username)
            .value(Users::EmailCanonical, email)
            .and_where(Expr::col(Users::Id).eq(id))
            .to_owned();
        conn.execute(&update).await?;
    }
    Ok(())
}

/// A binary collation of `utf8mb4` on this server, one without space padding if it has
/// one.
pub(crate) async fn binary_collation(m: &SchemaManager<'_>) -> Result<String, DbErr> {
    let conn = m.get_connection();
    for name in ["utf8mb4_nopad_bin", "utf8mb4_0900_bin"] {
        let found = conn
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::MySql,
                "SELECT collation_name FROM information_schema.collations WHERE collation_name = ?",
                [name.into()],
            ))
            .await?;
        if found.is_some() {
            return Ok(name.to_owned());
        }
    }
    Ok("utf8mb4_bin".to_owned())
}

/// How many of [`crate::TABLES`] existed when this migration was written (later ones
/// are created with the binary collation by their own migration).
const TABLES_THEN: usize = 8;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::MySql {
            let collation = binary_collation(m).await?;
            for table in &crate::TABLES[..TABLES_THEN] {
                m.get_connection()
                    .execute_unprepared(&format!(
                        "ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}"
                    ))
                    .await?;
            }
        }
        recompute(m, canonical).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        recompute(m, lower_case).await?;
        if m.get_database_backend() == DatabaseBackend::MySql {
            for table in &crate::TABLES[..TABLES_THEN] {
                m.get_connection()
                    .execute_unprepared(&format!(
                        "ALTER TABLE `{table}` CONVERT TO CHARACTER SET DEFAULT"
                    ))
                    .await?;
            }
        }
        Ok(())
    }
}
