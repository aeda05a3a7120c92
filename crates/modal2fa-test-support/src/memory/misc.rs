//! A notifier that records instead of sending, and an audit log in memory.

use std::sync::Mutex;

use async_trait::async_trait;
use modal2fa_core::model::{AuditEvent, Page};
use modal2fa_core::ports::{AuditLog, Notification, Notifier, PortError, PortResult};

use super::page;

/// Records notifications instead of sending them; can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<Notification>>,
    failing: std::sync::atomic::AtomicBool,
    refusing: std::sync::atomic::AtomicBool,
}

impl MemoryNotifier {
    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap().clone()
    }

    /// Makes every later send fail as an unreachable server would (to prove failures
    /// never undo a change, and are retried).
    pub fn fail_from_now(&self) {
        self.failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every later send be refused, as a server refusing the credentials or the
    /// address would (a failure not worth retrying).
    pub fn refuse_from_now(&self) {
        self.refusing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn send(&self, notification: Notification) -> PortResult<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Unavailable("the mail server is down".into()));
        }
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Unexpected("535 authentication failed".into()));
        }
        self.sent.lock().unwrap().push(notification);
        Ok(())
    }
}

/// An audit log in memory.
#[derive(Debug, Default)]
pub struct MemoryAudit(Mutex<Vec<AuditEvent>>);

impl MemoryAudit {
    /// Every event, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl AuditLog for MemoryAudit {
    async fn record(&self, event: AuditEvent) -> PortResult<()> {
        self.0.lock().unwrap().push(event);
        Ok(())
    }
    async fn list(&self, p: Page) -> PortResult<Vec<AuditEvent>> {
        let mut all = self.0.lock().unwrap().clone();
        all.reverse();
        Ok(page(&all, p))
    }
}
