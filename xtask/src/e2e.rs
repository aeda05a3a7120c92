//! `cargo xtask e2e`: the browser end-to-end tests.
//!
//! Builds the reference server (`modal2fa`), gives it a fresh SQLite database and secret in
//! a temporary folder, creates the test users (`alice`, `bob`, `carol`; one per test, so the
//! tests never share an account), starts `modal2fa serve` on a free loopback port and runs
//! `node --test` in `web-assets/e2e/` against `http://localhost:PORT` (WebAuthn refuses
//! `127.0.0.1`). The tests drive Debian's headless Chromium (`$CHROMIUM`, default
//! `/usr/bin/chromium`) with playwright-core; their output is passed through.
//!
//! Mail goes to `.eml` files in the temporary folder (`mail.transport = "file"`), which
//! the tests read (`$E2E_MAIL_DIR`); they run `modal2fa user invite` themselves
//! (`$E2E_MODAL2FA`, `$E2E_CONFIG`).
//!
//! Screenshots of every modal go to `target/e2e/screenshots/` (`$E2E_SCREENSHOT_DIR`
//! overrides) and the server's log to `target/e2e/server.log`. The server is stopped and
//! the temporary folder removed however the tests end.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The password of every test user (the tests know it too).
const PASSWORD: &str = "correct horse battery";

/// `(username, first name)`: the first name is the display name the menu shows.
const USERS: &[(&str, &str)] = &[
    ("alice", "Alice"),
    ("bob", "Bob"),
    ("carol", "Carol"),
    ("dave", "Dave"),
    ("erin", "Erin"),
    ("frank", "Frank"),
];

/// How long the server may take to print its address.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the browser tests; an error says what failed.
pub fn run() -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent folder")?
        .to_path_buf();
    let suite = root.join("web-assets/e2e");

    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        return Err(format!(
            "no Chromium at {}: install it with `apt-get install chromium` (or point $CHROMIUM at one)",
            chromium.display()
        ));
    }
    check_node()?;

    let server = build_server(&root)?;
    let out = root.join("target/e2e");
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let screenshots = std::env::var_os("E2E_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| out.join("screenshots"));

    let tmp = TempDir::new()?;
    let result = (|| {
        let config = write_config(&tmp.0)?;
        for (username, first_name) in USERS {
            create_user(&server, &config, username, first_name)?;
        }
        let log = out.join("server.log");
        let (running, port) = start_server(&server, &config, &log)?;
        let base_url = format!("http://localhost:{port}");
        println!("e2e: modal2fa serves {base_url} (log: {})", log.display());
        install_packages(&suite)?;
        let mail = MailSetup {
            dir: tmp.0.join("mail"),
            server: server.clone(),
            config: config.clone(),
        };
        let status = run_tests(&suite, &base_url, &chromium, &screenshots, &mail);
        drop(running);
        let status = status?;
        if status.success() {
            println!("e2e: screenshots in {}", screenshots.display());
            Ok(())
        } else {
            Err(format!(
                "the browser tests failed ({status}); screenshots in {}, server log in {}",
                screenshots.display(),
                log.display()
            ))
        }
    })();
    drop(tmp);
    result
}

