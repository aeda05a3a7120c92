//! The command line end to end: configuration errors, migrate, user create with the
//! password on standard input and nothing but its result printed, clear-failed-logins,
//! and serve.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    pub(crate) fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("modal2fa-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub(crate) fn config(&self, extra: &str) -> PathBuf {
        let path = self.0.join("modal2fa.toml");
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{}/db.sqlite?mode=rwc\"\nsecret_file = \"{}/secret\"\nallow_weak_password_hashing = true\npassword_hashing = {{ algorithm = \"pbkdf2_sha256\", iterations = 1000 }}\n{extra}",
                self.0.display(),
                self.0.display()
            ),
        )
        .unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn modal2fa(config: &PathBuf, args: &[&str], stdin: &str) -> (i32, String, String) {
    modal2fa_with_env(config, args, stdin, &[])
}

/// Runs the binary with `env` added to an environment without log filters.
pub(crate) fn modal2fa_with_env(
    config: &PathBuf,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modal2fa"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MODAL2FA_CONFIG")
        .env_remove("MODAL2FA_LOG")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn an_unknown_key_or_invalid_value_stops_start_up_naming_the_key() {
    let d = Dir::new("bad");
    let (code, _, err) = modal2fa(&d.config("colour = \"red\"\n"), &["migrate"], "");
    assert_eq!(code, 1);
    assert!(err.contains("colour"), "{err}");
    let (code, _, err) = modal2fa(
        &d.config("[lockout]\nip_failed_attempts = 0\n"),
        &["migrate"],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("lockout.ip_failed_attempts"), "{err}");
    let (code, _, err) = modal2fa_with_env(
        &d.config(""),
        &["migrate"],
        "",
        &[("MODAL2FA_LOCKOUT__IP_FAILED_ATTEMPTS", "0")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("lockout.ip_failed_attempts (MODAL2FA_LOCKOUT__IP_FAILED_ATTEMPTS)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn user_create_prints_only_its_result_and_no_server_logs() {
    let d = Dir::new("quiet");
    let cfg = d.config("");
    let (code, out, err) = modal2fa(&cfg, &["user", "create", "bob"], "a good long password\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("created user bob (id "), "{out}");
    assert!(
        !err.contains("INFO") && !err.contains("migration"),
        "no INFO lines on standard error: {err}"
    );
    let (code, _, err) = modal2fa_with_env(
        &cfg,
        &["user", "create", "carol"],
        "a good long password\n",
        &[("RUST_LOG", "info")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("INFO"), "RUST_LOG asks for more: {err}");
}

#[test]
fn users_are_created_with_the_password_from_standard_input_and_lockouts_cleared() {
    let d = Dir::new("users");
    let cfg = d.config("");
    let (code, out, err) = modal2fa(&cfg, &["migrate"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("migrations applied"));
    assert_eq!(
        modal2fa(&cfg, &["migrate"], "").0,
        0,
        "migrating twice is fine"
    );
    let (code, out, err) = modal2fa(
        &cfg,
        &[
            "user",
            "create",
            "admin",
            "--email",
            "admin@example.com",
            "--superuser",
        ],
        "a good long password\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created user admin"));
    assert!(
        !out.contains("a good long password") && !err.contains("a good long password"),
        "the password is never echoed"
    );
    let (code, _, err) = modal2fa(&cfg, &["user", "create", "admin"], "another password\n");
    assert_eq!(code, 1);
    assert!(err.contains("taken"), "{err}");
    let (code, _, err) = modal2fa(&cfg, &["user", "create", "shorty"], "short\n");
    assert_eq!(code, 1);
    assert!(err.contains("at least 8"), "{err}");
    let (code, out, _) = modal2fa(&cfg, &["clear-failed-logins"], "");
    assert_eq!(code, 0);
    assert!(out.contains("removed 0"));
    let (code, out, _) = modal2fa(&cfg, &["clear-failed-logins", "admin"], "");
    assert_eq!(code, 0);
    assert!(out.contains("removed 0"));
    assert!(
        std::fs::read_to_string(d.0.join("secret"))
            .unwrap()
            .trim()
            .len()
            >= 64,
        "a development secret was generated"
    );
}

/// Starts `serve` with `cfg`, GETs each of `paths` over plain http, stops the server;
/// the answers (status line, headers and body) and what it logged.
/// `modal2fa serve` with `env` (and no log filter), its standard error to `stderr`, once
/// it listens: the process and its port.
pub(crate) fn start_serve(cfg: &PathBuf, env: &[(&str, &str)], stderr: Stdio) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modal2fa"))
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .env_remove("MODAL2FA_CONFIG")
        .env_remove("MODAL2FA_LOG")
        .env_remove("RUST_LOG")
        .env_remove("MODAL2FA_INSECURE_HTTP_DEVELOPMENT")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{line}"));
    (child, port)
}

fn serve_and_get(cfg: &PathBuf, paths: &[&str]) -> (Vec<String>, String) {
    let (mut child, port) = start_serve(cfg, &[], Stdio::piped());
    let answers = paths.iter().map(|p| http_get(port, p)).collect();
    child.kill().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();
    (answers, log)
}

#[test]
fn serve_answers_the_demo_home_page_and_the_login_modal() {
    let d = Dir::new("serve");
    let cfg = d.config("insecure_http_development = true\n");
    let (answers, log) = serve_and_get(&cfg, &["/", "/auth/login/", "/protected"]);
    let [home, login, protected] = &answers[..] else {
        unreachable!()
    };
    assert!(
        log.contains("WARN") && log.contains("allow_weak_password_hashing is on"),
        "serve warns that the hash cost floor is lifted: {log}"
    );
    assert!(home.starts_with("HTTP/1.1 200"), "{home}");
    assert!(
        home.contains("Sign in")
            && home
                .to_lowercase()
                .contains("content-security-policy: default-src 'self'"),
        "{home}"
    );
    assert!(login.contains("name=\"password\""));
    assert!(protected.starts_with("HTTP/1.1 303"), "{protected}");
    assert!(
        protected
            .to_lowercase()
            .contains("location: /auth/login/?next=/protected"),
        "{protected}"
    );
    assert!(
        !home.contains("modal2fa_session") && !home.contains("__Host-modal2fa="),
        "an anonymous visit starts no session: {home}"
    );
}

/// The `Set-Cookie` lines of an answer.
fn set_cookies(answer: &str) -> Vec<&str> {
    answer
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.trim())
        .collect()
}

#[test]
fn serve_for_plain_http_development_warns_that_cookies_are_not_secure() {
    let d = Dir::new("insecure");
    let (answers, log) = serve_and_get(&d.config("insecure_http_development = true\n"), &["/"]);
    assert!(
        log.contains("WARN")
            && log.contains("insecure_http_development is on")
            && log.contains("not Secure")
            && log.contains("local development only"),
        "{log}"
    );
    assert!(
        !answers[0]
            .to_lowercase()
            .contains("strict-transport-security"),
        "no HSTS over plain http: {}",
        answers[0]
    );
    let cookies = set_cookies(&answers[0]);
    assert!(
        matches!(&cookies[..], [c] if c.starts_with("modal2fa_csrf=") && !c.contains("Secure")),
        "only the CSRF nonce cookie, plain: {cookies:?}"
    );
}

#[test]
fn serve_on_a_loopback_address_is_secure_by_default() {
    let d = Dir::new("secure");
    let (answers, log) = serve_and_get(&d.config(""), &["/"]);
    assert!(!log.contains("insecure_http_development"), "{log}");
    assert!(
        answers[0]
            .to_lowercase()
            .contains("strict-transport-security: max-age="),
        "HSTS although the listener is 127.0.0.1: {}",
        answers[0]
    );
    let cookies = set_cookies(&answers[0]);
    assert!(
        matches!(&cookies[..], [c] if c.starts_with("__Host-modal2fa_csrf=")
            && c.contains("Secure")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")
            && c.contains("Path=/")),
        "the CSRF nonce cookie, Secure and __Host-: {cookies:?}"
    );
}
