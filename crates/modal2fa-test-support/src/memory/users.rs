//! Users in memory. Usernames and email addresses are compared in their canonical forms
//! ([`Username::canonical`], [`Email::canonical`]), exactly as strings: `ALICE` finds
//! `alice`, `alíce` does not.

use std::sync::Mutex;

use async_trait::async_trait;
use modal2fa_core::model::{Email, NewUser, Page, User, UserId, Username};
use modal2fa_core::ports::{ConflictKind, PortError, PortResult, UserStore};
use time::OffsetDateTime;

use super::page;

/// Users in memory.
#[derive(Debug, Default)]
pub struct MemoryUsers(Mutex<(i64, Vec<User>)>);

impl MemoryUsers {
    /// Changes a stored user in place, as a test's setup does (a legacy hash, a name
    /// outside the rules): the port itself never rewrites a whole row. `false` if there
    /// is no such user.
    pub fn edit(&self, id: UserId, change: impl FnOnce(&mut User)) -> bool {
        let mut g = self.0.lock().unwrap();
        match g.1.iter_mut().find(|u| u.id == id) {
            Some(u) => {
                change(u);
                true
            }
            None => false,
        }
    }
}

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
        let key = email.canonical();
        Ok(self
            .0
            .lock()
            .unwrap()
            .1
            .iter()
            .filter(|u| u.email.as_ref().is_some_and(|e| e.canonical() == key))
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
            is_superuser: user.is_superuser,
            created_at: user.created_at,
            last_login: None,
            password_changed_at: user.password_changed_at,
        };
        g.1.push(created.clone());
        Ok(created)
    }
    async fn set_active(&self, id: UserId, active: bool) -> PortResult<bool> {
        let mut g = self.0.lock().unwrap();
        Ok(match g.1.iter_mut().find(|u| u.id == id) {
            Some(u) => {
                u.is_active = active;
                true
            }
            None => false,
        })
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

/// What [`HookedUsers`] makes of a lookup by username: given the store, the name and what
/// the store found, the answer to give.
pub type UsernameHook = Box<
    dyn Fn(&MemoryUsers, &Username, PortResult<Option<User>>) -> PortResult<Option<User>>
        + Send
        + Sync,
>;

/// Users in memory whose lookups by username pass through a hook: to change the row
/// "meanwhile" (a concurrent admin edit), or to answer as a store that cannot read a row.
/// Every other method is the memory store's.
pub struct HookedUsers {
    users: std::sync::Arc<MemoryUsers>,
    hook: UsernameHook,
}

impl HookedUsers {
    /// `users` with `hook` on every lookup by username.
    pub fn new(
        users: std::sync::Arc<MemoryUsers>,
        hook: impl Fn(&MemoryUsers, &Username, PortResult<Option<User>>) -> PortResult<Option<User>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            users,
            hook: Box::new(hook),
        }
    }
}

#[async_trait]
impl UserStore for HookedUsers {
    async fn find_by_id(&self, id: UserId) -> PortResult<Option<User>> {
        self.users.find_by_id(id).await
    }
    async fn find_by_username(&self, username: &Username) -> PortResult<Option<User>> {
        let found = self.users.find_by_username(username).await;
        (self.hook)(&self.users, username, found)
    }
    async fn find_by_email(&self, email: &Email) -> PortResult<Vec<User>> {
        self.users.find_by_email(email).await
    }
    async fn create(&self, user: NewUser) -> PortResult<User> {
        self.users.create(user).await
    }
    async fn set_active(&self, id: UserId, active: bool) -> PortResult<bool> {
        self.users.set_active(id, active).await
    }
    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> PortResult<()> {
        self.users.record_login(id, at).await
    }
    async fn replace_password(
        &self,
        id: UserId,
        expected: Option<&str>,
        new_hash: &str,
        at: OffsetDateTime,
    ) -> PortResult<bool> {
        self.users
            .replace_password(id, expected, new_hash, at)
            .await
    }
    async fn list(&self, page: Page) -> PortResult<Vec<User>> {
        self.users.list(page).await
    }
    async fn count(&self) -> PortResult<u64> {
        self.users.count().await
    }
}
