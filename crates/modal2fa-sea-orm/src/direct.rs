//! SQLite without the driver's worker thread.
//!
//! sqlx runs every SQLite connection on its own thread and hands each statement over a
//! channel; on a small machine that hand-off (two thread wake-ups per statement) costs more
//! than the statement. For a SQLite *file*, [`DirectSqlite`] keeps one `rusqlite`
//! connection and runs each statement on the calling task: SeaORM still builds every
//! statement (it sees a "proxy" connection), only the execution changes.
//!
//! One connection serves the whole process, behind a mutex held only while one statement
//! runs (microseconds), so no two statements of this process ever contend for SQLite's
//! file lock (which would make one of them sleep in SQLite's busy handler, on an executor
//! thread). A transaction holds the connection from `BEGIN IMMEDIATE` to `COMMIT`; a
//! transaction dropped half-way (its request was cancelled) is rolled back before the
//! connection serves anyone else.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{ArcMutexGuard, Mutex, RawMutex};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use sea_orm::sea_query::Value;
use sea_orm::{
    ColumnTrait, ColumnType, DatabaseBackend, DatabaseConnection, DatabaseConnectionType, DbErr,
    EntityTrait, ExecResult, IdenStatic, Iterable, MockDatabase, MockDatabaseConnection,
    MockDatabaseTrait, MockExecResult, QueryResult, RuntimeErr, Statement, Transaction,
};

use crate::entities::{
    audit_events, lockout, recovery_codes, sessions, totp_devices, trusted_devices, users,
    webauthn_credentials,
};

/// How long a statement waits for another *process* holding the database's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The prefix of a [`DbErr::Custom`] that stands for a unique-constraint violation.
pub(crate) const UNIQUE_VIOLATION: &str = "modal2fa-sqlite unique violation: ";

/// The Rust type SeaORM expects for a column, which SQLite's storage class alone does not
/// tell (an INTEGER may be a bool, an `i32` or an `i64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int,
    BigInt,
    Double,
    Text,
    Bytes,
}

impl Kind {
    fn of(t: &ColumnType) -> Option<Kind> {
        Some(match t {
            ColumnType::Boolean => Kind::Bool,
            ColumnType::TinyInteger | ColumnType::SmallInteger | ColumnType::Integer => Kind::Int,
            ColumnType::BigInteger => Kind::BigInt,
            ColumnType::Float | ColumnType::Double => Kind::Double,
            ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => Kind::Text,
            ColumnType::Binary(_) | ColumnType::VarBinary(_) | ColumnType::Blob => Kind::Bytes,
            _ => return None,
        })
    }

    fn null(self) -> Value {
        match self {
            Kind::Bool => Value::Bool(None),
            Kind::Int => Value::Int(None),
            Kind::BigInt => Value::BigInt(None),
            Kind::Double => Value::Double(None),
            Kind::Text => Value::String(None),
            Kind::Bytes => Value::Bytes(None),
        }
    }

    /// Whether SQLite's storage class alone gives this type (no hint needed).
    fn follows_storage(self) -> bool {
        matches!(self, Kind::BigInt | Kind::Text | Kind::Bytes)
    }
}

/// Column name → the type its entity field has, over every table of the schema.
pub(crate) type Kinds = HashMap<String, Kind>;

/// Adds `E`'s columns. A name that means two types in two tables gets no hint, which is
/// fine when both follow the storage class (an `id` that is a number here and a text
/// there); otherwise it is a conflict.
fn add_entity<E: EntityTrait>(
    kinds: &mut HashMap<String, Option<Kind>>,
    conflicts: &mut Vec<String>,
) {
    for col in E::Column::iter() {
        let name = col.as_str().to_owned();
        let Some(kind) = Kind::of(col.def().get_column_type()) else {
            conflicts.push(format!("{name}: unsupported type"));
            continue;
        };
        match kinds.get(&name).copied() {
            None => {
                kinds.insert(name, Some(kind));
            }
            Some(Some(prev)) if prev == kind => {}
            Some(prev) => {
                if !kind.follows_storage() || prev.is_some_and(|p| !p.follows_storage()) {
                    conflicts.push(format!("{name}: {prev:?} and {kind:?}"));
                }
                kinds.insert(name, None);
            }
        }
    }
}

