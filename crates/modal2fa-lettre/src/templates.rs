//! The message templates: built-in defaults, overridable file by file, rendered with Tera.
//!
//! Each kind of notification (`invitation`, `password_reset`, `security_change`) has three
//! templates: `subject.txt`, `body.txt` and `body.html` (autoescaped). A file of the same
//! relative path in the templates directory replaces the built-in one; the others stay.
//!
//! Every template sees `site_name`, `base_url`, `kind`, `username`, `first_name`,
//! `last_name`, `email`, `display_name` ("first last", or the username when both are
//! empty) and `greeting_name` (the first name, or the username). Invitations and resets
//! add `link`; security notices add `event` (the kind in snake_case, as in
//! `passkey_added`), `event_text` (a sentence), `event_summary` (a few words, for the
//! subject), `at` (`2026-12-01 21:40 UTC`), `ip` (or "an unknown address") and `browser`
//! (the user agent, or "an unknown browser").

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use modal2fa_core::SecretString;
use modal2fa_core::model::{SecurityEventKind, UserId};
use modal2fa_core::ports::{Notification, Recipient};
use tera::{Context, ErrorKind, Tera};
use time::OffsetDateTime;
use time::macros::{datetime, format_description};

use crate::config::MailConfigError;

/// The kinds of notification, as template directories.
pub const KINDS: [&str; 3] = ["invitation", "password_reset", "security_change"];

/// The templates of each kind.
pub const FILES: [&str; 3] = ["subject.txt", "body.txt", "body.html"];

/// The built-in template for `kind/file`.
fn builtin(kind: &str, file: &str) -> Option<&'static str> {
    Some(match (kind, file) {
        ("invitation", "subject.txt") => include_str!("../templates/invitation/subject.txt"),
        ("invitation", "body.txt") => include_str!("../templates/invitation/body.txt"),
        ("invitation", "body.html") => include_str!("../templates/invitation/body.html"),
        ("password_reset", "subject.txt") => {
            include_str!("../templates/password_reset/subject.txt")
        }
        ("password_reset", "body.txt") => include_str!("../templates/password_reset/body.txt"),
        ("password_reset", "body.html") => {
            include_str!("../templates/password_reset/body.html")
        }
        ("security_change", "subject.txt") => {
            include_str!("../templates/security_change/subject.txt")
        }
        ("security_change", "body.txt") => {
            include_str!("../templates/security_change/body.txt")
        }
        ("security_change", "body.html") => {
            include_str!("../templates/security_change/body.html")
        }
        _ => return None,
    })
}

/// A rendered message, before it becomes MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The subject, on one line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// A template failed to render a message. It names the template and where in it, never
/// a value of the message (the link is a credential).
#[derive(Debug, Clone, thiserror::Error)]
#[error("mail template `{template}` failed to render{location}")]
pub struct RenderError {
    template: String,
    location: String,
}

impl RenderError {
    fn new(template: &str, err: &tera::Error) -> Self {
        let location = match err.kind() {
            ErrorKind::RenderingError(report) | ErrorKind::SyntaxError(report) => {
                let span = report.span();
                format!(
                    " at line {}, column {}",
                    span.start_line,
                    span.start_col + 1
                )
            }
            _ => String::new(),
        };
        Self {
            template: template.to_owned(),
            location,
        }
    }

    /// The template, as `kind/file` (`password_reset/body.html`).
    pub fn template(&self) -> &str {
        &self.template
    }
}

