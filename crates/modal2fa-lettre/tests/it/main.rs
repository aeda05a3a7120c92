//! Integration tests of modal2fa-lettre: rendering and configuration with the memory
//! transport, delivery to a real SMTP server (aiosmtpd), and the core's Notifier contract.

mod config;
mod contract;
mod memory;
mod mime;
mod smtp;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use modal2fa_core::SecretString;
use modal2fa_core::model::SecurityEventKind;
use modal2fa_core::ports::Notification;
use modal2fa_lettre::{LettreNotifier, MailConfig, MemoryTransport, Transport};
use modal2fa_test_support::contracts::{NOW, recipient};

/// The invitation link every test sends.
const INVITE_LINK: &str = "https://auth.example.com/auth/invite/17.1767225600.bG9uZ2VyLXRva2VuLXRoYXQtaXMtbG9uZy1lbm91Z2gtdG8td3JhcC1saW5lcw";
/// The reset link every test sends (long, so that quoted-printable would wrap it).
const RESET_LINK: &str = "https://auth.example.com/auth/reset/17.1767225600.cmVzZXQtdG9rZW4tdGhhdC1pcy1sb25nLWVub3VnaC10by13cmFwLWxpbmVzLWluLXFw?next=%2Faccount&x=1";

fn config(transport: Transport) -> MailConfig {
    MailConfig {
        from: "Example Site <noreply@example.com>".into(),
        site_name: "Example Site".into(),
        base_url: "https://example.com".into(),
        templates_dir: None,
        transport,
    }
}

/// A notifier on a fresh memory transport.
fn memory_notifier() -> (LettreNotifier, Arc<MemoryTransport>) {
    let memory = Arc::new(MemoryTransport::new());
    let notifier = LettreNotifier::new(config(Transport::Memory(Arc::clone(&memory))))
        .expect("the default configuration is valid");
    (notifier, memory)
}

fn invitation() -> Notification {
    Notification::Invitation {
        to: recipient(),
        link: SecretString::new(INVITE_LINK),
    }
}

fn reset() -> Notification {
    Notification::PasswordReset {
        to: recipient(),
        link: SecretString::new(RESET_LINK),
    }
}

fn security(kind: SecurityEventKind) -> Notification {
    Notification::SecurityChange {
        to: recipient(),
        kind,
        at: NOW,
        ip: Some("192.0.2.7".parse().unwrap()),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0".into(),
    }
}

/// A new, empty directory under the system's temporary directory (removed on drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "modal2fa-lettre-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// Writes `content` to `relative` inside the directory.
    fn write(&self, relative: &str, content: &str) {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
