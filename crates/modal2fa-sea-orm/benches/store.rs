//! Per-backend cost of the two hottest store operations: a lockout increment
//! (compare-and-set on the entry the lock check read) and a TOTP check (load the user's
//! devices + advance the step).
//!
//! `cargo bench -p modal2fa-sea-orm --bench store` — SQLite always; PostgreSQL and MySQL
//! when `MODAL2FA_TEST_POSTGRES_URL` / `MODAL2FA_TEST_MYSQL_URL` name a server.

use std::sync::atomic::{AtomicI64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use modal2fa_core::lockout::{LockoutKey, LockoutSettings};
use modal2fa_core::model::UserId;
use modal2fa_core::ports::{FactorStore, LockoutStore};
use modal2fa_sea_orm::SeaOrmStore;
use modal2fa_sea_orm::sea_orm::{ConnectionTrait, Database};
use time::macros::datetime;

fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a database URL");
    let host = rest.split(['/', '?']).next().unwrap();
    format!("{scheme}://{host}/{name}")
}

async fn open(label: &str) -> Option<(SeaOrmStore, Box<dyn FnOnce() + Send>)> {
    let name = format!("modal2fa_bench_{}", std::process::id());
    match label {
        "sqlite" => {
            let path = std::env::temp_dir().join(format!("{name}.sqlite"));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let store = SeaOrmStore::connect(&url, 4).await.unwrap();
            store.migrate().await.unwrap();
            Some((
                store,
                Box::new(move || {
                    for s in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{s}", path.display()));
                    }
                }),
            ))
        }
        _ => {
            let var = if label == "postgres" {
                "MODAL2FA_TEST_POSTGRES_URL"
            } else {
                "MODAL2FA_TEST_MYSQL_URL"
            };
            let admin_url = std::env::var(var).ok().filter(|v| !v.is_empty())?;
            let admin = Database::connect(admin_url.as_str()).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                .await
                .unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let store = SeaOrmStore::connect(&with_database(&admin_url, &name), 4)
                .await
                .unwrap();
            store.migrate().await.unwrap();
            let drop_sql = format!("DROP DATABASE IF EXISTS {name}");
            Some((
                store,
                Box::new(move || {
                    let rt = tokio::runtime::Runtime::new().unwrap();
                    rt.block_on(async move {
                        let admin = Database::connect(admin_url.as_str()).await.unwrap();
                        admin.execute_unprepared(&drop_sql).await.unwrap();
                    });
                }),
            ))
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let now = datetime!(2026-05-01 10:00 UTC);
    for label in ["sqlite", "postgres", "mysql"] {
        let Some((store, cleanup)) = rt.block_on(open(label)) else {
            eprintln!("skipped: {label} (no URL set)");
            continue;
        };
        let key = LockoutKey::User("bench".into());
        let rule = LockoutSettings {
            user_failed_attempts: u32::MAX,
            ..Default::default()
        }
        .rule_for(&key);
        c.bench_function(&format!("lockout_increment/{label}"), |b| {
            b.to_async(&rt).iter(|| async {
                // As the login service does: read (the lock check), then count on it.
                let seen = store.get(&key).await.unwrap();
                store
                    .record_failure(&key, seen.as_ref(), now, rule)
                    .await
                    .unwrap()
            })
        });
        let device = rt
            .block_on(store.add_totp(UserId(1), vec![0; 57], now))
            .unwrap();
        let step = AtomicI64::new(1);
        c.bench_function(&format!("totp_check/{label}"), |b| {
            b.to_async(&rt).iter(|| async {
                let devices = store.totp_devices(UserId(1)).await.unwrap();
                assert!(!devices.is_empty());
                assert!(
                    store
                        .advance_totp_step(device.id, step.fetch_add(1, Ordering::Relaxed))
                        .await
                        .unwrap()
                );
            })
        });
        drop(store);
        cleanup();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
