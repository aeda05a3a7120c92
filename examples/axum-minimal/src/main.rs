//! Serves the axum example on http://127.0.0.1:3000 with a user `alice` / `demo password`.

use std::net::SocketAddr;
use std::sync::Arc;

use modal2fa_core::services::NewAccount;
use modal2fa_core::system::{OsRandom, SystemClock};
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;

#[tokio::main]
async fn main() {
    let mut mem = MemoryPorts::new();
    mem.ports.clock = Arc::new(SystemClock);
    mem.ports.random = Arc::new(OsRandom);
    let mut secret = vec![0u8; 32];
    modal2fa_core::ports::SecretGenerator::fill(&OsRandom, &mut secret);
    let auth = Modal2fa::new(
        mem.ports,
        Arc::new(DefaultPolicy),
        Settings::default(),
        &ServerSecret::new(secret).expect("32 bytes"),
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000")
        .await
        .expect("bind 127.0.0.1:3000");
    println!("axum-minimal on http://127.0.0.1:3000 — user alice, password \"demo password\"");
    axum::serve(
        listener,
        axum_minimal::router(auth).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("server");
}
