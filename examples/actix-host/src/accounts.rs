//! The host's own users table, `host_accounts`, as modal2fa's `UserStore`.
//!
//! The table is the application's, not modal2fa's: one `full_name` column (not a first
//! and a last name), one `role` column (`admin` or `member`, no staff flag), times as
//! Unix seconds. modal2fa reads what `User` carries and writes only the password hash
//! (compare-and-set), the last sign-in, the active flag and new rows; the application's
//! other columns are never touched. Lookups compare canonical forms, so the table keeps
//! `login_key` / `mail_key` next to the names as typed (a unique index on `login_key`
//! makes a second spelling of a taken name a conflict).

use modal2fa_actix::modal2fa_core::model::{
    Email, NewUser, Page, User, UserId, Username, canonical_form,
};
use modal2fa_actix::modal2fa_core::ports::{ConflictKind, PortError, PortResult, UserStore};
use modal2fa_actix::modal2fa_core::{async_trait, time::OffsetDateTime};
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

/// The table as the application created it.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS host_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL,
    login_key TEXT NOT NULL UNIQUE,
    mail TEXT,
    mail_key TEXT,
    full_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL DEFAULT 'member',
    password TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    created INTEGER NOT NULL,
    last_seen INTEGER,
    password_set INTEGER,
    theme TEXT NOT NULL DEFAULT 'light'
)";

/// `SELECT` of the columns modal2fa reads, as a literal (sqlx takes only literal SQL).
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, login, mail, full_name, role, password, active, created, last_seen, \
             password_set FROM host_accounts ",
            $rest
        )
    };
}

/// `host_accounts` through the application's own sqlx pool.
#[derive(Debug, Clone)]
pub struct HostAccounts {
    pool: SqlitePool,
}

fn time(seconds: i64) -> PortResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| PortError::Unexpected(Box::new(e)))
}

fn seconds(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
}

/// A row as modal2fa's `User`: a name or an address the model cannot hold is
/// `Unreadable`, naming the row.
fn user(r: &SqliteRow) -> PortResult<User> {
    let id: i64 = r.try_get("id").map_err(port_error)?;
    let row = format!("host_accounts id={id}");
    let text = |column: &str| -> PortResult<String> { r.try_get(column).map_err(port_error) };
    let mail: Option<String> = r.try_get("mail").map_err(port_error)?;
    let at = |column: &str| -> PortResult<Option<OffsetDateTime>> {
        let s: Option<i64> = r.try_get(column).map_err(port_error)?;
        s.map(time).transpose()
    };
    Ok(User {
        id: UserId(id),
        username: Username::from_stored(&text("login")?)
            .map_err(|p| PortError::unreadable(&row, p))?,
        email: mail
            .as_deref()
            .map(Email::from_stored)
            .transpose()
            .map_err(|p| PortError::unreadable(&row, p))?,
        first_name: text("full_name")?,
        last_name: String::new(),
        password_hash: r.try_get("password").map_err(port_error)?,
        is_active: r.try_get("active").map_err(port_error)?,
        is_superuser: text("role")? == "admin",
        created_at: time(r.try_get("created").map_err(port_error)?)?,
        last_login: at("last_seen")?,
        password_changed_at: at("password_set")?,
    })
}

/// A sqlx error as a port error: a unique violation is a conflict on the username, a
/// connection problem is "unavailable", the rest unexpected.
fn port_error(e: sqlx::Error) -> PortError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            PortError::Conflict(ConflictKind::Username)
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            PortError::Unavailable(Box::new(e))
        }
        _ => PortError::Unexpected(Box::new(e)),
    }
}

impl HostAccounts {
    /// Over the application's pool; creates the table when it is missing.
    pub async fn new(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        sqlx::query(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    async fn all(
        &self,
        query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> PortResult<Vec<User>> {
        query
            .fetch_all(&self.pool)
            .await
            .map_err(port_error)?
            .iter()
            .map(user)
            .collect()
    }
}

#[async_trait]
impl UserStore for HostAccounts {
    async fn find_by_id(&self, id: UserId) -> PortResult<Option<User>> {
        let query = sqlx::query(select!("WHERE id = ?")).bind(id.0);
        Ok(self.all(query).await?.pop())
    }

    async fn find_by_username(&self, username: &Username) -> PortResult<Option<User>> {
        let query = sqlx::query(select!("WHERE login_key = ?")).bind(username.canonical());
        Ok(self.all(query).await?.pop())
    }

    async fn find_by_email(&self, email: &Email) -> PortResult<Vec<User>> {
        let query = sqlx::query(select!("WHERE mail_key = ? ORDER BY id")).bind(email.canonical());
        self.all(query).await
    }

    async fn create(&self, user: NewUser) -> PortResult<User> {
        let full_name = format!("{} {}", user.first_name.trim(), user.last_name.trim());
        let row = sqlx::query(
            "INSERT INTO host_accounts
                 (login, login_key, mail, mail_key, full_name, role, password, created, password_set)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(user.username.as_str())
        .bind(user.username.canonical())
        .bind(user.email.as_ref().map(|e| e.as_str().to_owned()))
        .bind(user.email.as_ref().map(|e| canonical_form(e.as_str())))
        .bind(full_name.trim())
        .bind(if user.is_superuser { "admin" } else { "member" })
        .bind(user.password_hash.as_deref())
        .bind(seconds(user.created_at))
        .bind(user.password_changed_at.map(seconds))
        .fetch_one(&self.pool)
        .await
        .map_err(port_error)?;
        let id = UserId(row.try_get("id").map_err(port_error)?);
        self.find_by_id(id).await?.ok_or(PortError::NotFound)
    }

    async fn set_active(&self, id: UserId, active: bool) -> PortResult<bool> {
        let done = sqlx::query("UPDATE host_accounts SET active = ? WHERE id = ?")
            .bind(active)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> PortResult<()> {
        sqlx::query("UPDATE host_accounts SET last_seen = ? WHERE id = ?")
            .bind(seconds(at))
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn replace_password(
        &self,
        id: UserId,
        expected: Option<&str>,
        new_hash: &str,
        at: OffsetDateTime,
    ) -> PortResult<bool> {
        // `IS` compares NULL with NULL as equal: a first password replaces "none".
        let done = sqlx::query(
            "UPDATE host_accounts SET password = ?, password_set = ? WHERE id = ? AND password IS ?",
        )
        .bind(new_hash)
        .bind(seconds(at))
        .bind(id.0)
        .bind(expected)
        .execute(&self.pool)
        .await
        .map_err(port_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(&self, page: Page) -> PortResult<Vec<User>> {
        let query = sqlx::query(select!("ORDER BY id LIMIT ? OFFSET ?"))
            .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(page.offset).unwrap_or(i64::MAX));
        self.all(query).await
    }

    async fn count(&self) -> PortResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM host_accounts")
            .fetch_one(&self.pool)
            .await
            .map_err(port_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
