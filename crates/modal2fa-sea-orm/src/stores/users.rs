//! [`UserStore`] over `modal2fa_users`.
//!
//! Users are looked up by `username_canonical` and `email_canonical`, which hold
//! [`Username::canonical`] and [`Email::canonical`] (NFKC, lower case); the unique index on
//! `username_canonical` makes a second spelling of a taken name a conflict. The columns
//! are compared as bytes on every backend: PostgreSQL and SQLite compare text that way,
//! and on MySQL/MariaDB the migration `m20261201_000001_binary_collations` gives them a
//! binary collation (their default collations would let `alíce` find `alice`).

use async_trait::async_trait;
use modal2fa_core::model::*;
use modal2fa_core::ports::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use time::OffsetDateTime;

use crate::entities::*;
use crate::{SeaOrmStore, conflict_on, from_micros, map_err, to_micros};

fn user_from(m: users::Model) -> PortResult<User> {
    let unreadable =
        |problem| PortError::unreadable(format_args!("modal2fa_users id={}", m.id), problem);
    Ok(User {
        id: UserId(m.id),
        username: Username::from_stored(&m.username).map_err(unreadable)?,
        email: m
            .email
            .as_deref()
            .map(Email::from_stored)
            .transpose()
            .map_err(unreadable)?,
        first_name: m.first_name,
        last_name: m.last_name,
        password_hash: m.password_hash,
        is_active: m.is_active,
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
            .one(&self.db)
            .await
            .map_err(map_err)?
            .map(user_from)
            .transpose()
    }

    async fn find_by_username(&self, username: &Username) -> PortResult<Option<User>> {
        let key = username.canonical();
        users::Entity::find()
            .filter(users::Column::UsernameCanonical.eq(key.as_str()))
            .one(&self.db)
            .await
            .map_err(map_err)?
            // The collation already compares bytes; this also holds where it would not.
            .filter(|m| m.username_canonical == key)
            .map(user_from)
            .transpose()
    }

    async fn find_by_email(&self, email: &Email) -> PortResult<Vec<User>> {
        let key = email.canonical();
        users::Entity::find()
            .filter(users::Column::EmailCanonical.eq(key.as_str()))
            .order_by_asc(users::Column::Id)
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .filter(|m| m.email_canonical.as_deref() == Some(key.as_str()))
            .map(user_from)
            .collect()
    }

    async fn create(&self, u: NewUser) -> PortResult<User> {
        let m = users::ActiveModel {
            id: NotSet,
            username: Set(u.username.to_string()),
            username_canonical: Set(u.username.canonical()),
            email_canonical: Set(u.email.as_ref().map(Email::canonical)),
            email: Set(u.email.map(String::from)),
            first_name: Set(u.first_name),
            last_name: Set(u.last_name),
            password_hash: Set(u.password_hash),
            is_active: Set(true),
            // Django's columns: a superuser is staff too (`createsuperuser`).
            is_staff: Set(u.is_superuser),
            is_superuser: Set(u.is_superuser),
            created_at: Set(to_micros(u.created_at)),
            last_login: Set(None),
            password_changed_at: Set(u.password_changed_at.map(to_micros)),
        }
        .insert(&self.db)
        .await
        .map_err(conflict_on(ConflictKind::Username))?;
        user_from(m)
    }

    async fn set_active(&self, id: UserId, active: bool) -> PortResult<bool> {
        let res = users::Entity::update_many()
            .col_expr(users::Column::IsActive, Expr::value(active))
            .filter(users::Column::Id.eq(id.0))
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected > 0)
    }

    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> PortResult<()> {
        users::Entity::update_many()
            .col_expr(users::Column::LastLogin, Expr::value(to_micros(at)))
            .filter(users::Column::Id.eq(id.0))
            .exec(&self.db)
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
            .exec(&self.db)
            .await
            .map_err(map_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn list(&self, page: Page) -> PortResult<Vec<User>> {
        users::Entity::find()
            .order_by_asc(users::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(user_from)
            .collect()
    }

    async fn count(&self) -> PortResult<u64> {
        users::Entity::find().count(&self.db).await.map_err(map_err)
    }
}
