//! Seeding a fresh SQLite database directly through the core services (before the server
//! starts on it): users without 2FA, users with TOTP, users with a trusted device, and
//! sessions for the admin's sessions list.

use std::path::Path;
use std::sync::Arc;

use data_encoding::HEXLOWER;
use modal2fa_core::machine::{LoginState, SignedIn};
use modal2fa_core::model::{AuthMethod, RequestContext, UserId};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::ports::{HashJob, HashOutput, HashPool, PortResult, SecretGenerator};
use modal2fa_core::services::NewAccount;
use modal2fa_core::system::{OsRandom, SystemClock};
use modal2fa_core::totp::{self, TotpParams};
use modal2fa_core::{DefaultPolicy, Modal2fa, Ports, ServerSecret, Settings};
use modal2fa_sea_orm::SeaOrmStore;
use modal2fa_sea_orm::sea_orm::{EntityTrait, TransactionTrait};

/// The password of every seeded user.
pub const PASSWORD: &str = "correct horse battery";

fn settings(hashing: PasswordHashing) -> Settings {
    Settings {
        password_hashing: hashing,
        ..Settings::default()
    }
}

/// The core services on the database and secret in `dir` (both created when absent, the
/// database migrated), hashing with `hashing`; and the store beneath them.
pub async fn services(dir: &Path, hashing: PasswordHashing) -> (Modal2fa, SeaOrmStore) {
    let secret_path = dir.join("secret");
    if !secret_path.exists() {
        let mut s = [0u8; 32];
        OsRandom.fill(&mut s);
        std::fs::write(&secret_path, HEXLOWER.encode(&s)).unwrap();
    }
    let bytes = HEXLOWER
        .decode(
            std::fs::read_to_string(&secret_path)
                .unwrap()
                .trim()
                .as_bytes(),
        )
        .unwrap();
    let store = SeaOrmStore::connect(&format!("sqlite://{}/db.sqlite?mode=rwc", dir.display()), 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let s = Arc::new(store.clone());
    let ports = Ports {
        users: s.clone(),
        factors: s.clone(),
        trusted_devices: s.clone(),
        lockout: s.clone(),
        sessions: s.clone(),
        outbox: s.clone(),
        notifier: Arc::new(Quiet),
        audit: s,
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
        hash_pool: Arc::new(Inline),
        delay: Arc::new(TokioDelay),
    };
    (
        Modal2fa::new(
            ports,
            Arc::new(DefaultPolicy),
            settings(hashing),
            &ServerSecret::new(bytes).unwrap(),
        ),
        store,
    )
}

/// Seeding waits on tokio's timer (it signs in nobody, so it never waits).
struct TokioDelay;

#[async_trait::async_trait]
impl modal2fa_core::ports::Delay for TokioDelay {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Seeding sends no mail.
struct Quiet;

/// Seeding is a batch job on a runtime of its own, serving nobody: its hashes run inline.
struct Inline;

#[async_trait::async_trait]
impl HashPool for Inline {
    async fn run(&self, job: HashJob) -> PortResult<HashOutput> {
        Ok(job())
    }
}

#[async_trait::async_trait]
impl modal2fa_core::ports::Notifier for Quiet {
    async fn send(&self, _n: modal2fa_core::ports::Notification) -> modal2fa_core::PortResult<()> {
        Ok(())
    }
}

/// Creates the user `name` with [`PASSWORD`] and no 2FA.
pub async fn create(auth: &Modal2fa, name: &str) -> UserId {
    auth.account
        .create_user(NewAccount {
            username: name.into(),
            email: None,
            first_name: String::new(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
            superuser: false,
        })
        .await
        .unwrap()
        .id
}

fn two_factor_state(id: UserId) -> LoginState {
    LoginState::SignedIn(SignedIn {
        user_id: id,
        method: AuthMethod::TwoFactor,
        at: SystemClock.now_utc(),
        // As right after the second factor, when "trust this device?" is offered.
        trust_offer: true,
        passkey: None,
    })
}

/// The system clock's current time.
pub trait NowUtc {
    /// Now, in UTC.
    fn now_utc(&self) -> time::OffsetDateTime;
}

impl NowUtc for SystemClock {
    fn now_utc(&self) -> time::OffsetDateTime {
        modal2fa_core::ports::Clock::now(self)
    }
}

/// A TOTP user: its secret.
pub async fn totp_user(auth: &Modal2fa, name: &str) -> Vec<u8> {
    let id = create(auth, name).await;
    let state = two_factor_state(id);
    let e = auth.factors.begin_totp(&state).await.unwrap();
    let secret = totp::decode_secret(e.secret.expose()).unwrap();
    let ctx = RequestContext::new("127.0.0.1".parse().unwrap(), "seed", "/");
    // Confirm with a code of a past step so every current code stays usable.
    let past = totp::code_for_step(
        &secret,
        &TotpParams::default(),
        totp::step_at(SystemClock.now_utc(), &TotpParams::default()) - 1,
    );
    auth.factors
        .confirm_totp(&state, e.token.expose(), &past, &ctx)
        .await
        .unwrap();
    secret
}

/// A user `name` who trusts a device: the device cookie's value.
pub async fn device_user(auth: &Modal2fa, name: &str) -> String {
    let id = create(auth, name).await;
    let ctx = RequestContext::new("127.0.0.1".parse().unwrap(), "seed", "/");
    let cookie = auth
        .trusted_devices
        .trust_this_device(&two_factor_state(id), "bench", None, &ctx)
        .await
        .unwrap()
        .cookie;
    cookie.expose().to_owned()
}

/// The users of the PBKDF2 phase.
pub struct Seeded {
    /// `(username, TOTP secret)`, each to sign in once.
    pub totp: Vec<(String, Vec<u8>)>,
    /// `(username, trusted-device cookie)`.
    pub devices: Vec<(String, String)>,
}

/// Seeds the PBKDF2 phase's users: `plain0..400` without 2FA, `totp0..5000` with TOTP,
/// `device0..200` with a trusted device.
pub async fn pbkdf2_users(auth: &Modal2fa) -> Seeded {
    for i in 0..400 {
        create(auth, &format!("plain{i}")).await;
    }
    let mut totp = Vec::new();
    for i in 0..5000 {
        totp.push((
            format!("totp{i}"),
            totp_user(auth, &format!("totp{i}")).await,
        ));
    }
    let mut devices = Vec::new();
    for i in 0..200 {
        let cookie = device_user(auth, &format!("device{i}")).await;
        devices.push((format!("device{i}"), cookie));
    }
    Seeded { totp, devices }
}

/// Inserts `n` live sessions of 500 users, in chunks of 1 000 rows in one transaction.
pub async fn sessions(store: &SeaOrmStore, n: usize) {
    use modal2fa_sea_orm::entities::sessions;
    use modal2fa_sea_orm::sea_orm::Set;
    let now = SystemClock.now_utc();
    let txn = store.connection().begin().await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let rows = chunk.iter().map(|i| sessions::ActiveModel {
            id_hash: Set(format!("{i:064x}")),
            user_id: Set(Some((*i % 500) as i64 + 1)),
            method: Set(Some("2fa".into())),
            passkey_id: Set(None),
            ip: Set(Some("192.0.2.1".into())),
            user_agent: Set("Firefox".into()),
            created_at: Set(modal2fa_sea_orm::to_micros(now) - *i as i64),
            last_seen_at: Set(modal2fa_sea_orm::to_micros(now)),
            expires_at: Set(modal2fa_sea_orm::to_micros(now + time::Duration::hours(1))),
            data: Set("{}".into()),
        });
        sessions::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
}
