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
            Notification::Invitation { to, link } => (
                &to.email,
                format!("Welcome {}", to.username),
                format!(
                    "An account was created for you. Set your password here:\n{}",
                    link.expose()
                ),
            ),
            Notification::PasswordReset { to, link } => (
                &to.email,
                "Password reset".to_owned(),
                format!("Set a new password here:\n{}", link.expose()),
            ),
            Notification::SecurityChange {
                to,
                kind,
                at,
                ip,
                user_agent,
            } => (
                &to.email,
                "Security notice for your account".to_owned(),
                format!(
                    "{kind:?} at {at} from {} ({user_agent}). If this was not you, contact your administrator.",
                    ip.map(|i| i.to_string())
                        .unwrap_or_else(|| "an unknown address".into())
                ),
            ),
        };
        println!("---- mail to {to} ----\nSubject: {subject}\n\n{body}\n----");
        Ok(())
    }
}
