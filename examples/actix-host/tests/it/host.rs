//! The application under test: modal2fa wired as `main` wires it, over a fresh SQLite
//! file shared by the application's pool and modal2fa's store, with cheap hashing.

use actix_host::accounts::HostAccounts;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test};
use modal2fa_actix::modal2fa_core::password::PasswordHashing;
use modal2fa_actix::modal2fa_core::services::NewAccount;
use modal2fa_actix::modal2fa_core::{ServerSecret, Settings, UserId};
use modal2fa_actix::testing::TestClient;
use modal2fa_actix::{Modal2faWeb, WebSettings};
use sqlx::sqlite::SqlitePool;

pub const PASSWORD: &str = "correct horse battery";

/// The application and its database.
pub struct Host {
    pub web: Modal2faWeb,
    pub pool: SqlitePool,
    file: std::path::PathBuf,
}

impl Drop for Host {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.file.display()));
        }
    }
}

impl Host {
    pub async fn start() -> Self {
        let file = std::env::temp_dir().join(format!(
            "actix-host-{}-{}.db",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let pool = SqlitePool::connect(&url).await.unwrap();
        let accounts = HostAccounts::new(pool.clone()).await.unwrap();
        let settings = Settings {
            password_hashing: PasswordHashing::FOR_TESTS,
            ..Settings::default()
        };
        let web = WebSettings {
            site_name: "Acme".into(),
            secure_cookies: false,
            ..WebSettings::default()
        };
        let secret = ServerSecret::new(vec![4; 32]).unwrap();
        let web = actix_host::modal2fa(&url, accounts, &secret, settings, web)
            .await
            .unwrap();
        Self { web, pool, file }
    }

    /// A browser on the application, wired as `main` wires it.
    pub async fn browser(
        &self,
    ) -> TestClient<
        impl Service<
            actix_http::Request,
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
        >,
    > {
        let w = self.web.clone();
        let app = test::init_service(
            App::new()
                .wrap(self.web.security_headers())
                .wrap(self.web.session_middleware())
                .configure(move |c| w.configure(c))
                .configure(actix_host::pages::configure),
        )
        .await;
        TestClient::new(app, &self.web)
    }

    /// Adds an account through modal2fa (as the application's `add-user` does).
    pub async fn account(&self, name: &str, admin: bool) -> UserId {
        self.web
            .auth()
            .account
            .create_user(NewAccount {
                username: name.into(),
                email: Some(format!("{}@acme.example", name.replace(' ', "."))),
                first_name: name.into(),
                last_name: String::new(),
                password: Some(PASSWORD.into()),
                superuser: admin,
            })
            .await
            .unwrap()
            .id
    }
}
