//! An existing actix-web application — its own routes, layout and users table — that
//! adds modal2fa. Everything modal2fa-specific is in [`modal2fa`] (the wiring) and
//! [`accounts`] (the users table as modal2fa's `UserStore`); [`pages`] is the
//! application's own code, which uses a guard and the user menu, a line each.

pub mod accounts;
pub mod pages;

use std::sync::Arc;

use modal2fa_actix::modal2fa_core::model::{NameRules, User};
use modal2fa_actix::modal2fa_core::{AuthPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_actix::{Modal2faWeb, WebSettings};
use modal2fa_sea_orm::SeaOrmStore;

use crate::accounts::HostAccounts;

/// The application's rules for modal2fa: administrators must use a second factor, and
/// names with inner spaces (which the users table has always allowed) are fine.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostPolicy;

impl AuthPolicy for HostPolicy {
    fn user_2fa_optional(&self, user: &User) -> bool {
        !user.is_superuser
    }

    fn name_rules(&self) -> NameRules {
        NameRules::DJANGO.with_username_characters("@.+-_ ")
    }
}

/// modal2fa over the application's database: its own tables through `SeaOrmStore`, the
/// accounts from the application's `host_accounts`, the application's policy.
pub async fn modal2fa(
    database_url: &str,
    accounts: HostAccounts,
    secret: &ServerSecret,
    settings: Settings,
    web: WebSettings,
) -> Result<Modal2faWeb, String> {
    let store = SeaOrmStore::connect(database_url, 5)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let ports = modal2fa_actix::ports(Arc::new(store))
        .users(Arc::new(accounts))
        .build()
        .map_err(|e| e.to_string())?;
    let auth = Modal2fa::new(ports, Arc::new(HostPolicy), settings, secret);
    Modal2faWeb::builder(auth)
        .settings(web)
        .build()
        .map_err(|e| e.to_string())
}
