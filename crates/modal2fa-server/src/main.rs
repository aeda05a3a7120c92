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
mod notifier;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use modal2fa_core::SecretString;
use modal2fa_core::services::NewAccount;

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
}

fn read_password() -> Result<SecretString, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Password (again): ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the passwords differ".into());
        }
        Ok(first.into())
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned().into())
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let env = std::env::vars_os().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    });
    let config = config::load(cli.config.as_deref(), env).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Serve => {
            if config.allow_weak_password_hashing {
                tracing::warn!(
                    "allow_weak_password_hashing is on: password hashes may be cheap to crack; \
                     use it for benchmarks and tests only"
                );
            }
            app::serve(config).await
        }
        Command::Migrate => {
            app::store(&config).await?;
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
            let auth = app::services(&config, app::store(&config).await?)?;
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
                .map_err(|e| e.to_string())?;
            println!("created user {} (id {})", user.username, user.id);
            Ok(())
        }
        Command::ClearFailedLogins { target } => {
            let auth = app::services(&config, app::store(&config).await?)?;
            let n = auth
                .admin
                .clear_failed_logins(target.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            println!("removed {n} failed-login record(s)");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let filter = std::env::var("MODAL2FA_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modal2fa: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("modal2fa: {e}");
            ExitCode::FAILURE
        }
    }
}
