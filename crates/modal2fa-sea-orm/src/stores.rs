//! The port implementations.

use std::net::IpAddr;

use async_trait::async_trait;
use data_encoding::HEXLOWER;
use modal2fa_core::crypto::sha256_hex;
use modal2fa_core::lockout::{self, LockoutRule};
use modal2fa_core::model::{
    AuditEvent, AuthMethod, Email, LockoutEntry, LockoutKey, NewUser, NewWebAuthnCredential, Page,
    SessionRecord, TotpDevice, TrustedDevice, User, UserId, Username, WebAuthnCredential,
};
use modal2fa_core::ports::{
    AuditLog, FactorStore, LockoutStore, PortError, PortResult, SessionStore, TrustedDeviceStore,
    UserStore,
};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, NotSet, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use time::OffsetDateTime;

use crate::entities::{
    audit_events, lockout as lockout_rows, recovery_codes, sessions, totp_devices, trusted_devices,
    users, webauthn_credentials,
};
use crate::{SeaOrmStore, from_micros, in_txn, map_err, to_micros, truncate};

fn corrupt(what: &str) -> PortError {
    PortError::Unexpected(format!("stored {what} is not valid").into())
}

fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

fn unhex(s: &str) -> PortResult<Vec<u8>> {
    HEXLOWER.decode(s.as_bytes()).map_err(|_| corrupt("hash"))
}

fn ip(s: Option<String>) -> PortResult<Option<IpAddr>> {
    s.map(|v| v.parse().map_err(|_| corrupt("ip address")))
        .transpose()
}

// ---------------------------------------------------------------- users

fn user_from(m: users::Model) -> PortResult<User> {
    Ok(User {
        id: UserId(m.id),
        username: Username::parse(&m.username).map_err(|_| corrupt("username"))?,
        email: m
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|_| corrupt("email"))?,
        first_name: m.first_name,
        last_name: m.last_name,
        password_hash: m.password_hash,
        is_active: m.is_active,
        is_staff: m.is_staff,
        is_superuser: m.is_superuser,
        created_at: from_micros(m.created_at),
        last_login: m.last_login.map(from_micros),
        password_changed_at: m.password_changed_at.map(from_micros),
    })
}

#[async_trait]
impl UserStore for SeaOrmStore {
    async fn find_by_id(&self, id: UserId) -> PortResult<Option<User>> {
        users::Entity::find_by_id(id.0)
            .one(&self.q)
            .await
            .map_err(map_err)?
            .map(user_from)
            .transpose()
    }

    async fn find_by_username(&self, username: &Username) -> PortResult<Option<User>> {
        users::Entity::find()
            .filter(users::Column::UsernameCanonical.eq(username.canonical()))
            .one(&self.q)
            .await
            .map_err(map_err)?
            .map(user_from)
            .transpose()
    }

    async fn find_by_email(&self, email: &Email) -> PortResult<Vec<User>> {
        users::Entity::find()
            .filter(users::Column::EmailCanonical.eq(email.as_str().to_lowercase()))
            .order_by_asc(users::Column::Id)
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(user_from)
            .collect()
    }

    async fn create(&self, u: NewUser) -> PortResult<User> {
        let m = users::ActiveModel {
            id: NotSet,
            username: Set(u.username.to_string()),
            username_canonical: Set(u.username.canonical()),
            email_canonical: Set(u.email.as_ref().map(|e| e.as_str().to_lowercase())),
            email: Set(u.email.map(String::from)),
            first_name: Set(u.first_name),
            last_name: Set(u.last_name),
            password_hash: Set(u.password_hash),
            is_active: Set(true),
            is_staff: Set(u.is_staff),
            is_superuser: Set(u.is_superuser),
            created_at: Set(to_micros(u.created_at)),
            last_login: Set(None),
            password_changed_at: Set(u.password_changed_at.map(to_micros)),
        }
        .insert(&self.q)
        .await
        .map_err(map_err)?;
        user_from(m)
    }

