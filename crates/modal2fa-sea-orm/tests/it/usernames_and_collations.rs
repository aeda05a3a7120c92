//! Usernames on a real database: the database compares bytes (MySQL/MariaDB's default
//! collations are case- and accent-insensitive, so without binary collations `alíce`
//! would find `alice`'s row and count on another lockout row), and the services compare
//! canonical forms (NFKC, then lower case). Every spelling that reaches an account counts
//! on that account's one lockout key; a spelling that is another account does not.

use std::sync::Arc;

use crate::common::{Backend, TestDb, backends};
use modal2fa_core::lockout::{LockoutKey, LockoutSettings};
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, Email, RequestContext, Username};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::{LockoutStore, UserStore};
use modal2fa_core::services::{LoginReport, NewAccount, PasswordLogin};
use modal2fa_core::{DefaultPolicy, Modal2fa, Ports, ServerSecret, ServiceError, Settings};
use modal2fa_migration::{Migrator, MigratorTrait};
use modal2fa_sea_orm::SeaOrmStore;
use modal2fa_sea_orm::entities::users;
use modal2fa_sea_orm::sea_orm::sea_query::Expr;
use modal2fa_sea_orm::sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, Set,
    Statement,
};
use modal2fa_test_support::{FixedClock, MemoryNotifier, SequenceRandom};

const PASSWORD: &str = "correct horse battery";

/// The services over `store` with a per-account threshold of 3 (and a high one per
/// address, so only the account's counter decides).
fn services(store: SeaOrmStore) -> Modal2fa {
    let ports = Ports::builder(Arc::new(store))
        .notifier(Arc::new(MemoryNotifier::default()))
        .clock(Arc::new(FixedClock::default_start()))
        .random(Arc::new(SequenceRandom::new(7)))
        .hash_pool(Arc::new(modal2fa_test_support::InlineHashPool::default()))
        .delay(Arc::new(modal2fa_test_support::RecordingDelay::new()))
        .build()
        .expect("every required port is given");
    let settings = Settings {
        lockout: LockoutSettings {
            user_failed_attempts: 3,
            ip_failed_attempts: 1_000,
            ..LockoutSettings::default()
        },
        password_hashing: PasswordHashing::FOR_TESTS,
        ..Settings::default()
    };
    Modal2fa::new(
        ports,
        Arc::new(DefaultPolicy),
        settings,
        &ServerSecret::new(vec![5; 32]).unwrap(),
    )
}

fn account(username: &str) -> NewAccount {
    NewAccount {
        username: username.into(),
        email: None,
        first_name: String::new(),
        last_name: String::new(),
        password: Some(PASSWORD.into()),
        superuser: false,
    }
}

async fn sign_in(auth: &Modal2fa, username: &str, password: &str, n: u8) -> LoginReport {
    auth.login
        .submit_password(
            &LoginState::Anonymous,
            PasswordLogin {
                username: username.into(),
                password: password.into(),
                trusted_device_cookie: None,
            },
            &RequestContext::new(
                format!("203.0.113.{n}").parse().unwrap(),
                "collations",
                "/auth/login/",
            ),
        )
        .await
        .unwrap()
}

fn signed_in() -> Outcome {
    Outcome::SignedIn {
        method: AuthMethod::Password,
    }
}

async fn failures(store: &SeaOrmStore, name: &str) -> Option<(u32, bool)> {
    store
        .get(&LockoutKey::User(name.into()))
        .await
        .unwrap()
        .map(|e| (e.failures, e.locked_until.is_some()))
}

#[tokio::test]
async fn an_accented_spelling_is_another_account_and_does_not_take_the_lock_off_alice() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let store = db.store().await;
        let auth = services(store.clone());
        auth.account.create_user(account("alice")).await.unwrap();

        // `alíce` is not alice: her password does not sign it in...
        let r = sign_in(&auth, "alíce", PASSWORD, 1).await;
        assert_eq!(
            r.outcome,
            Outcome::Refused(Refusal::InvalidCredentials),
            "{backend:?}: alíce with alice's password"
        );
        // ...and six wrong passwords lock `alíce`, not alice.
        for n in 2..=7 {
            sign_in(&auth, "alíce", "wrong", n).await;
        }
        let alíce = failures(&store, "alíce").await;
        assert_eq!(alíce, Some((3, true)), "{backend:?}: alíce's own counter");
        assert_eq!(
            failures(&store, "alice").await,
            None,
            "{backend:?}: alice untouched"
        );

        // alice is locked after her own three failures; the right password is then refused.
        for n in 8..=10 {
            let r = sign_in(&auth, "alice", "wrong", n).await;
            assert_eq!(
                r.outcome,
                Outcome::Refused(Refusal::InvalidCredentials),
                "{backend:?}: failure {n}"
            );
        }
        assert_eq!(
            failures(&store, "alice").await,
            Some((3, true)),
            "{backend:?}: alice's counter"
        );
        let r = sign_in(&auth, "alice", PASSWORD, 11).await;
        assert!(
            matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
            "{backend:?}: alice locked, got {:?}",
            r.outcome
        );
        // alíce's counter got none of alice's failures.
        assert_eq!(failures(&store, "alíce").await, alíce, "{backend:?}");
        db.drop_db().await;
    }
}

