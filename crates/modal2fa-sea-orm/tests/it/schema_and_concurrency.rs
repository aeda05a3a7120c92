//! Migrations, the entity/schema match, error mapping, and atomicity across two
//! independent connection pools — on every backend this run can reach.

use std::sync::Arc;

use crate::common::{Backend, TestDb, backends};
use modal2fa_core::lockout::{LockoutKey, LockoutSettings};
use modal2fa_core::model::{TrustedDevice, UserId};
use modal2fa_core::ports::{FactorStore, LockoutStore, PortError, Rotation, TrustedDeviceStore};
use modal2fa_migration::{MIGRATION_TABLE, Migrator, MigratorTrait, TABLES};
use modal2fa_sea_orm::entities::*;
use modal2fa_sea_orm::sea_orm::{
    ConnectionTrait, DatabaseBackend, EntityTrait, IdenStatic, Iterable, Statement,
};
use modal2fa_sea_orm::{SeaOrmStore, map_err};
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

async fn columns(store: &SeaOrmStore, table: &str) -> Vec<String> {
    let db = store.connection();
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Sqlite => format!("SELECT name AS c FROM pragma_table_info('{table}')"),
        DatabaseBackend::Postgres => format!(
            "SELECT column_name AS c FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{table}'"
        ),
        _ => format!(
            "SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}'"
        ),
    };
    let mut cols: Vec<String> = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "c").unwrap())
        .collect();
    cols.sort();
    cols
}

fn entity_columns<E: EntityTrait>() -> Vec<String> {
    let mut cols: Vec<String> = E::Column::iter().map(|c| c.as_str().to_owned()).collect();
    cols.sort();
    cols
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_are_idempotent_and_match_the_entities() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let store = db.store().await;
        // Re-running changes nothing and fails nothing.
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        assert!(
            Migrator::get_pending_migrations(store.connection())
                .await
                .unwrap()
                .is_empty()
        );
        let history = columns(&store, MIGRATION_TABLE).await;
        assert!(
            !history.is_empty(),
            "{backend:?}: the history table is {MIGRATION_TABLE}"
        );
        let expected: [(&str, Vec<String>); 10] = [
            ("modal2fa_users", entity_columns::<users::Entity>()),
            (
                "modal2fa_totp_devices",
                entity_columns::<totp_devices::Entity>(),
            ),
            (
                "modal2fa_webauthn_credentials",
                entity_columns::<webauthn_credentials::Entity>(),
            ),
            (
                "modal2fa_recovery_codes",
                entity_columns::<recovery_codes::Entity>(),
            ),
            (
                "modal2fa_trusted_devices",
                entity_columns::<trusted_devices::Entity>(),
            ),
            ("modal2fa_lockout", entity_columns::<lockout::Entity>()),
            ("modal2fa_sessions", entity_columns::<sessions::Entity>()),
            (
                "modal2fa_audit_events",
                entity_columns::<audit_events::Entity>(),
            ),
            (
                "modal2fa_known_clients",
                entity_columns::<known_clients::Entity>(),
            ),
            ("modal2fa_outbox", entity_columns::<outbox::Entity>()),
        ];
        assert_eq!(expected.len(), TABLES.len());
        for (table, want) in expected {
            assert_eq!(columns(&store, table).await, want, "{backend:?}: {table}");
        }
        // And every entity can read its table.
        users::Entity::find().all(store.connection()).await.unwrap();
        sessions::Entity::find()
            .all(store.connection())
            .await
            .unwrap();
        lockout::Entity::find()
            .all(store.connection())
            .await
            .unwrap();
        db.drop_db().await;
    }
}

#[tokio::test]
async fn an_unreachable_database_is_reported_as_unavailable() {
    let err = SeaOrmStore::connect("postgres://nobody@127.0.0.1:9/none", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    let unexpected = map_err(modal2fa_sea_orm::sea_orm::DbErr::Custom("boom".into()));
    assert!(matches!(unexpected, PortError::Unexpected(_)));
}

/// Two independent pools on one database, as two server processes would have.
async fn two_pools(db: &TestDb) -> [Arc<SeaOrmStore>; 2] {
    [Arc::new(db.store().await), Arc::new(db.store().await)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_failures_through_two_pools_count_exactly_fifty_and_lock_once() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let pools = two_pools(&db).await;
        let key = LockoutKey::User("target".into());
        let rule = LockoutSettings {
            user_failed_attempts: 50,
            ..Default::default()
        }
        .rule_for(&key);
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (store, key) = (pools[i % 2].clone(), key.clone());
                tokio::spawn(
                    async move { store.record_failure(&key, None, NOW, rule).await.unwrap() },
                )
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let entry = pools[0].get(&key).await.unwrap().unwrap();
        assert_eq!(entry.failures, 50, "{backend:?}");
        assert_eq!(entry.lock_count, 1, "{backend:?}: the lock is set once");
        assert!(entry.locked_until.is_some());
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_uses_of_one_totp_step_through_two_pools_give_one_success() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let pools = two_pools(&db).await;
        let device = pools[0]
            .add_totp(UserId(1), vec![1, 2, 3], NOW)
            .await
            .unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = pools[i % 2].clone();
                tokio::spawn(async move {
                    store
                        .advance_totp_step(device.id, 57_000_000)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{backend:?}");
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_rotations_of_one_trusted_device_through_two_pools_give_one_success() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let pools = two_pools(&db).await;
        pools[0]
            .insert(TrustedDevice {
                id: "device-under-test".into(),
                user_id: UserId(1),
                name: "laptop".into(),
                key_hash: vec![7; 32],
                previous_key_hash: None,
                created_at: NOW,
                last_used_at: NOW,
                last_ip: None,
                user_agent: String::new(),
            })
            .await
            .unwrap();
        let tasks: Vec<_> = (0..50u8)
            .map(|i| {
                let store = pools[usize::from(i) % 2].clone();
                tokio::spawn(async move {
                    store
                        .rotate(Rotation {
                            id: "device-under-test",
                            user: UserId(1),
                            expected_hash: &[7; 32],
                            new_hash: vec![i + 8; 32],
                            used_after: NOW - time::Duration::days(1),
                            created_after: NOW - time::Duration::days(365),
                            at: NOW,
                            ip: None,
                            user_agent: "",
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{backend:?}");
        db.drop_db().await;
    }
}

#[tokio::test]
async fn sqlite_is_always_among_the_backends() {
    assert_eq!(backends()[0], Backend::Sqlite);
}
