//! A database outage on PostgreSQL and MySQL/MariaDB, without stopping the shared server:
//! the store reaches the database through a TCP forwarder inside the test, which can be
//! switched down (every forwarded connection closed; new ones refused, or accepted and
//! never answered) and up again. While down, store calls answer `Unavailable` within the
//! pool's acquire timeout; once up, the same pool serves again with the data untouched.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Backend, TestDb, backends};
use modal2fa_core::lockout::{LockoutEntry, LockoutKey, LockoutSettings};
use modal2fa_core::model::{AuthMethod, SessionRecord, UserId};
use modal2fa_core::ports::{LockoutStore, PortError, SessionStore};
use modal2fa_sea_orm::sea_orm::ConnectionTrait;
use modal2fa_sea_orm::{PoolOptions, SeaOrmStore, map_err};
use time::macros::datetime;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The pool's timeouts in these tests.
const POOL_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a call may take while the database is down: the acquire timeout plus
/// slack. A bound on a hang (the pool's old 30 s), not a benchmark.
const WITHIN: Duration = Duration::from_secs(6);

/// How the forwarder treats new connections while it is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Down {
    /// The port is closed: connecting is refused.
    Refuse,
    /// Connections are accepted and never answered (a black-holed network).
    Hang,
}

/// A TCP forwarder from a free local port to the database server.
struct Forwarder {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    /// While down in [`Down::Hang`] mode: accepted connections are held here, unanswered.
    hanging: bool,
    held: Vec<TcpStream>,
    /// The forwarding task of every connection.
    links: Vec<JoinHandle<()>>,
}

impl Forwarder {
    /// Forwards 127.0.0.1 on a free port to `upstream`; up.
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut forwarder = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            state: Arc::default(),
            acceptor: None,
        };
        forwarder.accept_on(listener);
        forwarder
    }

    fn accept_on(&mut self, listener: TcpListener) {
        let (state, upstream) = (self.state.clone(), self.upstream);
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = state.lock().unwrap();
                if state.hanging {
                    state.held.push(client);
                    continue;
                }
                state.links.retain(|l| !l.is_finished());
                state.links.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        }));
    }

    /// Closes every forwarded connection and treats new ones as `mode` says. When this
    /// returns the sockets are closed (the tasks holding them have ended).
    async fn down(&mut self, mode: Down) {
        let links = {
            let mut state = self.state.lock().unwrap();
            state.hanging = mode == Down::Hang;
            std::mem::take(&mut state.links)
        };
        if mode == Down::Refuse {
            let acceptor = self.acceptor.take().expect("the forwarder is up");
            acceptor.abort();
            let _ = acceptor.await;
        }
        for link in links {
            link.abort();
            let _ = link.await;
        }
    }

    /// Forwards again, on the same port; the connections held while hanging are closed.
    async fn up(&mut self) {
        if self.acceptor.is_none() {
            let listener = TcpListener::bind(self.addr).await.expect("rebind the port");
            self.accept_on(listener);
        }
        let mut state = self.state.lock().unwrap();
        state.hanging = false;
        state.held.clear();
    }

    /// `url` (`scheme://user@host:port/db?…`) through this forwarder.
    fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
        format!("{scheme}://{}{}{path}", user.unwrap_or_default(), self.addr)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(acceptor) = &self.acceptor {
            acceptor.abort();
        }
        for link in &self.state.lock().unwrap().links {
            link.abort();
        }
    }
}

/// The server behind `url`, by address (the default port when none is given).
async fn server_of(url: &str, backend: Backend) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split(['/', '?']).next().unwrap();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default_port = if backend == Backend::Postgres {
        5432
    } else {
        3306
    };
    let host = match host.contains(':') {
        true => host.to_owned(),
        false => format!("{host}:{default_port}"),
    };
    tokio::net::lookup_host(host).await.unwrap().next().unwrap()
}

/// A test database and a store that reaches it through a forwarder.
async fn through_a_forwarder(backend: Backend) -> (TestDb, Forwarder, SeaOrmStore) {
    let db = TestDb::create(backend).await;
    let forwarder = Forwarder::start(server_of(&db.url, backend).await).await;
    let options = PoolOptions {
        max_connections: 4,
        acquire_timeout: POOL_TIMEOUT,
        ..PoolOptions::default()
    };
    let store = SeaOrmStore::connect_with(&forwarder.url_for(&db.url), options)
        .await
        .expect("connect through the forwarder");
    (db, forwarder, store)
}

fn session() -> SessionRecord {
    let at = datetime!(2030-01-01 12:00 UTC);
    SessionRecord {
        id_hash: "ab".repeat(32),
        user_id: Some(UserId(7)),
        method: Some(AuthMethod::TwoFactor),
        passkey_id: None,
        ip: Some("192.0.2.9".parse().unwrap()),
        user_agent: "Firefox".into(),
        created_at: at,
        last_seen_at: at,
        expires_at: at + time::Duration::hours(12),
        data: "{\"state\":\"anonymous\"}".into(),
    }
}

/// `call`'s result, failing the test if it takes longer than [`WITHIN`] (with a hard
/// stop at 30 s so that a hang fails instead of stalling the suite).
async fn timed<T>(what: &str, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 30 s"));
    let took = started.elapsed();
    assert!(took < WITHIN, "{what}: took {took:?}, more than {WITHIN:?}");
    result
}

