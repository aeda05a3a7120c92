//! The development mail transport: messages are printed to standard output (like Django's
//! console e-mail backend) until the SMTP adapter lands. Never use it in production: reset
//! and invitation links are printed in full.

use async_trait::async_trait;
use modal2fa_core::ports::{Notification, Notifier, PortResult};

/// Prints every notification to standard output.
#[derive(Debug, Default)]
pub struct ConsoleNotifier;

#[async_trait]
impl Notifier for ConsoleNotifier {
    async fn send(&self, n: Notification) -> PortResult<()> {
        let (to, subject, body) = match &n {
            Notification::Invitation { user, link } => (
                user.email.as_ref().map(|e| e.to_string()),
                format!("Welcome {}", user.username),
                format!(
                    "An account was created for you. Set your password here:\n{}",
                    link.expose()
                ),
            ),
            Notification::PasswordReset { user, link } => (
                user.email.as_ref().map(|e| e.to_string()),
                "Password reset".to_owned(),
                format!("Set a new password here:\n{}", link.expose()),
            ),
            Notification::SecurityChange {
                user,
                kind,
                at,
                ip,
                user_agent,
            } => (
                user.email.as_ref().map(|e| e.to_string()),
                "Security notice for your account".to_owned(),
                format!(
                    "{kind:?} at {at} from {} ({user_agent}). If this was not you, contact your administrator.",
                    ip.map(|i| i.to_string())
                        .unwrap_or_else(|| "an unknown address".into())
                ),
            ),
        };
        println!(
            "---- mail to {} ----\nSubject: {subject}\n\n{body}\n----",
            to.unwrap_or_else(|| "(no address)".into())
        );
        Ok(())
    }
}