#[tokio::test]
async fn spellings_in_another_case_or_width_reach_alice_and_share_her_lock() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let store = db.store().await;
        let auth = services(store.clone());
        auth.account.create_user(account("Alice")).await.unwrap();

        for (n, spelling) in ["alice", "ALICE", "ａｌｉｃｅ"].into_iter().enumerate() {
            let r = sign_in(&auth, spelling, PASSWORD, 20 + n as u8).await;
            assert_eq!(r.outcome, signed_in(), "{backend:?}: {spelling}");
        }
        for (n, spelling) in ["aLiCe", "ＡＬＩＣＥ", "alice"].into_iter().enumerate() {
            sign_in(&auth, spelling, "wrong", 30 + n as u8).await;
        }
        assert_eq!(
            failures(&store, "alice").await,
            Some((3, true)),
            "{backend:?}: one counter for every spelling"
        );
        for (n, spelling) in ["Alice", "ａｌｉｃｅ"].into_iter().enumerate() {
            let r = sign_in(&auth, spelling, PASSWORD, 40 + n as u8).await;
            assert!(
                matches!(r.outcome, Outcome::Refused(Refusal::Locked { .. })),
                "{backend:?}: {spelling} locked, got {:?}",
                r.outcome
            );
        }
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_second_account_whose_name_differs_only_in_case_or_width_is_a_conflict_but_an_accented_one_is_not()
 {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let auth = services(db.store().await);
        auth.account.create_user(account("alice")).await.unwrap();
        for spelling in ["ALICE", "ａｌｉｃｅ", "Ａlice"] {
            let r = auth.account.create_user(account(spelling)).await;
            assert!(
                matches!(r, Err(ServiceError::Conflict(_))),
                "{backend:?}: {spelling}: {r:?}"
            );
        }
        let r = auth.account.create_user(account("alíce")).await;
        assert!(r.is_ok(), "{backend:?}: alíce: {r:?}");
        let r = auth.account.create_user(account("ＡＬÍＣＥ")).await;
        assert!(
            matches!(r, Err(ServiceError::Conflict(_))),
            "{backend:?}: ＡＬÍＣＥ beside alíce: {r:?}"
        );
        db.drop_db().await;
    }
}

#[tokio::test]
async fn on_mysql_every_text_column_compares_bytes() {
    for backend in backends() {
        if backend != Backend::MySql {
            continue;
        }
        let db = TestDb::create(backend).await;
        let store = db.store().await;
        let conn = store.connection();
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT CONCAT(table_name, '.', column_name, ' ', collation_name) AS c \
                 FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name LIKE 'modal2fa\\_%' \
                 AND table_name <> 'modal2fa_migrations' AND collation_name IS NOT NULL",
            ))
            .await
            .unwrap();
        let columns: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "c").unwrap())
            .collect();
        for key in [
            "modal2fa_users.username_canonical",
            "modal2fa_users.email_canonical",
            "modal2fa_lockout.key",
            "modal2fa_sessions.id_hash",
            "modal2fa_trusted_devices.key_hash",
            "modal2fa_recovery_codes.code_hash",
            "modal2fa_webauthn_credentials.credential_id_hash",
        ] {
            assert!(
                columns.iter().any(|c| c.starts_with(&format!("{key} "))),
                "{key} not among {columns:?}"
            );
        }
        let insensitive: Vec<&String> = columns.iter().filter(|c| !c.ends_with("_bin")).collect();
        assert!(insensitive.is_empty(), "not binary: {insensitive:?}");
        db.drop_db().await;
    }
}

/// Rolls `store`'s database back to just before the collation migration.
async fn before_the_collation_migration(store: &SeaOrmStore) {
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let at = names
        .iter()
        .position(|n| n == "m20261201_000001_binary_collations")
        .expect("the collation migration is registered");
    let steps = u32::try_from(names.len() - at).unwrap();
    Migrator::down(store.connection(), Some(steps))
        .await
        .unwrap();
}

