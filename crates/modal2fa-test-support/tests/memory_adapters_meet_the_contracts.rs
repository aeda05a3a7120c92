//! The in-memory adapters pass every port contract.

use std::sync::Arc;

use modal2fa_core::system::{OsRandom, SystemClock};
use modal2fa_test_support::contracts::*;
use modal2fa_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_user_store_meets_the_user_store_contract() {
    run_user_store_contract(|| async { Arc::new(MemoryUsers::default()) as _ }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_factor_store_meets_the_factor_store_contract() {
    run_factor_store_contract(|| async { Arc::new(MemoryFactors::default()) as _ }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_trusted_device_store_meets_its_contract() {
    run_trusted_device_store_contract(|| async { Arc::new(MemoryTrustedDevices::default()) as _ })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_lockout_store_meets_the_lockout_store_contract() {
    run_lockout_store_contract(|| async { Arc::new(MemoryLockout::default()) as _ }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_session_store_meets_the_session_store_contract() {
    run_session_store_contract(|| async { Arc::new(MemorySessions::default()) as _ }).await;
}

#[tokio::test]
async fn the_memory_audit_log_meets_the_audit_log_contract() {
    run_audit_log_contract(|| async { Arc::new(MemoryAudit::default()) as _ }).await;
}

#[tokio::test]
async fn the_memory_notifier_meets_the_notifier_contract() {
    run_notifier_contract(|| async { Arc::new(MemoryNotifier::default()) as _ }).await;
}

#[test]
fn both_secret_generators_meet_the_secret_generator_contract() {
    run_secret_generator_contract(&OsRandom);
    run_secret_generator_contract(&SequenceRandom::new(7));
}

#[test]
fn both_clocks_meet_the_clock_contract() {
    run_clock_contract(&SystemClock);
    run_clock_contract(&FixedClock::default_start());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_outbox_meets_the_outbox_contract() {
    run_outbox_contract(|| async { Arc::new(MemoryOutbox::default()) as _ }).await;
}
