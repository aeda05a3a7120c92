//! In-memory implementations of every store port. Each holds one mutex, which makes every
//! compare-and-set trivially atomic within one process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use async_trait::async_trait;
use modal2fa_core::lockout::{self, LockoutEntry, LockoutKey, LockoutRule};
use modal2fa_core::model::{
    AuditEvent, Email, NewUser, NewWebAuthnCredential, Page, SessionRecord, TotpDevice,
    TrustedDevice, User, UserId, Username, WebAuthnCredential,
};
use modal2fa_core::ports::{
    AuditLog, ConflictKind, FactorStore, LockoutStore, Notification, Notifier, PortError,
    PortResult, SessionStore, TrustedDeviceStore, UserStore,
};
use time::OffsetDateTime;

fn page<T: Clone>(items: &[T], page: Page) -> Vec<T> {
    items
        .iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .cloned()
        .collect()
}

/// Users in memory.
#[derive(Debug, Default)]
pub struct MemoryUsers(Mutex<(i64, Vec<User>)>);

#[async_trait]
impl UserStore for MemoryUsers {
    async fn find_by_id(&self, id: UserId) -> PortResult<Option<User>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .1
            .iter()
            .find(|u| u.id == id)
            .cloned())
    }
    async fn find_by_username(&self, username: &Username) -> PortResult<Option<User>> {
        let key = username.canonical();
        Ok(self
            .0
            .lock()
            .unwrap()
            .1
            .iter()
            .find(|u| u.username.canonical() == key)
            .cloned())
    }
    async fn find_by_email(&self, email: &Email) -> PortResult<Vec<User>> {
        let key = email.as_str().to_lowercase();
        Ok(self
            .0
            .lock()
            .unwrap()
            .1
            .iter()
            .filter(|u| {
                u.email
                    .as_ref()
                    .is_some_and(|e| e.as_str().to_lowercase() == key)
            })
            .cloned()
            .collect())
    }
    async fn create(&self, user: NewUser) -> PortResult<User> {
        let mut g = self.0.lock().unwrap();
        if g.1
            .iter()
            .any(|u| u.username.canonical() == user.username.canonical())
        {
            return Err(PortError::Conflict(ConflictKind::Username));
        }
        g.0 += 1;
        let created = User {
            id: UserId(g.0),
            username: user.username,
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            password_hash: user.password_hash,
            is_active: true,
            is_staff: user.is_staff,
            is_superuser: user.is_superuser,
            created_at: user.created_at,
            last_login: None,
            password_changed_at: user.password_changed_at,
        };
        g.1.push(created.clone());
        Ok(created)
    }
    async fn update(&self, user: &User) -> PortResult<()> {
        let mut g = self.0.lock().unwrap();
        if !g.1.iter().any(|u| u.id == user.id) {
            return Err(PortError::NotFound);
        }
        if g.1
            .iter()
            .any(|u| u.id != user.id && u.username.canonical() == user.username.canonical())
        {
            return Err(PortError::Conflict(ConflictKind::Username));
        }
        let slot =
            g.1.iter_mut()
                .find(|u| u.id == user.id)
                .ok_or(PortError::NotFound)?;
        *slot = user.clone();
        Ok(())
    }
    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> PortResult<()> {
        if let Some(u) = self.0.lock().unwrap().1.iter_mut().find(|u| u.id == id) {
            u.last_login = Some(at);
        }
        Ok(())
    }
    async fn replace_password(
        &self,
        id: UserId,
        expected: Option<&str>,
        new_hash: &str,
        at: OffsetDateTime,
    ) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        match g
            .1
            .iter_mut()
            .find(|u| u.id == id && u.password_hash.as_deref() == expected)
        {
            Some(u) => {
                u.password_hash = Some(new_hash.to_owned());
                u.password_changed_at = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn list(&self, p: Page) -> PortResult<Vec<User>> {
        let g = self.0.lock().unwrap();
        let mut all = g.1.clone();
        all.sort_by_key(|u| u.id);
        Ok(page(&all, p))
    }
    async fn count(&self) -> PortResult<u64> {
        Ok(self.0.lock().unwrap().1.len() as u64)
    }
}

#[derive(Debug, Default)]
struct FactorData {
    next_id: i64,
    totp: Vec<TotpDevice>,
    webauthn: Vec<WebAuthnCredential>,
    recovery: Vec<(UserId, Vec<u8>)>,
}

/// Factors in memory.
#[derive(Debug, Default)]
pub struct MemoryFactors(Mutex<FactorData>);

#[async_trait]
impl FactorStore for MemoryFactors {
    async fn totp_devices(&self, user: UserId) -> PortResult<Vec<TotpDevice>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .totp
            .iter()
            .filter(|d| d.user_id == user)
            .cloned()
            .collect())
    }
    async fn add_totp(
        &self,
        user: UserId,
        encrypted_secret: Vec<u8>,
        at: OffsetDateTime,
    ) -> PortResult<TotpDevice> {
        let mut g = self.0.lock().unwrap();
        g.next_id += 1;
        let d = TotpDevice {
            id: g.next_id,
            user_id: user,
            encrypted_secret,
            confirmed: false,
            last_used_step: None,
            created_at: at,
        };
        g.totp.push(d.clone());
        Ok(d)
    }
    async fn confirm_totp(&self, device: i64, step: i64) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let Some(d) = g.totp.iter_mut().find(|d| d.id == device && !d.confirmed) else {
            return Ok(false);
        };
        d.confirmed = true;
        d.last_used_step = Some(step);
        let user = d.user_id;
        g.totp.retain(|d| d.user_id != user || d.id == device);
        Ok(true)
    }
    async fn advance_totp_step(&self, device: i64, step: i64) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        match g.totp.iter_mut().find(|d| d.id == device) {
            Some(d) if d.last_used_step.is_none_or(|s| s < step) => {
                d.last_used_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn delete_totp(&self, user: UserId) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.totp.len();
        g.totp.retain(|d| d.user_id != user);
        Ok((before - g.totp.len()) as u64)
    }
    async fn webauthn_credentials(&self, user: UserId) -> PortResult<Vec<WebAuthnCredential>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .webauthn
            .iter()
            .filter(|c| c.user_id == user)
            .cloned()
            .collect())
    }
    async fn find_webauthn(&self, credential_id: &[u8]) -> PortResult<Option<WebAuthnCredential>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .webauthn
            .iter()
            .find(|c| c.credential_id == credential_id)
            .cloned())
    }
    async fn add_webauthn(&self, c: NewWebAuthnCredential) -> PortResult<WebAuthnCredential> {
        let mut g = self.0.lock().unwrap();
        if g.webauthn
            .iter()
            .any(|x| x.credential_id == c.credential_id)
        {
            return Err(PortError::Conflict(ConflictKind::WebAuthnCredential));
        }
        g.next_id += 1;
        let stored = WebAuthnCredential {
            id: g.next_id,
            user_id: c.user_id,
            name: c.name,
            credential_id: c.credential_id,
            credential: c.credential,
            sign_count: c.sign_count,
            transports: c.transports,
            backup_eligible: c.backup_eligible,
            backup_state: c.backup_state,
            created_at: c.created_at,
            last_used_at: None,
        };
        g.webauthn.push(stored.clone());
        Ok(stored)
    }
    async fn update_webauthn_use(
        &self,
        id: i64,
        sign_count: u32,
        backup_state: bool,
        credential: String,
        at: OffsetDateTime,
    ) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let Some(c) = g.webauthn.iter_mut().find(|c| c.id == id) else {
            return Ok(false);
        };
        c.sign_count = sign_count;
        c.backup_state = backup_state;
        c.credential = credential;
        c.last_used_at = Some(at);
        Ok(true)
    }
    async fn rename_webauthn(&self, user: UserId, id: i64, name: &str) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        match g
            .webauthn
            .iter_mut()
            .find(|c| c.id == id && c.user_id == user)
        {
            Some(c) => {
                c.name = name.to_owned();
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete_webauthn(&self, user: UserId, id: i64) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let before = g.webauthn.len();
        g.webauthn.retain(|c| !(c.id == id && c.user_id == user));
        Ok(before != g.webauthn.len())
    }
    async fn delete_all_webauthn(&self, user: UserId) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.webauthn.len();
        g.webauthn.retain(|c| c.user_id != user);
        Ok((before - g.webauthn.len()) as u64)
    }
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: Vec<Vec<u8>>,
        _at: OffsetDateTime,
    ) -> PortResult<()> {
        let mut g = self.0.lock().unwrap();
        g.recovery.retain(|(u, _)| *u != user);
        g.recovery.extend(hashes.into_iter().map(|h| (user, h)));
        Ok(())
    }
    async fn consume_recovery_code(&self, user: UserId, hash: &[u8]) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let before = g.recovery.len();
        let mut removed = false;
        g.recovery.retain(|(u, h)| {
            if !removed && *u == user && h == hash {
                removed = true;
                false
            } else {
                true
            }
        });
        Ok(before != g.recovery.len())
    }
    async fn count_recovery_codes(&self, user: UserId) -> PortResult<u64> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .recovery
            .iter()
            .filter(|(u, _)| *u == user)
            .count() as u64)
    }
}

