//! SeaORM migrations for modal2fa. Tables are prefixed `modal2fa_`, and the migration
//! history lives in its own table, `modal2fa_migrations`, so a host application's SeaORM
//! migrations never collide with ours. Times are `BIGINT` microseconds since the Unix
//! epoch (UTC), which compare and sort the same on SQLite, PostgreSQL and MySQL/MariaDB.
//! Text compares as bytes on all three: on MySQL/MariaDB the tables have a binary
//! collation (`m20261201_000001_binary_collations`), as PostgreSQL and SQLite compare
//! by default.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_create_tables;
mod m20261128_000002_sessions_listing_index;
mod m20261201_000001_binary_collations;
mod m20261201_000002_known_clients;
mod m20261201_000003_session_passkey;
mod m20261202_000001_outbox;

/// The name of modal2fa's migration-history table.
pub const MIGRATION_TABLE: &str = "modal2fa_migrations";

/// Every modal2fa table, in creation order.
pub const TABLES: &[&str] = &[
    "modal2fa_users",
    "modal2fa_totp_devices",
    "modal2fa_webauthn_credentials",
    "modal2fa_recovery_codes",
    "modal2fa_trusted_devices",
    "modal2fa_lockout",
    "modal2fa_sessions",
    "modal2fa_audit_events",
    "modal2fa_known_clients",
    "modal2fa_outbox",
];

/// The migrator: `Migrator::up(&db, None)` applies what is pending.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_tables::Migration),
            Box::new(m20261128_000002_sessions_listing_index::Migration),
            Box::new(m20261201_000001_binary_collations::Migration),
            Box::new(m20261201_000002_known_clients::Migration),
            Box::new(m20261201_000003_session_passkey::Migration),
            Box::new(m20261202_000001_outbox::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new(MIGRATION_TABLE).into_iden()
    }
}
