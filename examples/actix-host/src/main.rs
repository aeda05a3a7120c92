//! `cargo run -p actix-host`: the host application on http://localhost:8090/.
//!
//! Development only as written: plain http on the loopback address (so cookies are not
//! `Secure`) and a server secret made at random on every start (sessions do not survive
//! a restart). A deployment serves https and reads its secret from a secret store.

use actix_host::accounts::HostAccounts;
use actix_web::{App, HttpServer};
use modal2fa_actix::WebSettings;
use modal2fa_actix::modal2fa_core::ports::SecretGenerator;
use modal2fa_actix::modal2fa_core::system::OsRandom;
use modal2fa_actix::modal2fa_core::{ServerSecret, Settings};

#[actix_web::main]
async fn main() -> Result<(), String> {
    // `cargo run -p actix-host -- add-user NAME PASSWORD [--admin]` adds an account to the
    // application's table (hashed by modal2fa); without arguments the server starts.
    let args: Vec<String> = std::env::args().skip(1).collect();
    tracing_subscriber::fmt().with_env_filter("info").init();
    let url = std::env::var("HOST_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://actix-host.db?mode=rwc".to_owned());
    let pool = sqlx::sqlite::SqlitePool::connect(&url)
        .await
        .map_err(|e| format!("HOST_DATABASE_URL: {e}"))?;
    let accounts = HostAccounts::new(pool).await.map_err(|e| e.to_string())?;
    let mut bytes = vec![0u8; 32];
    OsRandom.fill(&mut bytes);
    let secret = ServerSecret::new(bytes).map_err(|e| e.to_string())?;
    let settings = WebSettings {
        site_name: "Acme".into(),
        secure_cookies: false,
        ..WebSettings::default()
    };
    let web = actix_host::modal2fa(&url, accounts, &secret, Settings::default(), settings).await?;
    if let [command, name, password, rest @ ..] = args.as_slice()
        && command == "add-user"
    {
        let account = modal2fa_actix::modal2fa_core::services::NewAccount {
            username: name.clone(),
            email: None,
            first_name: name.clone(),
            last_name: String::new(),
            password: Some(password.as_str().into()),
            superuser: rest.iter().any(|a| a == "--admin"),
        };
        let user = web
            .auth()
            .account
            .create_user(account)
            .await
            .map_err(|e| e.to_string())?;
        println!("added {}", user.username);
        return Ok(());
    }
    println!("Acme on http://localhost:8090/");
    HttpServer::new(move || {
        let w = web.clone();
        App::new()
            .wrap(web.security_headers())
            .wrap(web.session_middleware())
            .configure(move |c| w.configure(c))
            .configure(actix_host::pages::configure)
    })
    .bind(("127.0.0.1", 8090))
    .map_err(|e| e.to_string())?
    .run()
    .await
    .map_err(|e| e.to_string())
}