/// The kinds of every column, or the columns whose name means two types.
pub(crate) fn schema_kinds() -> Result<Kinds, Vec<String>> {
    let mut kinds = HashMap::new();
    let mut conflicts = Vec::new();
    add_entity::<users::Entity>(&mut kinds, &mut conflicts);
    add_entity::<totp_devices::Entity>(&mut kinds, &mut conflicts);
    add_entity::<recovery_codes::Entity>(&mut kinds, &mut conflicts);
    add_entity::<webauthn_credentials::Entity>(&mut kinds, &mut conflicts);
    add_entity::<trusted_devices::Entity>(&mut kinds, &mut conflicts);
    add_entity::<lockout::Entity>(&mut kinds, &mut conflicts);
    add_entity::<sessions::Entity>(&mut kinds, &mut conflicts);
    add_entity::<audit_events::Entity>(&mut kinds, &mut conflicts);
    if conflicts.is_empty() {
        Ok(kinds
            .into_iter()
            .filter_map(|(name, kind)| Some((name, kind?)))
            .collect())
    } else {
        Err(conflicts)
    }
}

/// The file behind a `sqlite:` URL (decoded exactly as sqlx decodes it for the pool) and
/// whether it may be created, or `None` when the direct connection must not be used: an
/// in-memory database (a second connection would see another one) or a read-only one.
pub(crate) fn sqlite_file(url: &str) -> Option<(PathBuf, bool)> {
    use std::str::FromStr;
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (database, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mode = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("mode="))
        .unwrap_or("rw");
    if database.is_empty() || database == ":memory:" || !matches!(mode, "rw" | "rwc") {
        return None;
    }
    let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some((options.get_filename().to_path_buf(), mode == "rwc"))
}

/// The process's direct connection to one SQLite file.
#[derive(Clone)]
pub(crate) struct DirectSqlite {
    conn: Arc<Mutex<Connection>>,
    kinds: Arc<Kinds>,
    statements: Arc<AtomicU64>,
}

impl std::fmt::Debug for DirectSqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectSqlite")
    }
}

impl DirectSqlite {
    /// Opens `path` (which the sqlx pool has already created and switched to WAL).
    pub(crate) fn open(path: &std::path::Path, create: bool) -> Result<Self, DbErr> {
        let kinds = schema_kinds()
            .map_err(|c| DbErr::Custom(format!("column types disagree: {}", c.join(", "))))?;
        // A plain file name (sqlx has decoded the URL); the mutex below serialises use.
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(conn_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(conn_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        )
        .map_err(conn_err)?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            kinds: Arc::new(kinds),
            statements: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many statements this connection has run (transactions' included).
    pub(crate) fn statements_run(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// A SeaORM connection whose statements run here, one at a time. It has no
    /// transactions of its own: use [`DirectSqlite::transaction`].
    pub(crate) fn shared(&self) -> DatabaseConnection {
        self.connection(Target::Shared(self.conn.clone()))
    }

    fn connection(&self, target: Target) -> DatabaseConnection {
        DatabaseConnectionType::MockDatabaseConnection(Arc::new(MockDatabaseConnection::new(
            Engine {
                target,
                kinds: self.kinds.clone(),
                statements: self.statements.clone(),
            },
        )))
        .into()
    }

    /// A connection that holds the database to itself, inside `BEGIN IMMEDIATE`, until
    /// dropped: finish it with [`DirectTransaction::commit`].
    ///
    /// The connection is held by a blocking lock, so between `BEGIN` and `COMMIT` the
    /// caller must await nothing but this transaction's own statements (which complete
    /// without suspending): a suspended holder could be waited for by its own thread.
    pub(crate) fn transaction(&self) -> Result<DirectTransaction, DbErr> {
        let guard = self.conn.lock_arc();
        guard.execute_batch("BEGIN IMMEDIATE").map_err(exec_err)?;
        let held = Arc::new(Held(Mutex::new(guard)));
        let db = self.connection(Target::Held(held.clone()));
        Ok(DirectTransaction { db, held })
    }
}

/// A transaction on the direct connection (see [`DirectSqlite::transaction`]); dropped
/// without [`DirectTransaction::commit`], it rolls back.
pub(crate) struct DirectTransaction {
    db: DatabaseConnection,
    held: Arc<Held>,
}

impl DirectTransaction {
    /// The connection to run the transaction's statements on.
    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Commits; on failure the transaction is rolled back (when the last handle drops)
    /// and the error returned.
    pub(crate) fn commit(self) -> Result<(), DbErr> {
        let conn = self.held.0.lock();
        conn.execute_batch("COMMIT").map_err(exec_err)
    }
}

/// The connection, held from `BEGIN` until the last handle to it is dropped.
struct Held(Mutex<ArcMutexGuard<RawMutex, Connection>>);

impl Drop for Held {
    fn drop(&mut self) {
        let conn = self.0.get_mut();
        if !conn.is_autocommit()
            && let Err(e) = conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "rolling back an abandoned SQLite transaction failed");
        }
    }
}

enum Target {
    Shared(Arc<Mutex<Connection>>),
    Held(Arc<Held>),
}

/// What SeaORM calls for each statement. SeaORM's "mock" connection is the public way to
/// put our own executor under its query builders; its `MockDatabase` only turns our rows
/// and counts into SeaORM's result types.
struct Engine {
    target: Target,
    kinds: Arc<Kinds>,
    statements: Arc<AtomicU64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectSqlite engine")
    }
}

impl Engine {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        self.statements.fetch_add(1, Ordering::Relaxed);
        match &self.target {
            Target::Shared(c) => f(&c.lock()),
            Target::Held(h) => f(&h.0.lock()),
        }
    }
}