/// Trusted devices in memory.
#[derive(Debug, Default)]
pub struct MemoryTrustedDevices(Mutex<Vec<TrustedDevice>>);

#[async_trait]
impl TrustedDeviceStore for MemoryTrustedDevices {
    async fn list(&self, user: UserId) -> PortResult<Vec<TrustedDevice>> {
        let mut v: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.user_id == user)
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            b.last_used_at
                .cmp(&a.last_used_at)
                .then(b.created_at.cmp(&a.created_at))
        });
        Ok(v)
    }
    async fn find(&self, id: &str) -> PortResult<Option<TrustedDevice>> {
        Ok(self.0.lock().unwrap().iter().find(|d| d.id == id).cloned())
    }
    async fn insert(&self, device: TrustedDevice) -> PortResult<()> {
        let mut g = self.0.lock().unwrap();
        if g.iter().any(|d| d.id == device.id) {
            return Err(PortError::Conflict(ConflictKind::TrustedDevice));
        }
        g.push(device);
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
        let mut g = self.0.lock().unwrap();
        match g
            .iter_mut()
            .find(|d| d.id == id && d.key_hash == expected_hash)
        {
            Some(d) => {
                d.previous_key_hash = Some(std::mem::replace(&mut d.key_hash, new_hash));
                d.last_used_at = at;
                d.last_ip = ip;
                d.user_agent = user_agent.to_owned();
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete(&self, user: UserId, id: &str) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|d| !(d.id == id && d.user_id == user));
        Ok(before != g.len())
    }
    async fn delete_all(&self, user: UserId) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|d| d.user_id != user);
        Ok((before - g.len()) as u64)
    }
}

