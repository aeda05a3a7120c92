//! The release server under test: its configuration, starting it and timing its start-up
//! to the first `200`, stopping it.
//!
//! The server runs `modal2fa --config DIR/modal2fa.toml serve` on `127.0.0.1` with a free
//! port (it prints its address as its first line of stdout) over plain http (so with
//! `insecure_http_development`), the SQLite database and secret the seeding left in
//! `DIR`, the given password hash, and `127.0.0.1` excluded from the IP lockout counter
//! (every client comes from there).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use modal2fa_core::password::PasswordHashing;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::client::Client;

/// A running server.
pub struct Server {
    child: tokio::process::Child,
    /// Its process id, for `/proc`.
    pub pid: u32,
    /// The port it listens on.
    pub port: u16,
    /// From spawning it to its first `200` for the login modal.
    pub startup: Duration,
}

/// The server's configuration for a database and secret in `dir`, hashing with `hashing`.
///
/// PBKDF2 at 1 000 iterations (the original's cost) is below what the server accepts
/// unless `allow_weak_password_hashing` is set; Argon2id is only the default one, whose
/// parameters the server applies itself.
pub fn config_toml(dir: &Path, hashing: PasswordHashing) -> String {
    let dir = dir.display();
    let mut top = format!(
        "listen = \"127.0.0.1:0\"\ninsecure_http_development = true\ndatabase_url = \"sqlite://{dir}/db.sqlite?mode=rwc\"\nsecret_file = \"{dir}/secret\"\n"
    );
    let table = match hashing {
        PasswordHashing::Pbkdf2Sha256 { iterations } => {
            if iterations == 1000 {
                top.push_str("allow_weak_password_hashing = true\n");
            }
            format!("algorithm = \"pbkdf2_sha256\"\niterations = {iterations}\n")
        }
        PasswordHashing::Argon2id { .. } => {
            assert_eq!(
                hashing,
                PasswordHashing::default(),
                "the server's configuration sets only the default Argon2id"
            );
            "algorithm = \"argon2id\"\n".to_owned()
        }
    };
    format!("{top}[password_hashing]\n{table}[lockout]\nexcluded_ips = [\"127.0.0.1\"]\n")
}

/// Writes the configuration into `dir`, starts `bin` and waits for its first `200`.
pub async fn start(bin: &Path, dir: &Path, hashing: PasswordHashing) -> Server {
    let config = dir.join("modal2fa.toml");
    std::fs::write(&config, config_toml(dir, hashing)).unwrap();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("MODAL2FA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    let pid = child.id().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).await.unwrap();
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("the listening line");
    tokio::spawn(async move {
        let mut sink = String::new();
        while out.read_line(&mut sink).await.unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    let mut c = Client::new(port);
    loop {
        if c.request("GET", "/auth/login/", None, true).await.status == 200 {
            break;
        }
    }
    Server {
        child,
        pid,
        port,
        startup: started.elapsed(),
    }
}

impl Server {
    /// Kills the server.
    pub async fn stop(mut self) {
        self.child.kill().await.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_at_the_originals_cost_is_allowed_as_weak_with_its_iterations() {
        assert_eq!(
            config_toml(
                Path::new("/tmp/b"),
                PasswordHashing::Pbkdf2Sha256 { iterations: 1000 }
            ),
            r#"listen = "127.0.0.1:0"
insecure_http_development = true
database_url = "sqlite:///tmp/b/db.sqlite?mode=rwc"
secret_file = "/tmp/b/secret"
allow_weak_password_hashing = true
[password_hashing]
algorithm = "pbkdf2_sha256"
iterations = 1000
[lockout]
excluded_ips = ["127.0.0.1"]
"#
        );
    }

    #[test]
    fn the_default_argon2id_names_only_the_algorithm() {
        assert_eq!(
            config_toml(Path::new("/tmp/b"), PasswordHashing::default()),
            r#"listen = "127.0.0.1:0"
insecure_http_development = true
database_url = "sqlite:///tmp/b/db.sqlite?mode=rwc"
secret_file = "/tmp/b/secret"
[password_hashing]
algorithm = "argon2id"
[lockout]
excluded_ips = ["127.0.0.1"]
"#
        );
    }
}