#[track_caller]
fn assert_unavailable<T: std::fmt::Debug>(what: &str, result: Result<T, PortError>) {
    match result {
        Err(PortError::Unavailable(cause)) => eprintln!("{what}: unavailable ({cause:?})"),
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

/// Retries `call` for up to 10 s: the first call after the database is back may still
/// meet a connection that died in the outage.
async fn once_back<T, F: Future<Output = Result<T, PortError>>>(
    what: &str,
    mut call: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                eprintln!("{what}: not yet back ({e:?})");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{what}: the pool did not recover within 10 s: {e:?}"),
        }
    }
}

fn external_backends() -> Vec<Backend> {
    let out: Vec<_> = backends()
        .into_iter()
        .filter(|b| *b != Backend::Sqlite)
        .collect();
    if out.is_empty() {
        eprintln!("skipped: the outage tests need a database server (SQLite has no network)");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_unavailable_within_seconds_and_the_pool_recovers_with_data_intact() {
    for backend in external_backends() {
        for mode in [Down::Refuse, Down::Hang] {
            let what = format!("{backend:?}, new connections {mode:?}");
            let (db, mut forwarder, store) = through_a_forwarder(backend).await;
            let key = LockoutKey::User("alice".into());
            let rule = LockoutSettings::default().rule_for(&key);
            let at = datetime!(2030-01-01 12:00 UTC);

            // Before: a session saved and a failure counted.
            let record = session();
            store.save(&record).await.unwrap();
            let first = store.record_failure(&key, None, at, rule).await.unwrap();
            let counted: LockoutEntry = store.get(&key).await.unwrap().unwrap();
            assert_eq!((counted.failures, &counted), (1, &first));

            // Down: reads and writes are unavailable, each within seconds.
            forwarder.down(mode).await;
            let keys = [&key];
            let r = timed(&what, store.get_many(&keys)).await;
            assert_unavailable(&format!("{what}: get_many"), r);
            let r = timed(&what, store.load(&record.id_hash)).await;
            assert_unavailable(&format!("{what}: load"), r);
            let r = timed(&what, store.record_failure(&key, Some(&first), at, rule)).await;
            assert_unavailable(&format!("{what}: record_failure"), r);

            // Up: the same pool serves again, and nothing changed.
            forwarder.up().await;
            let loaded = once_back(&what, || store.load(&record.id_hash)).await;
            assert_eq!(loaded, Some(record), "{what}: the session");
            let after = store.get(&key).await.unwrap();
            assert_eq!(after, Some(first), "{what}: the counter");

            store.connection().clone().close().await.ok();
            drop(forwarder);
            db.drop_db().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cut_off_by_the_outage_is_unavailable_and_the_pool_recovers() {
    for backend in external_backends() {
        let (db, mut forwarder, store) = through_a_forwarder(backend).await;
        let sleep = match backend {
            Backend::Postgres => "SELECT pg_sleep(20)",
            _ => "SELECT SLEEP(20)",
        };
        let conn = store.connection().clone();
        let running = tokio::spawn(async move { conn.execute_unprepared(sleep).await });
        // Long enough for the statement to reach the server.
        tokio::time::sleep(Duration::from_millis(500)).await;
        forwarder.down(Down::Refuse).await;
        let cut = timed(&format!("{backend:?}: the running statement"), running)
            .await
            .unwrap();
        let err = cut.expect_err("the statement was cut off");
        eprintln!("{backend:?}: the cut statement failed with {err:?}");
        assert_unavailable(
            &format!("{backend:?}: the cut statement"),
            Err::<(), _>(map_err(err)),
        );

        forwarder.up().await;
        let record = session();
        once_back(&format!("{backend:?}"), || store.save(&record)).await;
        assert_eq!(store.load(&record.id_hash).await.unwrap(), Some(record));

        store.connection().clone().close().await.ok();
        drop(forwarder);
        db.drop_db().await;
    }
}

/// The server ends the session of a running statement, as a restart or a fast shutdown
/// does (PostgreSQL: FATAL 57P01 admin_shutdown; MariaDB: the socket closes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_whose_session_the_server_ends_is_unavailable() {
    use modal2fa_sea_orm::sea_orm::{Database, DbBackend, Statement};
    for backend in external_backends() {
        let db = TestDb::create(backend).await;
        let store = db.store().await;
        let (var, sleep, find) = match backend {
            Backend::Postgres => (
                "MODAL2FA_TEST_POSTGRES_URL",
                "SELECT pg_sleep(20)",
                "SELECT pid::BIGINT FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'",
            ),
            _ => (
                "MODAL2FA_TEST_MYSQL_URL",
                "SELECT SLEEP(20)",
                "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(20)'",
            ),
        };
        let conn = store.connection().clone();
        let running = tokio::spawn(async move { conn.execute_unprepared(sleep).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let admin = Database::connect(std::env::var(var).unwrap().as_str())
            .await
            .unwrap();
        let kind = admin.get_database_backend();
        let row = admin
            .query_one_raw(Statement::from_string(kind, find))
            .await
            .unwrap()
            .unwrap();
        let id: i64 = row.try_get_by_index(0).unwrap();
        let end = match kind {
            DbBackend::Postgres => format!("SELECT pg_terminate_backend({id})"),
            _ => format!("KILL {id}"),
        };
        admin.execute_unprepared(&end).await.unwrap();
        let err = timed(&format!("{backend:?}"), running)
            .await
            .unwrap()
            .expect_err("ended");
        assert_unavailable(
            &format!("{backend:?}: ended by the server"),
            Err::<(), _>(map_err(err)),
        );
        assert_eq!(
            store.load("none").await.unwrap(),
            None,
            "the pool serves on"
        );
        admin.close().await.ok();
        store.connection().clone().close().await.ok();
        db.drop_db().await;
    }
}