/// Lockout counters in memory.
#[derive(Debug, Default)]
pub struct MemoryLockout(Mutex<HashMap<LockoutKey, LockoutEntry>>);

#[async_trait]
impl LockoutStore for MemoryLockout {
    async fn get(&self, key: &LockoutKey) -> PortResult<Option<LockoutEntry>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn get_many(&self, keys: &[&LockoutKey]) -> PortResult<Vec<LockoutEntry>> {
        let g = self.0.lock().unwrap();
        Ok(keys.iter().filter_map(|k| g.get(*k).cloned()).collect())
    }
    /// Under the mutex the stored entry is always the one `seen` should be; applying the
    /// failure to it is the compare-and-set that never loses.
    async fn record_failure(
        &self,
        key: &LockoutKey,
        _seen: Option<&LockoutEntry>,
        now: OffsetDateTime,
        rule: LockoutRule,
    ) -> PortResult<LockoutEntry> {
        let mut g = self.0.lock().unwrap();
        let previous = g.get(key).cloned();
        let mut next = lockout::apply_failure(previous.as_ref(), key, now, rule);
        next.revision = previous.map_or(1, |p| p.revision + 1);
        g.insert(key.clone(), next.clone());
        Ok(next)
    }
    async fn clear(&self, key: &LockoutKey) -> PortResult<bool> {
        Ok(self.0.lock().unwrap().remove(key).is_some())
    }
    async fn list(&self, p: Page) -> PortResult<Vec<LockoutEntry>> {
        let mut all: Vec<_> = self.0.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| {
            b.last_failure_at
                .cmp(&a.last_failure_at)
                .then(a.key.cmp(&b.key))
        });
        Ok(page(&all, p))
    }
    async fn purge_expired(&self, cutoff: OffsetDateTime) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|_, e| e.locked_until.is_some_and(|u| u >= cutoff) || e.last_failure_at >= cutoff);
        Ok((before - g.len()) as u64)
    }
}