/// The sentence a security notice states for `kind` (`event_text` in the templates).
pub fn event_text(kind: SecurityEventKind) -> &'static str {
    use SecurityEventKind as K;
    match kind {
        K::PasskeyAdded => "A passkey was added to your account.",
        K::PasskeyRemoved => "A passkey was removed from your account.",
        K::TotpAdded => "An authenticator app was set up for your account.",
        K::TotpRemoved => "The authenticator app was removed from your account.",
        K::TrustedDeviceAdded => {
            "A device was marked as trusted: it can skip the second step of signing in for a while."
        }
        K::TrustedDeviceRemoved => "A trusted device was removed from your account.",
        K::TwoFactorRemoved => {
            "All second factors were removed from your account: signing in now takes only your password."
        }
        K::TwoFactorResetByAdmin => {
            "An administrator reset the second factors of your account: you will be asked to set one up again."
        }
        K::PasswordChanged => "The password of your account was changed.",
        K::CodeReplayed => {
            "A sign-in code that had already been used was entered again. Someone may have seen one of your codes."
        }
        K::SecondFactorFailures => {
            "Someone entered your password correctly, then failed the second step of signing in too many times. Your password may be known to someone else."
        }
        K::TrustedDeviceCookieReused => {
            "An outdated trusted-device token of your account was presented. It may have been copied from one of your devices."
        }
        K::RecoveryCodeUsed => "A recovery code was used to sign in to your account.",
        K::RecoveryCodesGenerated => {
            "A new set of recovery codes was generated for your account; the earlier codes no longer work."
        }
        K::SecondFactorNotCompleted => {
            "Someone entered your password correctly but did not complete the second step of signing in. If this was not you, change your password."
        }
        K::AccountLocked => {
            "Too many failed sign-ins locked your account for a while. Someone may be trying to guess your password."
        }
        K::PasskeyCounterRegressed => {
            "A passkey answered with a signature counter that went backwards, so it may have been cloned. The sign-in was refused."
        }
    }
}

/// A few words for `kind`, for the subject of a security notice (`event_summary`).
pub fn event_summary(kind: SecurityEventKind) -> &'static str {
    use SecurityEventKind as K;
    match kind {
        K::PasskeyAdded => "passkey added",
        K::PasskeyRemoved => "passkey removed",
        K::TotpAdded => "authenticator app set up",
        K::TotpRemoved => "authenticator app removed",
        K::TrustedDeviceAdded => "new trusted device",
        K::TrustedDeviceRemoved => "trusted device removed",
        K::TwoFactorRemoved => "two-factor authentication turned off",
        K::TwoFactorResetByAdmin => "two-factor authentication reset",
        K::PasswordChanged => "password changed",
        K::CodeReplayed => "a sign-in code was reused",
        K::SecondFactorFailures => "failed second-step attempts",
        K::TrustedDeviceCookieReused => "old trusted-device token used",
        K::RecoveryCodeUsed => "recovery code used",
        K::RecoveryCodesGenerated => "new recovery codes",
        K::SecondFactorNotCompleted => "sign-in with your password not completed",
        K::AccountLocked => "account locked after failed sign-ins",
        K::PasskeyCounterRegressed => "passkey may be cloned",
    }
}

/// The name to show for a recipient: "first last", or the username when both are empty.
pub fn display_name(to: &Recipient) -> String {
    let full = format!("{} {}", to.first_name.trim(), to.last_name.trim());
    let full = full.trim();
    if full.is_empty() {
        to.username.clone()
    } else {
        full.to_owned()
    }
}