impl MockDatabaseTrait for Engine {
    fn execute(&mut self, _: usize, stmt: Statement) -> Result<ExecResult, DbErr> {
        let result = self.with(|c| run_execute(c, &stmt))?;
        MockDatabase::new(DatabaseBackend::Sqlite)
            .append_exec_results([result])
            .execute(0, stmt)
    }

    fn query(&mut self, _: usize, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let rows = self.with(|c| run_query(c, &stmt, &self.kinds))?;
        MockDatabase::new(DatabaseBackend::Sqlite)
            .append_query_results([rows])
            .query(0, stmt)
    }

    // Transactions are taken with `DirectSqlite::transaction`, never through SeaORM.
    fn begin(&mut self) {}

    fn commit(&mut self) {}

    fn rollback(&mut self) {}

    fn drain_transaction_log(&mut self) -> Vec<Transaction> {
        Vec::new()
    }

    fn get_database_backend(&self) -> DatabaseBackend {
        DatabaseBackend::Sqlite
    }

    fn ping(&self) -> Result<(), DbErr> {
        self.with(|c| c.execute_batch("SELECT 1")).map_err(conn_err)
    }
}

/// A statement parameter, borrowed from SeaORM's value.
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as V;
        let owned = |v: V| Ok(ToSqlOutput::Owned(v));
        match self.0 {
            Value::Bool(v) => owned(v.map_or(V::Null, |b| V::Integer(i64::from(b)))),
            Value::TinyInt(v) => owned(v.map_or(V::Null, |n| V::Integer(n.into()))),
            Value::SmallInt(v) => owned(v.map_or(V::Null, |n| V::Integer(n.into()))),
            Value::Int(v) => owned(v.map_or(V::Null, |n| V::Integer(n.into()))),
            Value::BigInt(v) => owned(v.map_or(V::Null, V::Integer)),
            Value::TinyUnsigned(v) => owned(v.map_or(V::Null, |n| V::Integer(n.into()))),
            Value::SmallUnsigned(v) => owned(v.map_or(V::Null, |n| V::Integer(n.into()))),
            Value::Unsigned(v) => owned(v.map_or(V::Null, |n| V::Integer(n.into()))),
            Value::BigUnsigned(v) => match v {
                None => owned(V::Null),
                Some(n) => i64::try_from(*n)
                    .map(|n| ToSqlOutput::Owned(V::Integer(n)))
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e))),
            },
            Value::Float(v) => owned(v.map_or(V::Null, |n| V::Real(n.into()))),
            Value::Double(v) => owned(v.map_or(V::Null, V::Real)),
            Value::String(v) => Ok(match v {
                None => ToSqlOutput::Owned(V::Null),
                Some(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            }),
            Value::Char(v) => owned(v.map_or(V::Null, |c| V::Text(c.to_string()))),
            Value::Bytes(v) => Ok(match v {
                None => ToSqlOutput::Owned(V::Null),
                Some(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            }),
            other => Err(rusqlite::Error::ToSqlConversionFailure(
                format!("modal2fa's SQLite path does not bind {other:?}").into(),
            )),
        }
    }
}

