#![doc = include_str!("../README.md")]

pub mod entities;
mod stores;

use std::sync::Arc;
use std::time::Duration;

use modal2fa_core::ports::{PortError, PortResult};
use modal2fa_migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr, SqlErr,
};
use time::OffsetDateTime;

pub use sea_orm;

/// Every store port of modal2fa over one SeaORM connection pool: users, factors, trusted
/// devices, lockout, sessions and the audit log. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct SeaOrmStore {
    db: DatabaseConnection,
}

impl SeaOrmStore {
    /// Wraps an existing connection (a host application's pool, say).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Connects to `url` (`sqlite://file.db?mode=rwc`, `postgres://…`, `mysql://…`) with a
    /// pool of at most `max_connections`. SQLite files are switched to WAL journaling so
    /// readers never wait for the writer.
    pub async fn connect(url: &str, max_connections: u32) -> PortResult<Self> {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(max_connections.max(1))
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        let db = Database::connect(opts).await.map_err(map_err)?;
        if db.get_database_backend() == DatabaseBackend::Sqlite && !url.contains(":memory:") {
            db.execute_unprepared("PRAGMA journal_mode=WAL")
                .await
                .map_err(map_err)?;
        }
        Ok(Self { db })
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> PortResult<()> {
        Migrator::up(&self.db, None).await.map_err(map_err)
    }

    /// The connection pool.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The store behind every store port, as `Arc`s ready for [`modal2fa_core::Ports`].
    pub fn arc(self) -> Arc<Self> {
        Arc::new(self)
    }
}

/// Maps a database error to the core's port error: a unique violation is a conflict, a
/// connection failure is "unavailable", anything else is unexpected.
pub fn map_err(e: DbErr) -> PortError {
    if let Some(SqlErr::UniqueConstraintViolation(what)) = e.sql_err() {
        return PortError::Conflict(what);
    }
    match e {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => PortError::Unavailable(Box::new(e)),
        other => PortError::Unexpected(Box::new(other)),
    }
}

/// Microseconds since the Unix epoch, the stored form of every time.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The inverse of [`to_micros`].
pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `t` truncated to whole microseconds (what a round trip through the database gives).
pub fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    from_micros(to_micros(t))
}
