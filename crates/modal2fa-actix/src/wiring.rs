//! [`ports`]: the core's [`PortsBuilder`] with what an actix-web (tokio) host runs
//! hashing and waits on, so wiring modal2fa is one store and one call.

use std::sync::Arc;

use modal2fa_core::Ports;
use modal2fa_core::services::{PortsBuilder, Store};

use crate::{TokioDelay, TokioHashPool};

/// `Ports::builder(store)` with hashing on a [`TokioHashPool`] sized to this machine
/// (one worker per core, a bounded queue, 503 beyond) and waits on the tokio timer
/// ([`TokioDelay`]); the system clock, the OS random source and the tracing notifier
/// are the core's defaults. Override any port before `build()`:
///
/// ```no_run
/// # async fn wire() -> Result<(), Box<dyn std::error::Error>> {
/// let store = modal2fa_sea_orm::SeaOrmStore::connect("sqlite://app.db?mode=rwc", 8).await?;
/// let ports = modal2fa_actix::ports(std::sync::Arc::new(store)).build()?;
/// # let _ = ports; Ok(()) }
/// ```
pub fn ports<S: Store>(store: Arc<S>) -> PortsBuilder {
    Ports::builder(store)
        .hash_pool(Arc::new(TokioHashPool::for_this_machine()))
        .delay(Arc::new(TokioDelay))
}