fn prepare<'c>(
    conn: &'c Connection,
    statement: &Statement,
) -> Result<rusqlite::CachedStatement<'c>, DbErr> {
    let mut stmt = conn.prepare_cached(&statement.sql).map_err(query_err)?;
    if let Some(values) = &statement.values {
        for (i, v) in values.0.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, Param(v))
                .map_err(query_err)?;
        }
    }
    Ok(stmt)
}

fn run_query(
    conn: &Connection,
    statement: &Statement,
    kinds: &Kinds,
) -> Result<Vec<BTreeMap<String, Value>>, DbErr> {
    let mut stmt = prepare(conn, statement)?;
    let columns: Vec<(String, Option<Kind>)> = stmt
        .column_names()
        .into_iter()
        .map(|n| (n.to_owned(), kinds.get(n).copied()))
        .collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(query_err)? {
        let mut values = BTreeMap::new();
        for (i, (name, kind)) in columns.iter().enumerate() {
            let v = row.get_ref(i).map_err(query_err)?;
            values.insert(name.clone(), to_value(v, *kind).map_err(query_err)?);
        }
        out.push(values);
    }
    Ok(out)
}

fn run_execute(conn: &Connection, statement: &Statement) -> Result<MockExecResult, DbErr> {
    let mut stmt = prepare(conn, statement)?;
    let mut rows = stmt.raw_query();
    while rows.next().map_err(exec_err)?.is_some() {}
    drop(rows);
    Ok(MockExecResult {
        last_insert_id: conn.last_insert_rowid() as u64,
        rows_affected: conn.changes(),
    })
}

/// A stored value as the type SeaORM expects for its column.
fn to_value(v: ValueRef<'_>, kind: Option<Kind>) -> rusqlite::Result<Value> {
    let mismatch = || {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            v.data_type(),
            format!("a stored value does not fit its column ({kind:?})").into(),
        )
    };
    Ok(match (v, kind) {
        (ValueRef::Null, Some(k)) => k.null(),
        (ValueRef::Null, None) => Value::BigInt(None),
        (ValueRef::Integer(n), Some(Kind::Bool)) => Value::Bool(Some(n != 0)),
        (ValueRef::Integer(n), Some(Kind::Int)) => {
            Value::Int(Some(i32::try_from(n).map_err(|_| mismatch())?))
        }
        (ValueRef::Integer(n), Some(Kind::BigInt) | None) => Value::BigInt(Some(n)),
        (ValueRef::Integer(n), Some(Kind::Double)) => Value::Double(Some(n as f64)),
        (ValueRef::Real(f), Some(Kind::Double) | None) => Value::Double(Some(f)),
        (ValueRef::Text(t), Some(Kind::Text) | None) => Value::String(Some(
            std::str::from_utf8(t).map_err(|_| mismatch())?.to_owned(),
        )),
        (ValueRef::Blob(b), Some(Kind::Bytes) | None) => Value::Bytes(Some(b.to_vec())),
        (ValueRef::Text(t), Some(Kind::Bytes)) => Value::Bytes(Some(t.to_vec())),
        (ValueRef::Blob(b), Some(Kind::Text)) => {
            Value::String(Some(String::from_utf8(b.to_vec()).map_err(|_| mismatch())?))
        }
        _ => return Err(mismatch()),
    })
}

fn is_unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(C::DatabaseBusy | C::DatabaseLocked | C::CannotOpen | C::NotADatabase)
    )
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    const PRIMARYKEY: i32 = 1555;
    const UNIQUE: i32 = 2067;
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == PRIMARYKEY || f.extended_code == UNIQUE)
}

fn conn_err(e: rusqlite::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(e.to_string()))
}

