#![doc = include_str!("../README.md")]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!(
    "modal2fa-sea-orm needs at least one backend feature: `sqlite`, `postgres` or `mysql`"
);

pub mod entities;
mod stores;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use modal2fa_core::ports::{ConflictKind, PortError, PortResult};
use modal2fa_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr, SqlErr};
use time::OffsetDateTime;

pub use sea_orm;

/// Every store port of modal2fa over one SeaORM connection pool: users, factors, trusted
/// devices, lockout, sessions and the audit log. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct SeaOrmStore {
    db: DatabaseConnection,
    statements: Arc<AtomicU64>,
}

/// How [`SeaOrmStore::connect_with`] sizes and times its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections open at once (at least 1).
    pub max_connections: u32,
    /// How long a statement waits for a free (or new) connection before the store answers
    /// [`PortError::Unavailable`]: what bounds a request's wait while the database is down.
    pub acquire_timeout: Duration,
    /// A pooled connection idle at least this long is pinged before it is handed out, so a
    /// connection a server, proxy or firewall dropped meanwhile is replaced before a
    /// statement fails on it. A connection in use more recently goes straight to its
    /// statement: pinging every checkout (sqlx's default) is one more round trip per
    /// statement — on SQLite one more hop to the connection's worker thread, as costly as
    /// the statement. A connection that died while hot (a database restart) fails its next
    /// statement, which answers [`PortError::Unavailable`]; the pool then replaces it.
    pub ping_after_idle: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            ping_after_idle: Duration::from_secs(5),
        }
    }
}

impl SeaOrmStore {
    /// Wraps an existing connection (a host application's pool, say). Every statement goes
    /// through it.
    pub fn new(db: DatabaseConnection) -> Self {
        Self::counting(db)
    }

    fn counting(mut db: DatabaseConnection) -> Self {
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Self { db, statements }
    }

    /// How many statements the store has run since it was created: a cheap counter, for
    /// metrics and for tests that hold a request to its number of round trips.
    pub fn statements_run(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Connects to `url` (`sqlite://file.db?mode=rwc`, `postgres://…`, `mysql://…`) with a
    /// pool of at most `max_connections` and the default timeouts ([`PoolOptions`]).
    pub async fn connect(url: &str, max_connections: u32) -> PortResult<Self> {
        Self::connect_with(
            url,
            PoolOptions {
                max_connections,
                ..PoolOptions::default()
            },
        )
        .await
    }

    /// Connects with explicit pool options. SQLite files are switched to WAL journaling
    /// (readers never wait for the writer) with `synchronous = NORMAL` on every pooled
    /// connection.
    pub async fn connect_with(url: &str, options: PoolOptions) -> PortResult<Self> {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(options.max_connections.max(1))
            .min_connections(1)
            // (SeaORM hands a connect timeout to sqlx as the acquire timeout, so opening a
            // connection is bounded by the acquiring statement's deadline.)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire_if_idle_for(options.ping_after_idle)
            .sqlx_logging(false);
        let is_sqlite_file = url.starts_with("sqlite:") && !url.contains(":memory:");
        #[cfg(feature = "sqlite")]
        if is_sqlite_file {
            opts.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
            });
        }
        #[cfg(not(feature = "sqlite"))]
        if is_sqlite_file {
            return Err(PortError::Unexpected(
                "database_url is a SQLite file, but modal2fa-sea-orm was built without its `sqlite` feature".into(),
            ));
        }
        let db = Database::connect(opts).await.map_err(map_err)?;
        Ok(Self::counting(db))
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> PortResult<()> {
        Migrator::up(&self.db, None).await.map_err(map_err)
    }

    /// The connection pool (for the host's own queries).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The store behind every store port, as `Arc`s ready for [`modal2fa_core::Ports`].
    pub fn arc(self) -> Arc<Self> {
        Arc::new(self)
    }
}

/// Maps a database error to the core's port error: a unique violation is a conflict (of
/// a kind the caller names with [`conflict_on`]; unattributed here), a connection failure
/// or a pool timeout is "unavailable", anything else is unexpected. No driver text is
/// kept outside the boxed source, which only logs see.
pub fn map_err(e: DbErr) -> PortError {
    if let Some(SqlErr::UniqueConstraintViolation(_)) = e.sql_err() {
        return PortError::Conflict(ConflictKind::Other);
    }
    if is_unavailable(&e) {
        return PortError::Unavailable(Box::new(e));
    }
    PortError::Unexpected(Box::new(e))
}

/// [`map_err`], naming the uniqueness rule the statement can break.
pub(crate) fn conflict_on(kind: ConflictKind) -> impl Fn(DbErr) -> PortError {
    move |e| match map_err(e) {
        PortError::Conflict(_) => PortError::Conflict(kind),
        other => other,
    }
}

/// Whether the database could not be reached (or the pool had no connection in time),
/// as opposed to refusing a statement.
fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match e {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => return true,
        DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return false,
    };
    match runtime {
        RuntimeErr::SqlxError(s) => match s.as_ref() {
            Sqlx::Io(_)
            | Sqlx::Tls(_)
            | Sqlx::PoolTimedOut
            | Sqlx::PoolClosed
            | Sqlx::WorkerCrashed
            | Sqlx::Protocol(_) => true,
            // The server ended the session: SQLSTATE class 08 (connection exception, also
            // MySQL's shutdown 08S01) or PostgreSQL's 57P01–57P03 (admin shutdown, crash
            // shutdown, cannot connect now) — a restart, not a refused statement.
            Sqlx::Database(d) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
            _ => false,
        },
        _ => false,
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
