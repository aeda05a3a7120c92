//! `modal2fa`: the reference server and its administration commands.
//!
//! ```text
//! modal2fa [--config FILE] serve
//! modal2fa [--config FILE] migrate
//! modal2fa [--config FILE] user create USERNAME [--email E] [--first-name F] [--last-name L] [--superuser]
//! modal2fa [--config FILE] clear-failed-logins [IP-OR-USERNAME]
//! ```

mod app;
mod config;
mod policy;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use modal2fa_core::SecretString;
use modal2fa_core::ServiceError;
use modal2fa_core::machine::Refusal;
use modal2fa_core::model::RequestContext;
use modal2fa_core::ports::ConflictKind;
use modal2fa_core::services::{InviteRequest, NewAccount};

/// The modal2fa reference server.
#[derive(Parser)]
#[command(name = "modal2fa", version, about)]
struct Cli {
    /// Configuration file (TOML); `MODAL2FA_*` environment variables override it.
    #[arg(long, global = true, env = "MODAL2FA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve.
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// With no argument remove expired failure counters; with an IP or a username remove
    /// that key's counter, lifting its lock.
    ClearFailedLogins {
        /// An IP address or a username.
        target: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from a prompt, or from standard input when it
    /// is not a terminal — never from the command line.
    Create {
        /// Login name.
        username: String,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Given name.
        #[arg(long, default_value = "")]
        first_name: String,
        /// Family name.
        #[arg(long, default_value = "")]
        last_name: String,
        /// Make the user a superuser (admin tools).
        #[arg(long)]
        superuser: bool,
    },
    /// Invite someone by email: creates the user (username = email) unless it exists
    /// without a password, and emails a "set your password" link, sent at once.
    Invite {
        /// Email address; it becomes the username.
        email: String,
        /// Given name.
        #[arg(long, default_value = "")]
        first_name: String,
        /// Family name.
        #[arg(long, default_value = "")]
        last_name: String,
    },
}

fn read_password() -> anyhow::Result<SecretString> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Password (again): ")?;
        anyhow::ensure!(first == second, "the passwords differ");
        Ok(first.into())
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned().into())
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = std::env::vars_os().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    });
    let config = config::load(cli.config.as_deref(), env)?;
    // `app` reports its errors as strings for now.
    let store = async || app::store(&config).await.map_err(anyhow::Error::msg);
    match cli.command {
        Command::Serve => {
            if config.allow_weak_password_hashing {
                tracing::warn!(
                    "allow_weak_password_hashing is on: password hashes may be cheap to crack; \
                     use it for benchmarks and tests only"
                );
            }
            if config.insecure_http_development {
                tracing::warn!(
                    "{} is on: cookies are not Secure and have no __Host- prefix, and there is \
                     no HSTS; for local development only, over plain http on this machine",
                    config::INSECURE_HTTP_DEVELOPMENT
                );
            }
            app::serve(config).await.map_err(anyhow::Error::msg)
        }
        Command::Migrate => {
            store().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    email,
                    first_name,
                    last_name,
                    superuser,
                },
        } => {
            let password = read_password()?;
            let auth = app::services(&config, store().await?).map_err(anyhow::Error::msg)?;
            let user = auth
                .account
                .create_user(NewAccount {
                    username,
                    email,
                    first_name,
                    last_name,
                    password: Some(password),
                    superuser,
                })
                .await
                .map_err(command_error)?;
            println!("created user {} (id {})", user.username, user.id);
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Invite {
                    email,
                    first_name,
                    last_name,
                },
        } => invite(&config, store().await?, email, first_name, last_name).await,
        Command::ClearFailedLogins { target } => {
            let auth = app::services(&config, store().await?).map_err(anyhow::Error::msg)?;
            let n = auth
                .admin
                .clear_failed_logins(target.as_deref())
                .await
                .map_err(command_error)?;
            println!("removed {n} failed-login record(s)");
            Ok(())
        }
    }
}

/// `user invite`: writes the invitation to the outbox, then delivers it (a running server
/// would too, at its next poll).
async fn invite(
    config: &config::Config,
    store: modal2fa_sea_orm::SeaOrmStore,
    email: String,
    first_name: String,
    last_name: String,
) -> anyhow::Result<()> {
    let public_url = config.public_url().context(
        "public_url is not set: invitation links need the site's public URL (e.g. https://app.example.com)",
    )?;
    let auth = app::services(config, store).map_err(anyhow::Error::msg)?;
    let web = modal2fa_actix::WebSettings {
        public_url: Some(public_url),
        ..modal2fa_actix::WebSettings::default()
    };
    let base = web
        .link_base("auth:invitation")
        .context("no invitation route")?;
    let ctx = RequestContext::new(std::net::Ipv4Addr::LOCALHOST.into(), "modal2fa-cli", "");
    let request = InviteRequest {
        email,
        first_name,
        last_name,
    };
    let user = auth
        .account
        .send_invitation(request, &base, Some("(command line)"), &ctx)
        .await
        .map_err(command_error)?;
    let sent = auth.outbox.deliver_all_due().await.map_err(command_error)?;
    let transport = config.mail.transport_kind(config.insecure_http_development);
    if transport == config::mail::TransportKind::None {
        println!(
            "invited {} (id {}), but mail.transport is \"none\": no email was sent",
            user.username, user.id
        );
    } else if sent.failed > 0 {
        anyhow::bail!(
            "created {} (id {}), but the mail server refused the invitation (the log above says why); \
             fix the mail settings and run `user invite` again",
            user.username,
            user.id
        );
    } else if sent.sent > 0 {
        println!(
            "invited {} (id {}): the invitation was sent",
            user.username, user.id
        );
    } else {
        println!(
            "invited {} (id {}): the invitation waits in the outbox (sending failed; a running server retries it)",
            user.username, user.id
        );
    }
    Ok(())
}

/// The command line's wording of a service error: what the operator can act on, in a
/// sentence; infrastructure failures with their cause chain.
fn command_error(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Conflict(ConflictKind::Username) => anyhow::anyhow!("the username is taken"),
        ServiceError::Refused(Refusal::Invalid(field)) => anyhow::anyhow!("{field}"),
        ServiceError::NotFound => anyhow::anyhow!("no such user"),
        other => anyhow::Error::new(other),
    }
}

/// Logs go to standard error, filtered by `MODAL2FA_LOG`, else `RUST_LOG`, else `info` for
/// `serve` and `warn` for the administration commands (which print their result, not the
/// server's progress).
fn init_logging(command: &Command) {
    let default = match command {
        Command::Serve => "info",
        _ => "warn",
    };
    let filter = ["MODAL2FA_LOG", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| default.to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("modal2fa: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
