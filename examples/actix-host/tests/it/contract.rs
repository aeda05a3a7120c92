//! `host_accounts` meets the `UserStore` contract: every case on a fresh in-memory table.

use std::sync::Arc;

use actix_host::accounts::HostAccounts;
use sqlx::sqlite::SqlitePoolOptions;

#[tokio::test]
async fn host_accounts_meet_the_user_store_contract() {
    modal2fa_test_support::contracts::run_user_store_contract(|| async {
        // One connection: every connection to `sqlite::memory:` is a database of its own.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        Arc::new(HostAccounts::new(pool).await.expect("the table")) as _
    })
    .await;
}
