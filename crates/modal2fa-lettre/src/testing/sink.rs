//! The SMTP sink: `tests/smtp_capture.py` (aiosmtpd) run as a child process.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::ParsedMail;

/// The sink's Python script (`tests/smtp_capture.py`): `smtp_capture.py HOST PORT OUTDIR
/// [USER PASS]` writes every message to `OUTDIR/<n>.eml` and its envelope to
/// `OUTDIR/<n>.json`.
pub const SINK_SCRIPT: &str = include_str!("../../tests/smtp_capture.py");

/// The interpreter the sink runs on (Debian's, where `python3-aiosmtpd` installs).
const PYTHON: &str = "/usr/bin/python3";

/// How long `start` waits for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedMail {
    /// The envelope: `{"mail_from": …, "rcpt_tos": […], "auth_user": … | null}`.
    pub envelope_json: serde_json::Value,
    /// The message as received (after `DATA`, dot-unstuffed).
    pub raw: Vec<u8>,
}

impl CapturedMail {
    /// The envelope sender (`MAIL FROM`).
    pub fn mail_from(&self) -> Option<&str> {
        self.envelope_json["mail_from"].as_str()
    }

    /// The envelope recipients (`RCPT TO`).
    pub fn rcpt_tos(&self) -> Vec<String> {
        self.envelope_json["rcpt_tos"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The login the client authenticated with, if it did.
    pub fn auth_user(&self) -> Option<&str> {
        self.envelope_json["auth_user"].as_str()
    }

    /// The message read back (headers and decoded parts). Panics if it cannot be read.
    pub fn parsed(&self) -> ParsedMail {
        ParsedMail::parse(&self.raw)
            .unwrap_or_else(|e| panic!("SMTP sink: a captured message cannot be read: {e}"))
    }
}

/// A running SMTP server on `127.0.0.1` that keeps what it receives. Stopped, and its
/// directory removed, when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    /// Starts the sink on a free port; with `auth`, clients must log in (AUTH PLAIN or
    /// LOGIN, over the plain connection) with that username and password. Waits (up to
    /// 10 s) until the port accepts connections.
    ///
    /// # Panics
    ///
    /// When `/usr/bin/python3` cannot import `aiosmtpd` (the message says to
    /// `apt-get install python3-aiosmtpd`), or the server does not come up.
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        check_python();
        let dir = unique_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("SMTP sink: cannot create {}: {e}", dir.display()));
        let script = dir.join("smtp_capture.py");
        std::fs::write(&script, SINK_SCRIPT)
            .unwrap_or_else(|e| panic!("SMTP sink: cannot write {}: {e}", script.display()));
        let mut last_error = String::new();
        // The free port is found by binding and releasing it, so another process may take
        // it in between: try a few.
        for _ in 0..3 {
            match spawn(&dir, &script, auth) {
                Ok((child, port)) => return Self { child, port, dir },
                Err(e) => last_error = e,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("SMTP sink did not start: {last_error}");
    }

    /// The port it listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory the messages are written to.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.join("mail")
    }

    /// What the server printed (its start line, Python errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sink.log")).unwrap_or_default()
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<CapturedMail> {
        let dir = self.mail_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let raw = std::fs::read(&eml)
                    .unwrap_or_else(|e| panic!("SMTP sink: cannot read {}: {e}", eml.display()));
                let json =
                    std::fs::read_to_string(eml.with_extension("json")).unwrap_or_else(|e| {
                        panic!("SMTP sink: no envelope for {}: {e}", eml.display())
                    });
                let envelope_json = serde_json::from_str(&json).unwrap_or_else(|e| {
                    panic!("SMTP sink: bad envelope for {}: {e}", eml.display())
                });
                CapturedMail { envelope_json, raw }
            })
            .collect()
    }

    /// Waits (on the Tokio timer, so other tasks keep running) until at least `n`
    /// messages were accepted, and returns them all.
    ///
    /// # Panics
    ///
    /// When fewer than `n` arrived within `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<CapturedMail> {
        let start = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if start.elapsed() >= timeout {
                panic!(
                    "SMTP sink: {} of {n} messages arrived within {timeout:?}; log:\n{}",
                    messages.len(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        // SIGTERM first (the script stops its server cleanly), SIGKILL if it lingers.
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Panics, saying what to install, unless the interpreter can import aiosmtpd.
fn check_python() {
    let out = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd.controller"])
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "the SMTP tests need aiosmtpd for {PYTHON}, which cannot import it: \
             install it with `apt-get install python3-aiosmtpd` ({})",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "the SMTP tests need {PYTHON} with aiosmtpd, and it cannot be run ({e}): \
             install them with `apt-get install python3 python3-aiosmtpd`"
        ),
    }
}

/// A new directory name under the system's temporary directory.
fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "modal2fa-smtp-sink-{}-{}-{nanos:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs the script on a free port and waits until it accepts connections.
fn spawn(dir: &Path, script: &Path, auth: Option<(&str, &str)>) -> Result<(Child, u16), String> {
    let port = free_port()?;
    let log_path = dir.join("sink.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create log: {e}"))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot share log: {e}"))?;
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .arg(dir.join("mail"));
    if let Some((user, pass)) = auth {
        cmd.arg(user).arg(pass);
    }
    let mut child = cmd
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "the server exited ({status}) on port {port}:\n{log}"
            ));
        }
        let printed = std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("smtp sink on"));
        if printed && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok((child, port));
        }
        if start.elapsed() >= START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "port {port} did not accept connections within {START_TIMEOUT:?}:\n{log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