    async fn update(&self, u: &User) -> PortResult<()> {
        let res = users::Entity::update_many()
            .col_expr(users::Column::Username, Expr::value(u.username.to_string()))
            .col_expr(
                users::Column::UsernameCanonical,
                Expr::value(u.username.canonical()),
            )
            .col_expr(
                users::Column::Email,
                Expr::value(u.email.as_ref().map(|e| e.to_string())),
            )
            .col_expr(
                users::Column::EmailCanonical,
                Expr::value(u.email.as_ref().map(|e| e.as_str().to_lowercase())),
            )
            .col_expr(users::Column::FirstName, Expr::value(u.first_name.clone()))
            .col_expr(users::Column::LastName, Expr::value(u.last_name.clone()))
            .col_expr(
                users::Column::PasswordHash,
                Expr::value(u.password_hash.clone()),
            )
            .col_expr(users::Column::IsActive, Expr::value(u.is_active))
            .col_expr(users::Column::IsStaff, Expr::value(u.is_staff))
            .col_expr(users::Column::IsSuperuser, Expr::value(u.is_superuser))
            .col_expr(
                users::Column::CreatedAt,
                Expr::value(to_micros(u.created_at)),
            )
            .col_expr(
                users::Column::LastLogin,
                Expr::value(u.last_login.map(to_micros)),
            )
            .col_expr(
                users::Column::PasswordChangedAt,
                Expr::value(u.password_changed_at.map(to_micros)),
            )
            .filter(users::Column::Id.eq(u.id.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        if res.rows_affected == 0
            && users::Entity::find_by_id(u.id.0)
                .one(&self.q)
                .await
                .map_err(map_err)?
                .is_none()
        {
            return Err(PortError::NotFound);
        }
        Ok(())
    }

    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> PortResult<()> {
        users::Entity::update_many()
            .col_expr(users::Column::LastLogin, Expr::value(to_micros(at)))
            .filter(users::Column::Id.eq(id.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn replace_password(
        &self,
        id: UserId,
        expected: Option<&str>,
        new_hash: &str,
        at: OffsetDateTime,
    ) -> PortResult<bool> {
        let current = match expected {
            Some(h) => users::Column::PasswordHash.eq(h),
            None => users::Column::PasswordHash.is_null(),
        };
        let res = users::Entity::update_many()
            .col_expr(
                users::Column::PasswordHash,
                Expr::value(new_hash.to_owned()),
            )
            .col_expr(users::Column::PasswordChangedAt, Expr::value(to_micros(at)))
            .filter(users::Column::Id.eq(id.0))
            .filter(current)
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn list(&self, page: Page) -> PortResult<Vec<User>> {
        users::Entity::find()
            .order_by_asc(users::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(user_from)
            .collect()
    }

    async fn count(&self) -> PortResult<u64> {
        users::Entity::find().count(&self.q).await.map_err(map_err)
    }
}

// ---------------------------------------------------------------- factors

fn totp_from(m: totp_devices::Model) -> TotpDevice {
    TotpDevice {
        id: m.id,
        user_id: UserId(m.user_id),
        encrypted_secret: m.encrypted_secret,
        confirmed: m.confirmed,
        last_used_step: m.last_used_step,
        created_at: from_micros(m.created_at),
    }
}

fn webauthn_from(m: webauthn_credentials::Model) -> PortResult<WebAuthnCredential> {
    Ok(WebAuthnCredential {
        id: m.id,
        user_id: UserId(m.user_id),
        name: m.name,
        credential_id: m.credential_id,
        credential: m.credential,
        sign_count: u32::try_from(m.sign_count).map_err(|_| corrupt("sign count"))?,
        transports: serde_json::from_str(&m.transports).map_err(|_| corrupt("transports"))?,
        backup_eligible: m.backup_eligible,
        backup_state: m.backup_state,
        created_at: from_micros(m.created_at),
        last_used_at: m.last_used_at.map(from_micros),
    })
}

#[async_trait]
impl FactorStore for SeaOrmStore {
    async fn totp_devices(&self, user: UserId) -> PortResult<Vec<TotpDevice>> {
        Ok(totp_devices::Entity::find()
            .filter(totp_devices::Column::UserId.eq(user.0))
            .order_by_asc(totp_devices::Column::Id)
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(totp_from)
            .collect())
    }

    async fn add_totp(
        &self,
        user: UserId,
        encrypted_secret: Vec<u8>,
        at: OffsetDateTime,
    ) -> PortResult<TotpDevice> {
        let m = totp_devices::ActiveModel {
            id: NotSet,
            user_id: Set(user.0),
            encrypted_secret: Set(encrypted_secret),
            confirmed: Set(false),
            last_used_step: Set(None),
            created_at: Set(to_micros(at)),
        }
        .insert(&self.q)
        .await
        .map_err(map_err)?;
        Ok(totp_from(m))
    }

    async fn confirm_totp(&self, device: i64, step: i64) -> PortResult<bool> {
        let txn = self.begin().await?;
        let confirmed = in_txn!(txn, |c| {
            let res = totp_devices::Entity::update_many()
                .col_expr(totp_devices::Column::Confirmed, Expr::value(true))
                .col_expr(totp_devices::Column::LastUsedStep, Expr::value(step))
                .filter(totp_devices::Column::Id.eq(device))
                .filter(totp_devices::Column::Confirmed.eq(false))
                .exec(c)
                .await
                .map_err(map_err)?;
            if res.rows_affected == 1 {
                let owner = totp_devices::Entity::find_by_id(device)
                    .one(c)
                    .await
                    .map_err(map_err)?
                    .ok_or(PortError::NotFound)?;
                totp_devices::Entity::delete_many()
                    .filter(totp_devices::Column::UserId.eq(owner.user_id))
                    .filter(totp_devices::Column::Id.ne(device))
                    .exec(c)
                    .await
                    .map_err(map_err)?;
            }
            res.rows_affected == 1
        });
        // Nothing was written when the device was not confirmable: committing is a no-op.
        txn.commit().await?;
        Ok(confirmed)
    }

    async fn advance_totp_step(&self, device: i64, step: i64) -> PortResult<bool> {
        let res = totp_devices::Entity::update_many()
            .col_expr(totp_devices::Column::LastUsedStep, Expr::value(step))
            .filter(totp_devices::Column::Id.eq(device))
            .filter(
                Condition::any()
                    .add(totp_devices::Column::LastUsedStep.is_null())
                    .add(totp_devices::Column::LastUsedStep.lt(step)),
            )
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete_totp(&self, user: UserId) -> PortResult<u64> {
        Ok(totp_devices::Entity::delete_many()
            .filter(totp_devices::Column::UserId.eq(user.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn webauthn_credentials(&self, user: UserId) -> PortResult<Vec<WebAuthnCredential>> {
        webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .order_by_asc(webauthn_credentials::Column::Id)
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(webauthn_from)
            .collect()
    }

    async fn find_webauthn(&self, credential_id: &[u8]) -> PortResult<Option<WebAuthnCredential>> {
        webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::CredentialIdHash.eq(sha256_hex(credential_id)))
            .one(&self.q)
            .await
            .map_err(map_err)?
            .map(webauthn_from)
            .transpose()
    }

    async fn add_webauthn(&self, c: NewWebAuthnCredential) -> PortResult<WebAuthnCredential> {
        let m = webauthn_credentials::ActiveModel {
            id: NotSet,
            user_id: Set(c.user_id.0),
            name: Set(c.name),
            credential_id_hash: Set(sha256_hex(&c.credential_id)),
            credential_id: Set(c.credential_id),
            credential: Set(c.credential),
            sign_count: Set(i64::from(c.sign_count)),
            transports: Set(serde_json::to_string(&c.transports)
                .map_err(|e| PortError::Unexpected(Box::new(e)))?),
            backup_eligible: Set(c.backup_eligible),
            backup_state: Set(c.backup_state),
            created_at: Set(to_micros(c.created_at)),
            last_used_at: Set(None),
        }
        .insert(&self.q)
        .await
        .map_err(map_err)?;
        webauthn_from(m)
    }

    async fn update_webauthn_use(
        &self,
        id: i64,
        sign_count: u32,
        backup_state: bool,
        credential: String,
        at: OffsetDateTime,
    ) -> PortResult<bool> {
        let res = webauthn_credentials::Entity::update_many()
            .col_expr(
                webauthn_credentials::Column::SignCount,
                Expr::value(i64::from(sign_count)),
            )
            .col_expr(
                webauthn_credentials::Column::BackupState,
                Expr::value(backup_state),
            )
            .col_expr(
                webauthn_credentials::Column::Credential,
                Expr::value(credential),
            )
            .col_expr(
                webauthn_credentials::Column::LastUsedAt,
                Expr::value(to_micros(at)),
            )
            .filter(webauthn_credentials::Column::Id.eq(id))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn rename_webauthn(&self, user: UserId, id: i64, name: &str) -> PortResult<bool> {
        let exists = webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .count(&self.q)
            .await
            .map_err(map_err)?;
        if exists == 0 {
            return Ok(false);
        }
        webauthn_credentials::Entity::update_many()
            .col_expr(
                webauthn_credentials::Column::Name,
                Expr::value(name.to_owned()),
            )
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(true)
    }

    async fn delete_webauthn(&self, user: UserId, id: i64) -> PortResult<bool> {
        let res = webauthn_credentials::Entity::delete_many()
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete_all_webauthn(&self, user: UserId) -> PortResult<u64> {
        Ok(webauthn_credentials::Entity::delete_many()
            .filter(webauthn_credentials::Column::UserId.eq(user.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: Vec<Vec<u8>>,
        at: OffsetDateTime,
    ) -> PortResult<()> {
        let txn = self.begin().await?;
        in_txn!(txn, |c| {
            recovery_codes::Entity::delete_many()
                .filter(recovery_codes::Column::UserId.eq(user.0))
                .exec(c)
                .await
                .map_err(map_err)?;
            if !hashes.is_empty() {
                let rows = hashes.iter().map(|h| recovery_codes::ActiveModel {
                    id: NotSet,
                    user_id: Set(user.0),
                    code_hash: Set(hex(h)),
                    created_at: Set(to_micros(at)),
                });
                recovery_codes::Entity::insert_many(rows)
                    .exec(c)
                    .await
                    .map_err(map_err)?;
            }
        });
        txn.commit().await
    }

    async fn consume_recovery_code(&self, user: UserId, hash: &[u8]) -> PortResult<bool> {
        let Some(row) = recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(user.0))
            .filter(recovery_codes::Column::CodeHash.eq(hex(hash)))
            .one(&self.q)
            .await
            .map_err(map_err)?
        else {
            return Ok(false);
        };
        // Deleting by primary key: of concurrent consumers exactly one deletes the row.
        let res = recovery_codes::Entity::delete_by_id(row.id)
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn count_recovery_codes(&self, user: UserId) -> PortResult<u64> {
        recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(user.0))
            .count(&self.q)
            .await
            .map_err(map_err)
    }
}

// ---------------------------------------------------------------- trusted devices

fn device_from(m: trusted_devices::Model) -> PortResult<TrustedDevice> {
    Ok(TrustedDevice {
        id: m.id,
        user_id: UserId(m.user_id),
        name: m.name,
        key_hash: unhex(&m.key_hash)?,
        previous_key_hash: m.previous_key_hash.as_deref().map(unhex).transpose()?,
        created_at: from_micros(m.created_at),
        last_used_at: from_micros(m.last_used_at),
        last_ip: ip(m.last_ip)?,
        user_agent: m.user_agent,
    })
}

#[async_trait]
impl TrustedDeviceStore for SeaOrmStore {
    async fn list(&self, user: UserId) -> PortResult<Vec<TrustedDevice>> {
        trusted_devices::Entity::find()
            .filter(trusted_devices::Column::UserId.eq(user.0))
            .order_by_desc(trusted_devices::Column::LastUsedAt)
            .order_by_desc(trusted_devices::Column::CreatedAt)
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(device_from)
            .collect()
    }

    async fn find(&self, id: &str) -> PortResult<Option<TrustedDevice>> {
        trusted_devices::Entity::find_by_id(id.to_owned())
            .one(&self.q)
            .await
            .map_err(map_err)?
            .map(device_from)
            .transpose()
    }

    async fn insert(&self, d: TrustedDevice) -> PortResult<()> {
        trusted_devices::Entity::insert(trusted_devices::ActiveModel {
            id: Set(d.id),
            user_id: Set(d.user_id.0),
            name: Set(d.name),
            key_hash: Set(hex(&d.key_hash)),
            previous_key_hash: Set(d.previous_key_hash.as_deref().map(hex)),
            created_at: Set(to_micros(d.created_at)),
            last_used_at: Set(to_micros(d.last_used_at)),
            last_ip: Set(d.last_ip.map(|i| i.to_string())),
            user_agent: Set(d.user_agent),
        })
        .exec_without_returning(&self.q)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn rotate(
        &self,
        id: &str,
        expected_hash: &[u8],
        new_hash: Vec<u8>,
        at: OffsetDateTime,
        ip: Option<IpAddr>,
        user_agent: &str,
    ) -> PortResult<bool> {
        let res = trusted_devices::Entity::update_many()
            .col_expr(
                trusted_devices::Column::KeyHash,
                Expr::value(hex(&new_hash)),
            )
            .col_expr(
                trusted_devices::Column::PreviousKeyHash,
                Expr::value(hex(expected_hash)),
            )
            .col_expr(
                trusted_devices::Column::LastUsedAt,
                Expr::value(to_micros(at)),
            )
            .col_expr(
                trusted_devices::Column::LastIp,
                Expr::value(ip.map(|i| i.to_string())),
            )
            .col_expr(
                trusted_devices::Column::UserAgent,
                Expr::value(user_agent.to_owned()),
            )
            .filter(trusted_devices::Column::Id.eq(id))
            .filter(trusted_devices::Column::KeyHash.eq(hex(expected_hash)))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete(&self, user: UserId, id: &str) -> PortResult<bool> {
        let res = trusted_devices::Entity::delete_many()
            .filter(trusted_devices::Column::Id.eq(id))
            .filter(trusted_devices::Column::UserId.eq(user.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete_all(&self, user: UserId) -> PortResult<u64> {
        Ok(trusted_devices::Entity::delete_many()
            .filter(trusted_devices::Column::UserId.eq(user.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?
            .rows_affected)
    }
}

// ---------------------------------------------------------------- lockout

fn entry_from(m: lockout_rows::Model) -> PortResult<LockoutEntry> {
    Ok(LockoutEntry {
        key: LockoutKey::from_storage_string(&m.key).map_err(|_| corrupt("lockout key"))?,
        failures: u32::try_from(m.failures).map_err(|_| corrupt("failure count"))?,
        lock_count: u32::try_from(m.lock_count).map_err(|_| corrupt("lock count"))?,
        last_failure_at: from_micros(m.last_failure_at),
        locked_until: m.locked_until.map(from_micros),
    })
}

fn clamp(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// How often a lockout compare-and-set is retried before giving up.
const MAX_CAS_ATTEMPTS: usize = 10_000;

impl SeaOrmStore {
    /// Inserts the counter `next` for a key with none; `false` if the key has one.
    async fn insert_counter(&self, id: &str, next: &LockoutEntry) -> PortResult<bool> {
        let insert = lockout_rows::Entity::insert(lockout_rows::ActiveModel {
            key: Set(id.to_owned()),
            failures: Set(clamp(next.failures)),
            lock_count: Set(clamp(next.lock_count)),
            last_failure_at: Set(to_micros(next.last_failure_at)),
            locked_until: Set(next.locked_until.map(to_micros)),
            version: Set(1),
        })
        .exec_without_returning(&self.q)
        .await;
        match insert.map_err(map_err) {
            Ok(_) => Ok(true),
            Err(PortError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl LockoutStore for SeaOrmStore {
    async fn get(&self, key: &LockoutKey) -> PortResult<Option<LockoutEntry>> {
        lockout_rows::Entity::find_by_id(key.as_storage_string())
            .one(&self.q)
            .await
            .map_err(map_err)?
            .map(entry_from)
            .transpose()
    }

    async fn get_many(&self, keys: &[&LockoutKey]) -> PortResult<Vec<LockoutEntry>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        lockout_rows::Entity::find()
            .filter(lockout_rows::Column::Key.is_in(keys.iter().map(|k| k.as_storage_string())))
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(entry_from)
            .collect()
    }

    async fn record_first_failure(
        &self,
        key: &LockoutKey,
        now: OffsetDateTime,
        rule: LockoutRule,
    ) -> PortResult<Option<LockoutEntry>> {
        let next = lockout::apply_failure(None, key, truncate(now), rule);
        let inserted = self.insert_counter(&key.as_storage_string(), &next).await?;
        Ok(inserted.then_some(next))
    }

    async fn record_failure(
        &self,
        key: &LockoutKey,
        now: OffsetDateTime,
        rule: LockoutRule,
    ) -> PortResult<LockoutEntry> {
        let id = key.as_storage_string();
        let now = truncate(now);
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let row = lockout_rows::Entity::find_by_id(id.clone())
                .one(&self.q)
                .await
                .map_err(map_err)?;
            let previous = row.clone().map(entry_from).transpose()?;
            let next = lockout::apply_failure(previous.as_ref(), key, now, rule);
            let stored = match row {
                None => self.insert_counter(&id, &next).await?,
                Some(r) => {
                    let res = lockout_rows::Entity::update_many()
                        .col_expr(
                            lockout_rows::Column::Failures,
                            Expr::value(clamp(next.failures)),
                        )
                        .col_expr(
                            lockout_rows::Column::LockCount,
                            Expr::value(clamp(next.lock_count)),
                        )
                        .col_expr(
                            lockout_rows::Column::LastFailureAt,
                            Expr::value(to_micros(next.last_failure_at)),
                        )
                        .col_expr(
                            lockout_rows::Column::LockedUntil,
                            Expr::value(next.locked_until.map(to_micros)),
                        )
                        .col_expr(lockout_rows::Column::Version, Expr::value(r.version + 1))
                        .filter(lockout_rows::Column::Key.eq(id.clone()))
                        .filter(lockout_rows::Column::Version.eq(r.version))
                        .exec(&self.q)
                        .await
                        .map_err(map_err)?;
                    res.rows_affected == 1
                }
            };
            if stored {
                return Ok(next);
            }
            if attempt % 8 == 7 {
                // Let the winners finish before trying again.
                std::thread::yield_now();
            }
        }
        Err(PortError::Unavailable(
            format!("lockout counter for {id} too contended").into(),
        ))
    }

    async fn clear(&self, key: &LockoutKey) -> PortResult<bool> {
        let res = lockout_rows::Entity::delete_by_id(key.as_storage_string())
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn list(&self, page: Page) -> PortResult<Vec<LockoutEntry>> {
        lockout_rows::Entity::find()
            .order_by_desc(lockout_rows::Column::LastFailureAt)
            .order_by_asc(lockout_rows::Column::Key)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(entry_from)
            .collect()
    }

    async fn purge_expired(&self, cutoff: OffsetDateTime) -> PortResult<u64> {
        let cutoff = to_micros(cutoff);
        let res = lockout_rows::Entity::delete_many()
            .filter(lockout_rows::Column::LastFailureAt.lt(cutoff))
            .filter(
                Condition::any()
                    .add(lockout_rows::Column::LockedUntil.is_null())
                    .add(lockout_rows::Column::LockedUntil.lt(cutoff)),
            )
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected)
    }
}

// ---------------------------------------------------------------- sessions

fn session_from(m: sessions::Model) -> PortResult<SessionRecord> {
    Ok(SessionRecord {
        id_hash: m.id_hash,
        user_id: m.user_id.map(UserId),
        method: m
            .method
            .as_deref()
            .map(str::parse::<AuthMethod>)
            .transpose()
            .map_err(|_| corrupt("method"))?,
        ip: ip(m.ip)?,
        user_agent: m.user_agent,
        created_at: from_micros(m.created_at),
        last_seen_at: from_micros(m.last_seen_at),
        expires_at: from_micros(m.expires_at),
        data: m.data,
    })
}

fn session_row(r: &SessionRecord) -> sessions::ActiveModel {
    sessions::ActiveModel {
        id_hash: Set(r.id_hash.clone()),
        user_id: Set(r.user_id.map(|u| u.0)),
        method: Set(r.method.map(|m| m.as_str().to_owned())),
        ip: Set(r.ip.map(|i| i.to_string())),
        user_agent: Set(r.user_agent.clone()),
        created_at: Set(to_micros(r.created_at)),
        last_seen_at: Set(to_micros(r.last_seen_at)),
        expires_at: Set(to_micros(r.expires_at)),
        data: Set(r.data.clone()),
    }
}

#[async_trait]
impl SessionStore for SeaOrmStore {
    async fn load(&self, id_hash: &str) -> PortResult<Option<SessionRecord>> {
        sessions::Entity::find_by_id(id_hash.to_owned())
            .one(&self.q)
            .await
            .map_err(map_err)?
            .map(session_from)
            .transpose()
    }

    async fn save(&self, record: &SessionRecord) -> PortResult<()> {
        use sessions::Column as C;
        sessions::Entity::insert(session_row(record))
            .on_conflict(
                OnConflict::column(C::IdHash)
                    .update_columns([
                        C::UserId,
                        C::Method,
                        C::Ip,
                        C::UserAgent,
                        C::CreatedAt,
                        C::LastSeenAt,
                        C::ExpiresAt,
                        C::Data,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.q)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn renew(&self, old_hash: &str, record: &SessionRecord) -> PortResult<()> {
        // One statement: the row takes its new id and contents in place. Only a session
        // that was never stored (or has just been deleted) needs an insert.
        let mut row = session_row(record);
        row.id_hash = Set(record.id_hash.clone());
        let res = sessions::Entity::update_many()
            .set(row)
            .filter(sessions::Column::IdHash.eq(old_hash))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        if res.rows_affected == 0 {
            sessions::Entity::insert(session_row(record))
                .exec_without_returning(&self.q)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn replace(&self, record: &SessionRecord) -> PortResult<bool> {
        let res = sessions::Entity::update_many()
            .set(session_row(record))
            .filter(sessions::Column::IdHash.eq(record.id_hash.as_str()))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn touch(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
        idle_expiry: OffsetDateTime,
        absolute_timeout: time::Duration,
    ) -> PortResult<bool> {
        use sessions::Column as C;
        let idle = to_micros(idle_expiry);
        let absolute =
            (absolute_timeout.whole_microseconds()).clamp(0, i128::from(i64::MAX / 2)) as i64;
        let capped = Expr::col(C::CreatedAt).add(absolute);
        // expires_at = min(idle_expiry, created_at + absolute_timeout), in one statement.
        let expiry = Expr::case(capped.clone().lt(idle), capped).finally(idle);
        let res = sessions::Entity::update_many()
            .col_expr(C::LastSeenAt, Expr::value(to_micros(now)))
            .col_expr(C::ExpiresAt, expiry.into())
            .filter(C::IdHash.eq(id_hash))
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn delete(&self, id_hash: &str) -> PortResult<bool> {
        let res = sessions::Entity::delete_by_id(id_hash.to_owned())
            .exec(&self.q)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn list_active(&self, now: OffsetDateTime, page: Page) -> PortResult<Vec<SessionRecord>> {
        sessions::Entity::find()
            .filter(sessions::Column::UserId.is_not_null())
            .filter(sessions::Column::ExpiresAt.gt(to_micros(now)))
            .order_by_desc(sessions::Column::CreatedAt)
            .order_by_desc(sessions::Column::IdHash)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(session_from)
            .collect()
    }

    async fn delete_for_user(&self, user: UserId) -> PortResult<u64> {
        Ok(sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user.0))
            .exec(&self.q)
            .await
            .map_err(map_err)?
            .rows_affected)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> PortResult<u64> {
        Ok(sessions::Entity::delete_many()
            .filter(sessions::Column::ExpiresAt.lte(to_micros(now)))
            .exec(&self.q)
            .await
            .map_err(map_err)?
            .rows_affected)
    }
}

// ---------------------------------------------------------------- audit

fn kind_name(kind: modal2fa_core::model::AuditKind) -> PortResult<String> {
    match serde_json::to_value(kind).map_err(|e| PortError::Unexpected(Box::new(e)))? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(corrupt("audit kind")),
    }
}

fn audit_from(m: audit_events::Model) -> PortResult<AuditEvent> {
    Ok(AuditEvent {
        at: from_micros(m.at),
        kind: serde_json::from_value(serde_json::Value::String(m.kind))
            .map_err(|_| corrupt("audit kind"))?,
        user_id: m.user_id.map(UserId),
        username: m.username,
        ip: ip(m.ip)?,
        user_agent: m.user_agent,
        detail: m.detail,
    })
}

#[async_trait]
impl AuditLog for SeaOrmStore {
    async fn record(&self, e: AuditEvent) -> PortResult<()> {
        audit_events::Entity::insert(audit_events::ActiveModel {
            id: NotSet,
            at: Set(to_micros(e.at)),
            kind: Set(kind_name(e.kind)?),
            user_id: Set(e.user_id.map(|u| u.0)),
            username: Set(e.username),
            ip: Set(e.ip.map(|i| i.to_string())),
            user_agent: Set(e.user_agent),
            detail: Set(e.detail),
        })
        .exec_without_returning(&self.q)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list(&self, page: Page) -> PortResult<Vec<AuditEvent>> {
        audit_events::Entity::find()
            .order_by_desc(audit_events::Column::At)
            .order_by_desc(audit_events::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.q)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(audit_from)
            .collect()
    }
}