fn check_node() -> Result<(), String> {
    let out = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run node ({e}): install Node.js 20 or later"))?;
    let version = String::from_utf8_lossy(&out.stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if !out.status.success() || major < 20 {
        return Err(format!(
            "node {} is too old: the tests need Node.js 20 or later",
            version.trim()
        ));
    }
    Ok(())
}

/// `cargo build -p modal2fa-server`; returns the `modal2fa` executable.
fn build_server(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("e2e: cargo build -p modal2fa-server");
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "-p",
            "modal2fa-server",
            "--bin",
            "modal2fa",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err("cargo build -p modal2fa-server failed".into());
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "modal2fa")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built no `modal2fa` executable".into())
}

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("modal2fa-e2e-{}-{nanos:08x}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The configuration of the server under test: a free port chosen now (the passkeys'
/// origin names it, so it cannot be left to the server), plain-http development, the demo
/// pages, and passkeys for `http://localhost:PORT`.
fn write_config(dir: &Path) -> Result<PathBuf, String> {
    let dir_text = dir
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", dir.display()))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\n\
         database_url = {}\n\
         secret_file = {}\n\
         insecure_http_development = true\n\
         demo = true\n\
         public_url = \"http://localhost:{port}\"\n\
         [webauthn]\n\
         origin = \"http://localhost:{port}\"\n\
         user_verification = \"preferred\"\n\
         [mail]\n\
         transport = \"file\"\n\
         file_dir = {}\n",
        toml_string(&format!("sqlite://{dir_text}/e2e.sqlite?mode=rwc")),
        toml_string(&format!("{dir_text}/secret")),
        toml_string(&format!("{dir_text}/mail")),
    );
    let mail = dir.join("mail");
    fs::create_dir_all(&mail).map_err(|e| format!("cannot create {}: {e}", mail.display()))?;
    let path = dir.join("modal2fa.toml");
    fs::write(&path, config).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn create_user(
    server: &Path,
    config: &Path,
    username: &str,
    first_name: &str,
) -> Result<(), String> {
    let mut child = Command::new(server)
        .arg("--config")
        .arg(config)
        .args(["user", "create", username, "--email"])
        .arg(format!("{username}@example.com"))
        .args(["--first-name", first_name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", server.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .map_err(|e| format!("cannot write the password for {username}: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("modal2fa user create {username}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "modal2fa user create {username} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// The running server: stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            for _ in 0..50 {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `modal2fa serve` (its log to `log`) and waits for its
/// `modal2fa listening on http://127.0.0.1:PORT` line.
fn start_server(server: &Path, config: &Path, log: &Path) -> Result<(Server, u16), String> {
    let log_file =
        fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let child = Command::new(server)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {} serve: {e}", server.display()))?;
    let mut running = Server(child);
    let stdout = running.0.stdout.take().ok_or("no stdout from the server")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = line.trim();
                    if let Some(port) = text
                        .strip_prefix("modal2fa listening on http://127.0.0.1:")
                        .and_then(|p| p.parse::<u16>().ok())
                    {
                        let _ = tx.send(port);
                        break;
                    }
                    println!("e2e: server: {text}");
                }
            }
        }
        // Keep draining so that the server never blocks on a full pipe.
        let _ = std::io::copy(&mut reader.into_inner(), &mut std::io::sink());
    });
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(port) => Ok((running, port)),
        Err(_) => {
            let status = running.0.try_wait().ok().flatten();
            drop(running);
            let mut text = String::new();
            let _ = fs::File::open(log).and_then(|mut f| f.read_to_string(&mut text));
            Err(format!(
                "the server did not print `modal2fa listening on http://127.0.0.1:PORT` {}; its log:\n{text}",
                match status {
                    Some(s) => format!("(it exited: {s})"),
                    None => format!("within {} s", READY_TIMEOUT.as_secs()),
                }
            ))
        }
    }
}

/// `npm ci` (or `npm install` without a lock file) when `node_modules` is missing.
fn install_packages(suite: &Path) -> Result<(), String> {
    if suite.join("node_modules").is_dir() {
        return Ok(());
    }
    let verb = if suite.join("package-lock.json").is_file() {
        "ci"
    } else {
        "install"
    };
    println!("e2e: npm {verb} in {}", suite.display());
    let status = Command::new("npm")
        .current_dir(suite)
        .args([verb, "--no-audit", "--no-fund"])
        .status()
        .map_err(|e| format!("cannot run npm ({e}): install Node.js 20 or later"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("npm {verb} failed ({status})"))
    }
}

/// What the mail tests need: the folder the server writes `.eml` files to, and the
/// server's executable and configuration (to run `user invite`).
struct MailSetup {
    dir: PathBuf,
    server: PathBuf,
    config: PathBuf,
}

fn run_tests(
    suite: &Path,
    base_url: &str,
    chromium: &Path,
    screenshots: &Path,
    mail: &MailSetup,
) -> Result<ExitStatus, String> {
    println!("e2e: node --test in {}", suite.display());
    Command::new("node")
        .current_dir(suite)
        .args(["--test", "--test-reporter=spec", "--test-concurrency=3"])
        .env("E2E_BASE_URL", base_url)
        .env("CHROMIUM", chromium)
        .env("E2E_SCREENSHOT_DIR", screenshots)
        .env("E2E_MAIL_DIR", &mail.dir)
        .env("E2E_MODAL2FA", &mail.server)
        .env("E2E_CONFIG", &mail.config)
        .status()
        .map_err(|e| format!("cannot run node: {e}"))
}
