//! Email for modal2fa: an adapter of the core's [`Notifier`] port built on
//! [lettre](https://lettre.rs) and [Tera](https://keats.github.io/tera/).
//!
//! # Model
//!
//! A [`LettreNotifier`] is made once from a [`MailConfig`], which [`LettreNotifier::new`]
//! checks whole before anything is sent: the sender address, the SMTP settings (no
//! unencrypted SMTP to another machine, credentials set in pairs), the transport's
//! directory and every template (each one is parsed and rendered with a sample message,
//! so a broken override names its file at start-up, not at the first password reset).
//!
//! [`Notifier::send`] renders one [`Notification`] with the [`Templates`] (subject, text
//! and HTML; see the module for the variables and the override directory) into a UTF-8
//! `multipart/alternative` message addressed to "First Last <address>", and hands it to
//! the [`Transport`]: a pooled SMTP client ([`SmtpSecurity`]: STARTTLS, implicit TLS, or
//! plain to localhost only), one `.eml` file per message, standard output, or memory for
//! tests ([`MemoryTransport`]).
//!
//! Requests never call `send`: the outbox's background sender does, and retries. So a
//! failure says whether to: [`Unavailable`] when it may pass (a connection refused, a
//! timeout, a 4xx reply), [`Unexpected`] when it will repeat (a bad
//! address, a 5xx reply, refused credentials, a template error). Its cause is a
//! [`SendError`].
//!
//! [`Unavailable`]: modal2fa_core::PortError::Unavailable
//! [`Unexpected`]: modal2fa_core::PortError::Unexpected
//!
//! Links are credentials: neither the logs (which carry the kind of message and the user
//! id) nor any error text contain a link or a message body.
//!
//! With the `testing` feature, [`testing`] runs a real SMTP server (Python's `aiosmtpd`)
//! that captures what it receives, for end-to-end tests.

mod config;
mod memory;
mod smtp;
pub mod templates;
mod transport;

#[cfg(feature = "testing")]
pub mod testing;

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use modal2fa_core::PortResult;
use modal2fa_core::ports::{Notification, Notifier};

pub use config::{MailConfig, MailConfigError, SmtpConfig, SmtpSecurity, Transport};
pub use memory::{MemoryTransport, SentMail};
pub use templates::{RenderError, RenderedMail, Templates};
pub use transport::SendError;

use transport::Outlet;

/// The [`Notifier`] that renders messages from templates and sends them with lettre.
#[derive(Debug)]
pub struct LettreNotifier {
    from: Mailbox,
    templates: Templates,
    outlet: Outlet,
}

impl LettreNotifier {
    /// Checks `config` whole and sets the transport up (see the [crate] documentation).
    ///
    /// Nothing is connected yet (SMTP connections are made by the first `send`, on the
    /// Tokio runtime that calls it), so `new` may run before the runtime starts.
    pub fn new(config: MailConfig) -> Result<Self, MailConfigError> {
        let from: Mailbox =
            config
                .from
                .trim()
                .parse()
                .map_err(|e: lettre::address::AddressError| MailConfigError::From {
                    reason: e.to_string(),
                })?;
        let templates = Templates::new(
            config.site_name,
            config.base_url,
            config.templates_dir.as_deref(),
        )?;
        let outlet = Outlet::new(&config.transport)?;
        Ok(Self {
            from,
            templates,
            outlet,
        })
    }

    /// The templates, to preview a message without sending it.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Renders `notification` into the message to send, with what was rendered.
    fn message(&self, notification: &Notification) -> Result<(Message, RenderedMail), SendError> {
        let rendered = self.templates.render(notification)?;
        let to = notification.recipient();
        let address = to
            .email
            .trim()
            .parse()
            .map_err(|_| SendError::BadRecipient)?;
        let name = templates::one_line(&templates::display_name(to));
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(name), address))
            .subject(rendered.subject.clone())
            .message_id(Some(message_id(&self.from)))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(SendError::Build)?;
        Ok((message, rendered))
    }
}

/// A unique `Message-ID` in the sender's domain (rather than this machine's name).
fn message_id(from: &Mailbox) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "<{nanos:x}.{n:x}.{:x}.modal2fa@{}>",
        std::process::id(),
        from.email.domain()
    )
}

#[async_trait]
impl Notifier for LettreNotifier {
    async fn send(&self, notification: Notification) -> PortResult<()> {
        let kind = notification.kind_name();
        let user_id = notification.recipient().user_id.0;
        let transport = self.outlet.name();
        let result = match self.message(&notification) {
            Ok((message, rendered)) => self.outlet.send(message, rendered).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::debug!(kind, user_id, transport, "mail handed over");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    kind,
                    user_id,
                    transport,
                    transient = e.is_transient(),
                    error = %ErrorChain(&e),
                    "mail not sent"
                );
                Err(e.into_port_error())
            }
        }
    }
}

/// An error and its causes, `: `-separated.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
