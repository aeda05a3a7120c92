#![doc = include_str!("../README.md")]

mod direct;
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
    /// The sqlx pool: migrations, and the host's own use through [`SeaOrmStore::connection`].
    db: DatabaseConnection,
    /// Where the store's own statements run: the pool, or the direct SQLite connection.
    q: DatabaseConnection,
    direct: Option<direct::DirectSqlite>,
}

/// A transaction on whichever connection the store's statements use.
pub(crate) enum Txn {
    Pool(sea_orm::DatabaseTransaction),
    Direct(direct::DirectTransaction),
}

impl Txn {
    pub(crate) async fn commit(self) -> PortResult<()> {
        match self {
            Txn::Pool(t) => t.commit().await.map_err(map_err),
            Txn::Direct(t) => t.commit().map_err(map_err),
        }
    }
}

/// Runs `$body` with `$c` bound to the transaction's connection, whatever its type.
macro_rules! in_txn {
    ($txn:expr, |$c:ident| $body:expr) => {
        match &$txn {
            $crate::Txn::Pool($c) => $body,
            $crate::Txn::Direct(t) => {
                let $c = t.conn();
                $body
            }
        }
    };
}
pub(crate) use in_txn;

impl SeaOrmStore {
    /// Wraps an existing connection (a host application's pool, say). Every statement goes
    /// through it.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            q: db.clone(),
            db,
            direct: None,
        }
    }

    pub(crate) async fn begin(&self) -> PortResult<Txn> {
        use sea_orm::TransactionTrait;
        match &self.direct {
            Some(d) => d.transaction().map(Txn::Direct).map_err(map_err),
            None => self.db.begin().await.map(Txn::Pool).map_err(map_err),
        }
    }

    /// Whether the store's statements run on the direct SQLite connection (see
    /// [`SeaOrmStore::connect`]).
    pub fn is_direct_sqlite(&self) -> bool {
        self.direct.is_some()
    }

    /// How many statements the direct SQLite connection has run since [`connect`], or
    /// `None` when the store is not on that path. A cheap counter, for metrics and for
    /// tests that hold a request to its number of round trips.
    ///
    /// [`connect`]: SeaOrmStore::connect
    pub fn statements_run(&self) -> Option<u64> {
        self.direct.as_ref().map(|d| d.statements_run())
    }

    /// Connects to `url` (`sqlite://file.db?mode=rwc`, `postgres://…`, `mysql://…`) with a
    /// pool of at most `max_connections`. SQLite files are switched to WAL journaling so
    /// readers never wait for the writer.
    ///
    /// For a SQLite *file*, the store's own statements then run on one direct connection on
    /// the calling task instead of through sqlx's per-connection worker thread (a thread
    /// hand-off per statement costs more than the statement); SeaORM still builds them. The
    /// pool stays for [`SeaOrmStore::migrate`] and [`SeaOrmStore::connection`]. A write
    /// that finds another process holding the file's write lock waits up to 5 s on its
    /// thread, as SQLite does.
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
        let mut store = Self::new(db);
        if store.db.get_database_backend() == DatabaseBackend::Sqlite
            && let Some((path, create)) = direct::sqlite_file(url)
        {
            let d = direct::DirectSqlite::open(&path, create).map_err(map_err)?;
            store.q = d.shared();
            store.direct = Some(d);
        }
        Ok(store)
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> PortResult<()> {
        Migrator::up(&self.db, None).await.map_err(map_err)
    }

    /// The sqlx connection pool (for migrations and the host's own queries; on a SQLite
    /// file the store's statements use its direct connection instead). On a SQLite file,
    /// do not keep a write transaction of this pool open while awaiting the store: the
    /// store's next write would wait for SQLite's file lock (up to 5 s) on its thread.
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
    if let DbErr::Custom(m) = &e
        && let Some(what) = m.strip_prefix(direct::UNIQUE_VIOLATION)
    {
        return PortError::Conflict(what.to_owned());
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
