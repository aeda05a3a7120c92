//! Wiring: the only place that picks adapters.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use data_encoding::{BASE64, HEXLOWER};
use modal2fa_actix::{Modal2faWeb, SecondFactorUser, TokioDelay, TokioHashPool, WebSettings};
use modal2fa_core::ports::SecretGenerator;
use modal2fa_core::system::OsRandom;
use modal2fa_core::{Modal2fa, Ports, ServerSecret};
use modal2fa_sea_orm::SeaOrmStore;

use crate::config::Config;
use modal2fa_core::ports::Notifier;
use modal2fa_core::system::TracingNotifier;
use modal2fa_lettre::LettreNotifier;

/// Connects to the database and applies pending migrations.
pub async fn store(config: &Config) -> Result<SeaOrmStore, String> {
    let store = SeaOrmStore::connect_with(&config.database_url, config.pool_options())
        .await
        .map_err(|e| format!("database_url: cannot connect: {e}"))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("migrating the database failed: {e}"))?;
    Ok(store)
}

/// The server secret: `secret` if set, else the contents of `secret_file`, created with 32
/// random bytes on first start.
pub fn secret(config: &Config) -> Result<ServerSecret, String> {
    let decode = |text: &str, key: &str| -> Result<ServerSecret, String> {
        let t = text.trim();
        let bytes = HEXLOWER
            .decode(t.to_ascii_lowercase().as_bytes())
            .or_else(|_| BASE64.decode(t.as_bytes()))
            .map_err(|_| format!("{key}: must be hex or base64"))?;
        ServerSecret::new(bytes).map_err(|e| format!("{key}: {e}"))
    };
    if let Some(s) = &config.secret {
        return decode(s, "secret");
    }
    let path = &config.secret_file;
    if let Ok(text) = std::fs::read_to_string(path) {
        return decode(&text, "secret_file");
    }
    let mut bytes = [0u8; 32];
    OsRandom.fill(&mut bytes);
    write_secret(path, &HEXLOWER.encode(&bytes))
        .map_err(|e| format!("secret_file: cannot create {}: {e}", path.display()))?;
    tracing::warn!(file = %path.display(), "generated a development secret; set `secret_file` to a managed secret in production");
    ServerSecret::new(bytes.to_vec()).map_err(|e| e.to_string())
}

fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())
}

/// The core services over the database, with no answer floor (the command-line tasks,
/// which sign nobody in).
pub fn services(config: &Config, store: SeaOrmStore) -> Result<Modal2fa, String> {
    services_with_floor(config, store, std::time::Duration::ZERO)
}

/// The answer floor of a failed sign-in for this machine, measured once at start-up (off
/// the executor): the slower of the configured scheme's verification and Django's PBKDF2
/// at 1 000 000 iterations — the legacy class a migrated Django user table holds — with
/// a margin (docs/SECURITY.md, "Timing").
pub async fn answer_floor(config: &Config) -> Result<std::time::Duration, String> {
    let scheme = config.core_settings().password_hashing;
    let measure = move || {
        modal2fa_core::password::measure_answer_floor(
            scheme,
            &[modal2fa_core::password::DJANGO_PBKDF2],
            &TokioDelay,
        )
    };
    tokio::task::spawn_blocking(measure)
        .await
        .map_err(|e| format!("measuring the answer floor: {e}"))?
        .map_err(|e| format!("measuring the answer floor: {e}"))
}

/// The core services over the database; a failed sign-in answers no sooner than `floor`.
pub fn services_with_floor(
    config: &Config,
    store: SeaOrmStore,
    floor: std::time::Duration,
) -> Result<Modal2fa, String> {
    let ports = Ports::builder(Arc::new(store))
        .notifier(notifier(config)?)
        // Hashing off the request threads: one worker per core, a bounded queue, 503 beyond.
        .hash_pool(Arc::new(TokioHashPool::for_this_machine()))
        // A failed sign-in's answer waits for its floor on a tokio timer.
        .delay(Arc::new(TokioDelay))
        .build()
        .map_err(|e| e.to_string())?;
    let settings = modal2fa_core::Settings {
        password_answer_floor: floor,
        ..config.core_settings()
    };
    Ok(Modal2fa::new(
        ports,
        Arc::new(crate::policy::ServerPolicy::new(config)),
        settings,
        &secret(config)?,
    ))
}

/// Where the outbox's sender hands messages: the configured mail transport, or the
/// [`TracingNotifier`] (which logs that a message was due) for `mail.transport = "none"`.
pub fn notifier(config: &Config) -> Result<Arc<dyn Notifier>, String> {
    let public_url = config.public_url().unwrap_or_default();
    let mail = config
        .mail
        .mail_config(
            config.insecure_http_development,
            &config.site_name,
            &public_url,
        )
        .map_err(|(key, why)| format!("{key}: {why}"))?;
    match mail {
        None => Ok(Arc::new(TracingNotifier)),
        Some(mail) => Ok(Arc::new(
            LettreNotifier::new(mail).map_err(|e| e.to_string())?,
        )),
    }
}

