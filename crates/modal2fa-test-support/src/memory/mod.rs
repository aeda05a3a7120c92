//! In-memory implementations of every store port. Each holds one mutex, which makes every
//! compare-and-set trivially atomic within one process.

mod factors;
mod lockout;
mod misc;
mod outbox;
mod sessions;
mod trusted;
mod users;

pub use factors::MemoryFactors;
pub use lockout::MemoryLockout;
pub use misc::{MemoryAudit, MemoryNotifier};
pub use outbox::{MemoryOutbox, MemoryOutboxRow, MemoryOutboxState};
pub use sessions::MemorySessions;
pub use trusted::MemoryTrustedDevices;
pub use users::{HookedUsers, MemoryUsers, UsernameHook};

use modal2fa_core::model::Page;

fn page<T: Clone>(items: &[T], page: Page) -> Vec<T> {
    items
        .iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .cloned()
        .collect()
}