/// A user row as the store wrote it before the migration (canonical = lower case).
async fn insert_old_row(store: &SeaOrmStore, username: &str, email: Option<&str>) {
    users::ActiveModel {
        id: NotSet,
        username: Set(username.to_owned()),
        username_canonical: Set(username.to_lowercase()),
        email: Set(email.map(str::to_owned)),
        email_canonical: Set(email.map(str::to_lowercase)),
        first_name: Set(String::new()),
        last_name: Set(String::new()),
        password_hash: Set(None),
        is_active: Set(true),
        is_staff: Set(false),
        is_superuser: Set(false),
        created_at: Set(0),
        last_login: Set(None),
        password_changed_at: Set(None),
    }
    .insert(store.connection())
    .await
    .unwrap();
}

#[tokio::test]
async fn the_collation_migration_rewrites_canonical_names_and_refuses_two_accounts_with_one_name() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let store = db.store().await;
        before_the_collation_migration(&store).await;
        for (name, email) in [
            ("Alice", Some("Alice@example.com")),
            ("ＢＯＢ", Some("ＢＯＢ@example.com")),
            ("\u{212a}im", None), // the Kelvin sign
            ("\u{130}pek", None), // İ
            ("\u{fb01}ona", Some("\u{fb01}ona@example.com")),
        ] {
            insert_old_row(&store, name, email).await;
        }
        store.migrate().await.unwrap();
        let rows = users::Entity::find().all(store.connection()).await.unwrap();
        assert_eq!(rows.len(), 5, "{backend:?}");
        for row in &rows {
            assert_eq!(
                row.username_canonical,
                Username::parse(&row.username).unwrap().canonical(),
                "{backend:?}: {}",
                row.username
            );
            assert_eq!(
                row.email_canonical,
                row.email
                    .as_deref()
                    .map(|e| Email::parse(e).unwrap().canonical()),
                "{backend:?}: {:?}",
                row.email
            );
        }
        for (typed, stored) in [
            ("bob", "ＢＯＢ"),
            ("fiona", "\u{fb01}ona"),
            ("KIM", "\u{212a}im"),
        ] {
            let found = store
                .find_by_username(&Username::parse(typed).unwrap())
                .await
                .unwrap()
                .map(|u| u.username.to_string());
            assert_eq!(found.as_deref(), Some(stored), "{backend:?}: {typed}");
        }
        let bob = store
            .find_by_email(&Email::parse("bob@example.com").unwrap())
            .await
            .unwrap();
        assert_eq!(bob.len(), 1, "{backend:?}: bob by email");

        // Two accounts that become one name: refused before anything is written.
        before_the_collation_migration(&store).await;
        insert_old_row(&store, "carol", None).await;
        insert_old_row(&store, "ｃａｒｏｌ", None).await;
        let refused = Migrator::up(store.connection(), None).await.unwrap_err();
        assert!(
            refused.to_string().contains("rename one of them"),
            "{backend:?}: {refused}"
        );
        let fullwidth = users::Entity::find()
            .filter(users::Column::Username.eq("ｃａｒｏｌ"))
            .one(store.connection())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fullwidth.username_canonical, "ｃａｒｏｌ", "{backend:?}");
        assert_eq!(
            users::Entity::find()
                .filter(users::Column::Username.eq("Alice"))
                .one(store.connection())
                .await
                .unwrap()
                .unwrap()
                .username_canonical,
            "alice",
            "{backend:?}: the rows already in lower case"
        );
        // Once one of them is renamed, the migration goes through.
        users::Entity::update_many()
            .col_expr(users::Column::Username, Expr::value("carol2"))
            .col_expr(users::Column::UsernameCanonical, Expr::value("carol2"))
            .filter(users::Column::Id.eq(fullwidth.id))
            .exec(store.connection())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        assert!(
            Migrator::get_pending_migrations(store.connection())
                .await
                .unwrap()
                .is_empty(),
            "{backend:?}"
        );
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_row_the_model_cannot_represent_is_unreadable_naming_the_row_and_signs_nobody_in() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let store = db.store().await;
        // A host wrote an address with a line break into the table.
        insert_old_row(&store, "mallory", Some("mallory@example.com\nBcc: x@y")).await;
        let id = users::Entity::find()
            .one(store.connection())
            .await
            .unwrap()
            .unwrap()
            .id;
        match store.find_by_id(modal2fa_core::UserId(id)).await {
            Err(modal2fa_core::PortError::Unreadable { row, problem }) => {
                assert_eq!(row, format!("modal2fa_users id={id}"), "{backend:?}");
                assert_eq!(problem.field, "email", "{backend:?}");
            }
            other => panic!("{backend:?}: expected Unreadable, got {other:?}"),
        }
        let auth = services(store.clone());
        let r = sign_in(&auth, "mallory", PASSWORD, 1).await;
        assert_eq!(
            r.outcome,
            Outcome::Refused(Refusal::InvalidCredentials),
            "{backend:?}"
        );
        db.drop_db().await;
    }
}