/// Delivers the outbox for as long as the server runs: at once when this process writes
/// a message (the services wake it), and every `poll` for retries and for messages other
/// processes wrote. A failure to reach the store is logged and retried at the next poll.
pub fn deliver_in_background(
    auth: Modal2fa,
    poll: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let wake = Arc::new(tokio::sync::Notify::new());
    let woken = wake.clone();
    auth.outbox.on_enqueue(move || woken.notify_one());
    tokio::spawn(async move {
        loop {
            match auth.outbox.deliver_all_due().await {
                Ok(d) if d.claimed > 0 => tracing::info!(
                    sent = d.sent,
                    retried = d.retried,
                    failed = d.failed,
                    "delivered notifications"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "the outbox cannot be read; retrying later")
                }
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    })
}

/// The web layer.
pub fn web_layer(config: &Config, auth: Modal2fa) -> Result<Modal2faWeb, String> {
    let settings = WebSettings {
        secure_cookies: config.secure_cookies(),
        site_name: config.site_name.clone(),
        login_redirect: config.login_redirect.clone(),
        logout_redirect: config.logout_redirect.clone(),
        appearance: config.appearance.clone(),
        template_dir: config.template_dir.clone(),
        public_url: config.public_url(),
        ..WebSettings::default()
    };
    Modal2faWeb::builder(auth)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())
}

async fn home(web: web::Data<Modal2faWeb>, req: HttpRequest) -> HttpResponse {
    web.page(&req, "demo/home.html", "Home", &serde_json::Map::new())
        .await
}

async fn protected(
    web: web::Data<Modal2faWeb>,
    req: HttpRequest,
    user: SecondFactorUser,
) -> HttpResponse {
    let mut extra = serde_json::Map::new();
    extra.insert("username".into(), user.0.user.username.to_string().into());
    extra.insert("method".into(), user.0.method.as_str().into());
    web.page(&req, "demo/protected.html", "Protected page", &extra)
        .await
}

/// An error with its sources, `: `-separated (driver text is logged, never shown).
fn chain(e: &dyn std::error::Error) -> String {
    modal2fa_core::error::source_chain(e)
}

/// Purges expired sessions, quiet lockout counters and stale enrolments every `every`,
/// for as long as the server runs; a failed purge is logged and retried next time.
pub fn purge_in_background(
    auth: Modal2fa,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match auth.maintenance.purge().await {
                Ok(p) => tracing::debug!(
                    sessions = p.sessions,
                    lockout_counters = p.lockout_counters,
                    enrolments = p.enrolments,
                    "purged expired rows"
                ),
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "the background purge failed; retrying later")
                }
            }
        }
    })
}

/// Builds the app factory's pieces and serves until stopped.
pub async fn serve(config: Config) -> Result<(), String> {
    // The floor is measured off the executor while the database connects and migrates.
    let (store, floor) = tokio::join!(store(&config), answer_floor(&config));
    let floor = floor?;
    tracing::info!(
        floor_ms = floor.as_millis(),
        "a failed sign-in answers no sooner than the measured floor"
    );
    let auth = services_with_floor(&config, store?, floor)?;
    let purge = purge_in_background(
        auth.clone(),
        std::time::Duration::from_secs(60 * u64::from(config.purge_interval_minutes.get())),
    );
    let poll = std::time::Duration::from_secs(u64::from(config.mail.outbox.poll_seconds.get()));
    let sender = deliver_in_background(auth.clone(), poll);
    let web = web_layer(&config, auth)?;
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| format!("listen: cannot bind {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let demo = config.demo;
    let server = HttpServer::new(move || {
        let w = web.clone();
        let mut app = App::new()
            .wrap(web.security_headers_everywhere())
            .wrap(web.session_middleware())
            .configure(move |c| w.configure(c));
        if demo {
            app = app
                .route("/", web::get().to(home))
                .route("/protected", web::get().to(protected));
        }
        app
    })
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    println!("modal2fa listening on http://{addr}");
    let served = server.await.map_err(|e| e.to_string());
    purge.abort();
    sender.abort();
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use modal2fa_core::machine::LoginState;
    use modal2fa_core::model::RequestContext;

    #[tokio::test]
    async fn the_server_purges_expired_sessions_in_the_background() {
        let path =
            std::env::temp_dir().join(format!("modal2fa_purge_{}.sqlite", std::process::id()));
        std::fs::remove_file(&path).ok();
        let config = Config {
            database_url: format!("sqlite://{}?mode=rwc", path.display()),
            secret_file: path.with_extension("secret"),
            session_idle_minutes: crate::config::Bounded::new(1),
            ..Config::default()
        };
        let store = store(&config).await.unwrap();
        let auth = services(&config, store.clone()).unwrap();
        let ctx = RequestContext::new("192.0.2.1".parse().unwrap(), "test", "/");
        let id = auth
            .sessions
            .create(&LoginState::Anonymous, &ctx)
            .await
            .unwrap();
        let hash = modal2fa_core::services::SessionService::id_hash(&id);
        use modal2fa_core::ports::SessionStore;
        // Expire it by hand, as a minute of idleness would.
        let mut record = store.load(&hash).await.unwrap().unwrap();
        record.expires_at = record.created_at - time::Duration::seconds(1);
        assert!(store.replace(&record).await.unwrap());
        let purge = purge_in_background(auth, std::time::Duration::from_millis(20));
        let mut gone = false;
        for _ in 0..250 {
            if store.load(&hash).await.unwrap().is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        purge.abort();
        std::fs::remove_file(&path).ok();
        std::fs::remove_file(path.with_extension("secret")).ok();
        assert!(gone, "the expired session is still stored");
    }
}
