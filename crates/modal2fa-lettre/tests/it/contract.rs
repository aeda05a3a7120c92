//! The core's Notifier contract.

use std::sync::Arc;

use modal2fa_core::ports::Notifier;
use modal2fa_lettre::{LettreNotifier, MemoryTransport, Transport};
use modal2fa_test_support::contracts::run_notifier_contract;

use super::config;

#[tokio::test]
async fn the_memory_transport_notifier_passes_the_notifier_contract() {
    run_notifier_contract(|| async {
        let memory = Arc::new(MemoryTransport::new());
        Arc::new(LettreNotifier::new(config(Transport::Memory(memory))).unwrap())
            as Arc<dyn Notifier>
    })
    .await;
}
