//! Test databases: SQLite always (a temporary file), PostgreSQL and MySQL/MariaDB when
//! `MODAL2FA_TEST_POSTGRES_URL` / `MODAL2FA_TEST_MYSQL_URL` are set. Each test makes its
//! own uniquely named database and drops it afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use modal2fa_migration::TABLES;
use modal2fa_sea_orm::SeaOrmStore;
use modal2fa_sea_orm::sea_orm::{ConnectionTrait, Database, DatabaseBackend};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file through `SeaOrmStore::connect`.
    Sqlite,
    Postgres,
    MySql,
}

/// A fresh, migrated database that is removed by [`TestDb::drop_db`].
pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: String,
    sqlite_path: Option<std::path::PathBuf>,
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "modal2fa_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

/// `url` with its path (database name) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a database URL");
    let host = rest.split(['/', '?']).next().unwrap();
    format!("{scheme}://{host}/{name}")
}

/// The backends this run can reach, saying which are skipped.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    for (var, b) in [
        ("MODAL2FA_TEST_POSTGRES_URL", Backend::Postgres),
        ("MODAL2FA_TEST_MYSQL_URL", Backend::MySql),
    ] {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => out.push(b),
            _ => eprintln!("skipped: {b:?} (set {var} to run it)"),
        }
    }
    out
}

impl TestDb {
    /// Creates and migrates a new database on `backend`.
    pub async fn create(backend: Backend) -> Self {
        let name = unique_name();
        let db = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.sqlite"));
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    admin_url: None,
                    name,
                    sqlite_path: Some(path),
                }
            }
            Backend::Postgres | Backend::MySql => {
                let var = if backend == Backend::Postgres {
                    "MODAL2FA_TEST_POSTGRES_URL"
                } else {
                    "MODAL2FA_TEST_MYSQL_URL"
                };
                let admin_url = std::env::var(var).unwrap();
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .expect("connect to the database server");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the test database");
                admin.close().await.ok();
                Self {
                    url: with_database(&admin_url, &name),
                    admin_url: Some(admin_url),
                    name,
                    sqlite_path: None,
                }
            }
        };
        db.store().await.migrate().await.expect("migrate");
        db
    }

    /// A new pool on this database.
    pub async fn store(&self) -> SeaOrmStore {
        SeaOrmStore::connect(&self.url, 8).await.expect("connect")
    }

    /// A store on an emptied database (every table cleared).
    pub async fn empty_store(&self) -> SeaOrmStore {
        let store = self.store().await;
        for t in TABLES {
            store
                .connection()
                .execute_unprepared(&format!("DELETE FROM {t}"))
                .await
                .expect("clear table");
        }
        store
    }

    /// Drops the database.
    pub async fn drop_db(self) {
        match (&self.admin_url, &self.sqlite_path) {
            (Some(admin_url), _) => {
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .expect("connect");
                let sql = if admin.get_database_backend() == DatabaseBackend::Postgres {
                    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)
                } else {
                    format!("DROP DATABASE IF EXISTS {}", self.name)
                };
                admin
                    .execute_unprepared(&sql)
                    .await
                    .expect("drop the test database");
                admin.close().await.ok();
            }
            (None, Some(path)) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            _ => {}
        }
    }
}