fn classify(e: rusqlite::Error, wrap: fn(RuntimeErr) -> DbErr) -> DbErr {
    if is_unique_violation(&e) {
        DbErr::Custom(format!("{UNIQUE_VIOLATION}{e}"))
    } else if is_unavailable(&e) {
        conn_err(e)
    } else {
        wrap(RuntimeErr::Internal(e.to_string()))
    }
}

fn query_err(e: rusqlite::Error) -> DbErr {
    classify(e, DbErr::Query)
}

fn exec_err(e: rusqlite::Error) -> DbErr {
    classify(e, DbErr::Exec)
}

/// Runs `sql` (several statements allowed) on the direct connection.
#[cfg(test)]
fn batch(d: &DirectSqlite, sql: &str) -> Result<(), DbErr> {
    d.conn.lock().execute_batch(sql).map_err(exec_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnectionTrait;

    #[test]
    fn every_column_name_means_one_type_across_the_schema() {
        let kinds = schema_kinds().expect("no conflicts");
        assert_eq!(kinds.get("failures"), Some(&Kind::Int));
        assert_eq!(kinds.get("is_active"), Some(&Kind::Bool));
        assert_eq!(kinds.get("user_id"), Some(&Kind::BigInt));
        // A number in most tables, a text in one: SQLite's storage class tells.
        assert_eq!(kinds.get("id"), None);
    }

    #[test]
    fn sqlite_urls_name_their_file_and_memory_or_read_only_databases_are_left_to_sqlx() {
        assert_eq!(
            sqlite_file("sqlite:///tmp/a.db?mode=rwc"),
            Some((PathBuf::from("/tmp/a.db"), true))
        );
        assert_eq!(
            sqlite_file("sqlite://data/a.db"),
            Some((PathBuf::from("data/a.db"), false))
        );
        assert_eq!(
            sqlite_file("sqlite://my%20data.db?mode=rwc"),
            Some((PathBuf::from("my data.db"), true)),
            "percent-decoded as the pool decodes it"
        );
        assert_eq!(
            sqlite_file("sqlite:a.db"),
            Some((PathBuf::from("a.db"), false))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://a.db?mode=memory"), None);
        assert_eq!(sqlite_file("sqlite://a.db?mode=ro"), None);
        assert_eq!(sqlite_file("postgres://localhost/x"), None);
    }

    #[test]
    fn stored_values_take_the_type_of_their_column() {
        assert_eq!(
            to_value(ValueRef::Integer(1), Some(Kind::Bool)).unwrap(),
            Value::Bool(Some(true))
        );
        assert_eq!(
            to_value(ValueRef::Integer(7), Some(Kind::Int)).unwrap(),
            Value::Int(Some(7))
        );
        assert_eq!(
            to_value(ValueRef::Null, Some(Kind::Text)).unwrap(),
            Value::String(None)
        );
        assert!(to_value(ValueRef::Integer(i64::MAX), Some(Kind::Int)).is_err());
        assert!(to_value(ValueRef::Text(b"x"), Some(Kind::BigInt)).is_err());
    }

    #[tokio::test]
    async fn an_abandoned_transaction_is_rolled_back_before_the_connection_serves_again() {
        let path = std::env::temp_dir().join(format!(
            "modal2fa_direct_{}_{}.sqlite",
            std::process::id(),
            line!()
        ));
        let d = DirectSqlite::open(&path, true).unwrap();
        batch(&d, "CREATE TABLE t (x INTEGER)").unwrap();
        {
            let tx = d.transaction().unwrap();
            tx.conn()
                .execute_unprepared("INSERT INTO t (x) VALUES (1)")
                .await
                .unwrap();
            // dropped without commit
        }
        let tx = d.transaction().unwrap();
        tx.conn()
            .execute_unprepared("INSERT INTO t (x) VALUES (2)")
            .await
            .unwrap();
        tx.commit().unwrap();
        let rows = d
            .shared()
            .query_all_raw(Statement::from_string(
                DatabaseBackend::Sqlite,
                "SELECT x FROM t",
            ))
            .await
            .unwrap();
        let xs: Vec<i64> = rows.iter().map(|r| r.try_get("", "x").unwrap()).collect();
        assert_eq!(xs, vec![2]);
        std::fs::remove_file(&path).ok();
    }
}
