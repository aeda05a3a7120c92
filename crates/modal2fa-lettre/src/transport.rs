//! The transports behind the notifier: validated and set up once, then handed messages.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use modal2fa_core::PortError;

use crate::config::{MailConfigError, Transport};
use crate::memory::{MemoryTransport, SentMail};
use crate::smtp::{SmtpClient, SmtpFailure};
use crate::templates::RenderedMail;

/// Why a message was not handed over. It is the boxed cause inside the [`PortError`]
/// that `send` returns; its text never contains the message, its link or the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The recipient's address is not an email address.
    #[error("the recipient's address is not a valid email address")]
    BadRecipient,
    /// The message could not be assembled.
    #[error("the message could not be built")]
    Build(#[source] lettre::error::Error),
    /// A template failed.
    #[error(transparent)]
    Render(#[from] crate::templates::RenderError),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP delivery to {server} failed")]
    Smtp {
        /// `host:port`.
        server: String,
        /// What lettre reported.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The SMTP server did not finish taking the message within the timeout.
    #[error("SMTP delivery to {server} did not finish within {after:?}")]
    SmtpTimeout {
        /// `host:port`.
        server: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The file transport could not write.
    #[error("the message could not be written to the mail directory")]
    File(#[source] lettre::transport::file::Error),
    /// Standard output could not be written.
    #[error("the message could not be printed")]
    Console(#[source] std::io::Error),
}

impl SendError {
    /// Whether retrying later may succeed (a connection refused, a timeout, a 4xx reply,
    /// a full disk) as opposed to a failure that will repeat (a bad address, a 5xx reply,
    /// wrong credentials, a broken template).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::BadRecipient | Self::Build(_) | Self::Render(_) => false,
            Self::Smtp { source, .. } => {
                source.is_timeout()
                    || !(source.is_permanent() || source.is_client() || source.is_response())
            }
            Self::SmtpTimeout { .. } | Self::File(_) | Self::Console(_) => true,
        }
    }

    /// The port error for this failure: [`PortError::Unavailable`] when transient,
    /// [`PortError::Unexpected`] otherwise.
    pub fn into_port_error(self) -> PortError {
        if self.is_transient() {
            PortError::Unavailable(Box::new(self))
        } else {
            PortError::Unexpected(Box::new(self))
        }
    }
}

/// Where the notifier's messages go, set up.
pub(crate) enum Outlet {
    Smtp(Box<SmtpClient>),
    File(AsyncFileTransport<Tokio1Executor>),
    Console,
    Memory(Arc<MemoryTransport>),
}

impl std::fmt::Debug for Outlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp(s) => write!(f, "Smtp({})", s.server()),
            Self::File(_) => f.write_str("File"),
            Self::Console => f.write_str("Console"),
            Self::Memory(_) => f.write_str("Memory"),
        }
    }
}

impl Outlet {
    /// Validates `transport` and sets it up.
    pub(crate) fn new(transport: &Transport) -> Result<Self, MailConfigError> {
        Ok(match transport {
            Transport::Smtp(c) => Self::Smtp(Box::new(SmtpClient::new(c)?)),
            Transport::File { dir } => {
                if !Path::new(dir).is_dir() {
                    return Err(MailConfigError::FileDir { path: dir.clone() });
                }
                Self::File(AsyncFileTransport::<Tokio1Executor>::new(dir))
            }
            Transport::Console => Self::Console,
            Transport::Memory(m) => Self::Memory(Arc::clone(m)),
        })
    }

    /// A name for logs: `smtp`, `file`, `console` or `memory`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::File(_) => "file",
            Self::Console => "console",
            Self::Memory(_) => "memory",
        }
    }

    /// Hands `message` (rendered from `rendered`) over.
    pub(crate) async fn send(
        &self,
        message: Message,
        rendered: RenderedMail,
    ) -> Result<(), SendError> {
        match self {
            Self::Smtp(s) => {
                let raw = message.formatted();
                s.send(message.envelope(), &raw)
                    .await
                    .map_err(|failure| match failure {
                        SmtpFailure::Smtp(source) => SendError::Smtp {
                            server: s.server().to_owned(),
                            source,
                        },
                        SmtpFailure::Timeout(after) => SendError::SmtpTimeout {
                            server: s.server().to_owned(),
                            after,
                        },
                    })
            }
            Self::File(f) => f.send(message).await.map(drop).map_err(SendError::File),
            Self::Console => {
                let raw = message.formatted();
                let mut out = std::io::stdout().lock();
                out.write_all(b"----- modal2fa-lettre: message (development transport) -----\n")
                    .and_then(|()| out.write_all(&raw))
                    .and_then(|()| out.write_all(b"\n----- end of message -----\n"))
                    .and_then(|()| out.flush())
                    .map_err(SendError::Console)
            }
            Self::Memory(m) => {
                let envelope = message.envelope();
                let to = envelope
                    .to()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let from = envelope.from().map(ToString::to_string).unwrap_or_default();
                m.push(SentMail {
                    to,
                    from,
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                    raw: message.formatted(),
                });
                Ok(())
            }
        }
    }
}
