//! Serves the axum example on http://127.0.0.1:3000 with a user `alice` / `demo password`.
//!
//! It runs under the development switch (plain http, so the session cookie is not
//! `Secure`); behind https, build the router with `Config::new("https://your.host")`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum_minimal::Config;
use axum_minimal::hashing::SpawnBlockingPool;
use modal2fa_core::services::NewAccount;
use modal2fa_core::system::{OsRandom, SystemClock};
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;

const ORIGIN: &str = "http://127.0.0.1:3000";

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut mem = MemoryPorts::new();
    mem.ports.clock = Arc::new(SystemClock);
    mem.ports.random = Arc::new(OsRandom);
    mem.ports.hash_pool = Arc::new(SpawnBlockingPool::for_this_machine());
    let mut secret = vec![0u8; 32];
    modal2fa_core::ports::SecretGenerator::fill(&OsRandom, &mut secret);
    let secret = ServerSecret::new(secret).expect("32 bytes");
    let auth = Modal2fa::new(
        mem.ports,
        Arc::new(DefaultPolicy),
        Settings::default(),
        &secret,
    );
    auth.account
        .create_user(NewAccount {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            first_name: "Alice".into(),
            last_name: String::new(),
            password: Some("demo password".into()),
            superuser: false,
        })
        .await
        .expect("seed user");
    let config = Config::development_plain_http_on_localhost(ORIGIN).expect("a localhost origin");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000")
        .await
        .expect("bind 127.0.0.1:3000");
    println!("axum-minimal on {ORIGIN} — user alice, password \"demo password\"");
    axum::serve(
        listener,
        axum_minimal::router(auth, &secret, config)
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("server");
}