/// Sessions in memory.
#[derive(Debug, Default)]
pub struct MemorySessions(Mutex<HashMap<String, SessionRecord>>);

impl MemorySessions {
    /// Sessions with a signed-in user, expired or not.
    pub fn list_active_count(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.user_id.is_some())
            .count()
    }

    /// How many sessions are stored, signed in or not.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a row is stored under exactly this key.
    pub fn has_hash(&self, key: &str) -> bool {
        self.0.lock().unwrap().contains_key(key)
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn load(&self, id_hash: &str) -> PortResult<Option<SessionRecord>> {
        Ok(self.0.lock().unwrap().get(id_hash).cloned())
    }
    async fn save(&self, record: &SessionRecord) -> PortResult<()> {
        self.0
            .lock()
            .unwrap()
            .insert(record.id_hash.clone(), record.clone());
        Ok(())
    }
    async fn renew(&self, old_hash: &str, record: &SessionRecord) -> PortResult<()> {
        let mut g = self.0.lock().unwrap();
        g.remove(old_hash);
        g.insert(record.id_hash.clone(), record.clone());
        Ok(())
    }
    async fn delete(&self, id_hash: &str) -> PortResult<bool> {
        Ok(self.0.lock().unwrap().remove(id_hash).is_some())
    }
    async fn list_active(&self, now: OffsetDateTime, p: Page) -> PortResult<Vec<SessionRecord>> {
        let mut all: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.user_id.is_some() && s.expires_at > now)
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(a.id_hash.cmp(&b.id_hash))
        });
        Ok(page(&all, p))
    }
    async fn delete_for_user(&self, user: UserId) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|_, s| s.user_id != Some(user));
        Ok((before - g.len()) as u64)
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> PortResult<u64> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|_, s| s.expires_at > now);
        Ok((before - g.len()) as u64)
    }
}

/// Records notifications instead of sending them; can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<Notification>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemoryNotifier {
    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap().clone()
    }

    /// Makes every later send fail (to prove failures never undo a change).
    pub fn fail_from_now(&self) {
        self.failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn send(&self, notification: Notification) -> PortResult<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Unavailable("the mail server is down".into()));
        }
        self.sent.lock().unwrap().push(notification);
        Ok(())
    }
}

/// An audit log in memory.
#[derive(Debug, Default)]
pub struct MemoryAudit(Mutex<Vec<AuditEvent>>);

impl MemoryAudit {
    /// Every event, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl AuditLog for MemoryAudit {
    async fn record(&self, event: AuditEvent) -> PortResult<()> {
        self.0.lock().unwrap().push(event);
        Ok(())
    }
    async fn list(&self, p: Page) -> PortResult<Vec<AuditEvent>> {
        let mut all = self.0.lock().unwrap().clone();
        all.reverse();
        Ok(page(&all, p))
    }
}
