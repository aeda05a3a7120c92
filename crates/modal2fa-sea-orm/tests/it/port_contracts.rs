//! The SeaORM store passes every port contract of `modal2fa-test-support`, on SQLite always
//! and on PostgreSQL and MySQL/MariaDB when their URLs are set.

use std::sync::Arc;

use crate::common::{TestDb, backends};
use modal2fa_test_support::contracts::*;

macro_rules! contract_test {
    ($name:ident, $suite:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for backend in backends() {
                let db = TestDb::create(backend).await;
                $suite(|| {
                    let db = &db;
                    async move { Arc::new(db.empty_store().await) as _ }
                })
                .await;
                db.drop_db().await;
            }
        }
    };
}

contract_test!(
    the_sea_orm_user_store_meets_the_user_store_contract,
    run_user_store_contract
);
contract_test!(
    the_sea_orm_factor_store_meets_the_factor_store_contract,
    run_factor_store_contract
);
contract_test!(
    the_sea_orm_trusted_device_store_meets_its_contract,
    run_trusted_device_store_contract
);
contract_test!(
    the_sea_orm_lockout_store_meets_the_lockout_store_contract,
    run_lockout_store_contract
);
contract_test!(
    the_sea_orm_session_store_meets_the_session_store_contract,
    run_session_store_contract
);
contract_test!(
    the_sea_orm_audit_log_meets_the_audit_log_contract,
    run_audit_log_contract
);
contract_test!(
    the_sea_orm_outbox_meets_the_outbox_contract,
    run_outbox_contract
);