/// `s` on one line: control characters (CR and LF among them) and runs of whitespace
/// become one space, and the ends are trimmed. Subjects go through it (a line break in
/// a header would let a template or a value inject headers).
pub fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The compiled templates of every kind, with the site's name and URL.
#[derive(Clone)]
pub struct Templates {
    tera: Tera,
    site_name: String,
    base_url: String,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("site_name", &self.site_name)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The built-in templates, with overrides from `dir` if given.
    ///
    /// Every template is parsed and rendered once with a sample message, so a broken
    /// override is refused here, naming its file, rather than when a message is sent.
    pub fn new(
        site_name: impl Into<String>,
        base_url: impl Into<String>,
        dir: Option<&Path>,
    ) -> Result<Self, MailConfigError> {
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            return Err(MailConfigError::TemplatesDir {
                path: dir.to_owned(),
            });
        }
        let mut tera = Tera::new();
        tera.autoescape_on([".html"]);
        let mut origins = Vec::new();
        for kind in KINDS {
            for file in FILES {
                let name = format!("{kind}/{file}");
                let (origin, source) = match dir.map(|d| d.join(kind).join(file)) {
                    Some(path) => match read_override(&path)? {
                        Some(source) => (path.display().to_string(), source),
                        None => builtin_source(&name, kind, file),
                    },
                    None => builtin_source(&name, kind, file),
                };
                tera.add_raw_template(&name, &source)
                    .map_err(|e| MailConfigError::Template {
                        template: origin.clone(),
                        reason: e.to_string(),
                    })?;
                origins.push((name, origin));
            }
        }
        if let Some(dir) = dir {
            warn_unknown_files(dir);
        }
        let templates = Self {
            tera,
            site_name: site_name.into(),
            base_url: base_url.into(),
        };
        for sample in samples() {
            let context = templates.context(&sample);
            for file in FILES {
                let name = format!("{}/{file}", sample.kind_name());
                if let Err(e) = templates.tera.render(&name, &context) {
                    let origin = origins
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map_or(name.clone(), |(_, o)| o.clone());
                    return Err(MailConfigError::Template {
                        template: origin,
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(templates)
    }

    /// Renders `notification`: its subject (on one line), text and HTML bodies.
    pub fn render(&self, notification: &Notification) -> Result<RenderedMail, RenderError> {
        let context = self.context(notification);
        let kind = notification.kind_name();
        let render = |file: &str| {
            let name = format!("{kind}/{file}");
            self.tera
                .render(&name, &context)
                .map_err(|e| RenderError::new(&name, &e))
        };
        Ok(RenderedMail {
            subject: one_line(&render("subject.txt")?),
            text: render("body.txt")?,
            html: render("body.html")?,
        })
    }

    /// The site's name the templates show.
    pub fn site_name(&self) -> &str {
        &self.site_name
    }

    fn context(&self, notification: &Notification) -> Context {
        let to = notification.recipient();
        let mut c = Context::new();
        c.insert("site_name", &self.site_name);
        c.insert("base_url", &self.base_url);
        c.insert("kind", notification.kind_name());
        c.insert("username", &to.username);
        c.insert("first_name", &to.first_name);
        c.insert("last_name", &to.last_name);
        c.insert("email", &to.email);
        c.insert("display_name", &display_name(to));
        let greeting = match to.first_name.trim() {
            "" => to.username.as_str(),
            first => first,
        };
        c.insert("greeting_name", greeting);
        match notification {
            Notification::Invitation { link, .. } | Notification::PasswordReset { link, .. } => {
                c.insert("link", link.expose());
            }
            Notification::SecurityChange {
                kind,
                at,
                ip,
                user_agent,
                ..
            } => {
                c.insert("event", kind);
                c.insert("event_text", event_text(*kind));
                c.insert("event_summary", event_summary(*kind));
                c.insert("at", &format_at(*at));
                c.insert(
                    "ip",
                    &ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string()),
                );
                let browser = match user_agent.trim() {
                    "" => "an unknown browser",
                    ua => ua,
                };
                c.insert("browser", browser);
            }
        }
        c
    }
}

/// `at` in UTC, to the minute: `2026-12-01 21:40 UTC`.
pub fn format_at(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// One message of each kind with every variable set, to try the templates on.
fn samples() -> [Notification; 3] {
    let to = Recipient {
        user_id: UserId(1),
        username: "sample".into(),
        first_name: "Sam".into(),
        last_name: "Ple".into(),
        email: "sample@example.com".into(),
    };
    let link = SecretString::new("https://example.com/sample-link");
    [
        Notification::Invitation {
            to: to.clone(),
            link: link.clone(),
        },
        Notification::PasswordReset {
            to: to.clone(),
            link,
        },
        Notification::SecurityChange {
            to,
            kind: SecurityEventKind::PasswordChanged,
            at: datetime!(2026-01-01 00:00 UTC),
            ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            user_agent: "Sample browser".into(),
        },
    ]
}

/// The override at `path`, `None` when there is none.
fn read_override(path: &Path) -> Result<Option<String>, MailConfigError> {
    let read_error = |source| MailConfigError::TemplateRead {
        path: path.to_owned(),
        source,
    };
    if !path.try_exists().map_err(read_error)? {
        return Ok(None);
    }
    std::fs::read_to_string(path).map(Some).map_err(read_error)
}

/// The built-in template `name` (`kind/file`), with how errors name it.
fn builtin_source(name: &str, kind: &str, file: &str) -> (String, String) {
    let source = builtin(kind, file).unwrap_or_default();
    (format!("built-in {name}"), source.to_owned())
}

/// Logs the entries of `dir` that no template reads (a misspelt name is otherwise
/// silently ignored).
fn warn_unknown_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !KINDS.contains(&name.as_str()) {
            tracing::warn!(path = %path.display(), "mail templates_dir: unknown entry ignored");
            continue;
        }
        let Ok(files) = std::fs::read_dir(&path) else {
            continue;
        };
        for file in files.flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            if !FILES.contains(&file_name.as_str()) {
                tracing::warn!(
                    path = %file.path().display(),
                    "mail templates_dir: unknown template ignored"
                );
            }
        }
    }
}
