//! Test support (feature `testing`): a real SMTP server that captures what it receives,
//! and a reader for the captured messages.
//!
//! [`SmtpSink::start`] runs Debian's `python3-aiosmtpd` (a complete RFC 5321 server) as a
//! child process on a free port of `127.0.0.1`; every message it accepts is written to a
//! temporary directory, which [`SmtpSink::messages`] reads back. The sink requires
//! `/usr/bin/python3` with `aiosmtpd` importable; without it `start` panics saying to
//! `apt-get install python3-aiosmtpd` (a test is never silently skipped).
//!
//! ```no_run
//! # async fn demo() {
//! use modal2fa_lettre::testing::SmtpSink;
//! use modal2fa_lettre::{SmtpConfig, SmtpSecurity};
//!
//! let sink = SmtpSink::start(Some(("mailer", "s3cret")));
//! let mut smtp = SmtpConfig::new("127.0.0.1", sink.port(), SmtpSecurity::Plain);
//! smtp.username = Some("mailer".into());
//! smtp.password = Some("s3cret".into());
//! // … build a LettreNotifier with `Transport::Smtp(smtp)` and send …
//! let mails = sink.wait_for(1, std::time::Duration::from_secs(5)).await;
//! let parsed = mails[0].parsed();
//! assert!(parsed.text.unwrap().contains("https://"));
//! # }
//! ```

mod mime;
mod sink;

pub use mime::{ParsedMail, decode_base64, decode_encoded_words, decode_quoted_printable};
pub use sink::{CapturedMail, SINK_SCRIPT, SmtpSink};
