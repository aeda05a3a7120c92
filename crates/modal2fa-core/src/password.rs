//! Password hashing: Argon2id in PHC strings by default, PBKDF2-SHA256 in Django's format
//! for compatibility; Django hashes are verified and reported for upgrade on login.
//!
//! # Timing
//!
//! A stored hash that cannot verify anything — Django's unusable password (`!` and random
//! characters), an unknown algorithm, a hash that does not parse — costs exactly what an
//! unknown account costs: [`PasswordHasher::verify`] spends the configured scheme's dummy
//! verification on it instead of returning at once. What this equalises is the CPU work of
//! a failure for every hash *not slower than the configured scheme*. A legacy hash that is
//! inherently slower (Django's PBKDF2 at 1 000 000 iterations against Argon2id) cannot be
//! made faster; the sign-in service hides that difference in the wall-clock time of the
//! answer instead, with an asynchronous floor (see [`measure_answer_floor`] and
//! `Settings::password_answer_floor`), never by burning the legacy cost on every failure.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use data_encoding::BASE64;
use sha2::Sha256;

use crate::model::{ParseError, Problem, User, canonical_form};
use crate::ports::{Delay, SecretGenerator};
use crate::secret::{SecretString, constant_time_eq};

/// Which hash new passwords get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordHashing {
    /// Argon2id (RFC 9106) with the given cost.
    Argon2id {
        /// Memory in KiB.
        memory_kib: u32,
        /// Passes.
        iterations: u32,
        /// Lanes.
        parallelism: u32,
    },
    /// PBKDF2-HMAC-SHA256 in Django's `pbkdf2_sha256$iterations$salt$hash` format.
    Pbkdf2Sha256 {
        /// Iteration count.
        iterations: u32,
    },
}

impl PasswordHashing {
    /// For tests only: Argon2id at 64 KiB and one pass, about a thousand times cheaper
    /// than the default, so a debug-build test signs in within a millisecond or two
    /// instead of hundreds. Never for accounts that matter: it resists no offline attack.
    /// (The reference server's configuration refuses a cost below OWASP's floor.)
    pub const FOR_TESTS: PasswordHashing = PasswordHashing::Argon2id {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

impl Default for PasswordHashing {
    /// Argon2id with OWASP's parameters: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self::Argon2id {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password does not match (or the stored hash is unusable).
    Invalid,
    /// It matches; `needs_upgrade` when the stored hash is not in the configured scheme.
    Valid {
        /// Rehash and store with the configured scheme.
        needs_upgrade: bool,
    },
}

/// Hashing failed (an invalid configuration).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Longest accepted password in bytes, so hashing cost stays bounded.
pub const MAX_PASSWORD_BYTES: usize = 4096;
/// Shortest accepted new password in characters (NIST SP 800-63B: at least 8).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Hashes and verifies passwords.
#[derive(Debug)]
pub struct PasswordHasher {
    scheme: PasswordHashing,
    dummy: OnceLock<String>,
    /// Dummy verifications spent so far (read by the tests).
    dummy_runs: AtomicU64,
}

/// The fixed salt of the dummy hash: it guards nothing, so it needs no randomness.
struct DummySalt;

impl SecretGenerator for DummySalt {
    fn fill(&self, buf: &mut [u8]) {
        buf.fill(0x5a);
    }
}

impl PasswordHasher {
    /// A hasher producing `scheme`.
    pub fn new(scheme: PasswordHashing) -> Self {
        Self {
            scheme,
            dummy: OnceLock::new(),
            dummy_runs: AtomicU64::new(0),
        }
    }

    /// The configured scheme.
    pub fn scheme(&self) -> PasswordHashing {
        self.scheme
    }

    fn argon2(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    ) -> Result<Argon2<'static>, HashError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| HashError(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes a password with a fresh salt from `rng`.
    pub fn hash(
        &self,
        password: &SecretString,
        rng: &dyn SecretGenerator,
    ) -> Result<String, HashError> {
        match self.scheme {
            PasswordHashing::Argon2id {
                memory_kib,
                iterations,
                parallelism,
            } => {
                let mut salt = [0u8; 16];
                rng.fill(&mut salt);
                let hash = Self::argon2(memory_kib, iterations, parallelism)?
                    .hash_password_with_salt(password.expose().as_bytes(), &salt)
                    .map_err(|e| HashError(e.to_string()))?;
                Ok(hash.to_string())
            }
            PasswordHashing::Pbkdf2Sha256 { iterations } => {
                const ALPHABET: &[u8] =
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                let mut raw = [0u8; 22];
                rng.fill(&mut raw);
                let salt: String = raw
                    .iter()
                    .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                    .collect();
                Ok(django_pbkdf2(password.expose(), &salt, iterations.max(1)))
            }
        }
    }

    /// Verifies a password against a stored hash of any supported scheme. A stored hash
    /// that cannot verify (unusable, unknown algorithm, unparsable) is
    /// [`PasswordCheck::Invalid`] after the same dummy verification an unknown account
    /// gets, never at once.
    pub fn verify(&self, password: &SecretString, stored: &str) -> PasswordCheck {
        let pwd = password.expose();
        if pwd.len() > MAX_PASSWORD_BYTES {
            return PasswordCheck::Invalid;
        }
        match self.verify_stored(pwd, stored) {
            Some(check) => check,
            None => {
                self.spend_dummy(pwd);
                PasswordCheck::Invalid
            }
        }
    }

    /// The check of `pwd` against `stored`, or `None` when `stored` cannot verify anything.
    fn verify_stored(&self, pwd: &str, stored: &str) -> Option<PasswordCheck> {
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            let mut parts = rest.splitn(3, '$');
            let (Some(iter), Some(salt), Some(_)) = (parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            let iterations = iter.parse::<u32>().ok()?;
            if iterations == 0 || iterations > 10_000_000 {
                return None;
            }
            let computed = django_pbkdf2(pwd, salt, iterations);
            if !constant_time_eq(computed.as_bytes(), stored.as_bytes()) {
                return Some(PasswordCheck::Invalid);
            }
            let needs_upgrade = self.scheme != PasswordHashing::Pbkdf2Sha256 { iterations };
            return Some(PasswordCheck::Valid { needs_upgrade });
        }
        // Django's Argon2PasswordHasher writes "argon2$argon2id$v=19$…".
        let (phc, from_django) = match stored.strip_prefix("argon2$") {
            Some(rest) => (format!("${rest}"), true),
            None => (stored.to_owned(), false),
        };
        let parsed = argon2::password_hash::phc::PasswordHash::new(&phc).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let algorithm = match parsed.algorithm.as_str() {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            "argon2d" => Algorithm::Argon2d,
            _ => return None,
        };
        let verifier = Argon2::new(algorithm, Version::V0x13, params.clone());
        if verifier.verify_password(pwd.as_bytes(), &parsed).is_err() {
            return Some(PasswordCheck::Invalid);
        }
        let current = matches!(self.scheme, PasswordHashing::Argon2id { memory_kib, iterations, parallelism }
            if algorithm == Algorithm::Argon2id
                && params.m_cost() == memory_kib
                && params.t_cost() == iterations
                && params.p_cost() == parallelism);
        Some(PasswordCheck::Valid {
            needs_upgrade: from_django || !current,
        })
    }

    /// Spends the same time as verifying a real password, for unknown or locked users,
    /// so response time does not reveal whether an account exists.
    pub fn dummy_verify(&self, password: &SecretString) {
        self.spend_dummy(password.expose());
    }

    /// One verification of `pwd` against a hash of the configured scheme; the result is
    /// thrown away.
    fn spend_dummy(&self, pwd: &str) {
        let dummy = self.dummy.get_or_init(|| {
            self.hash(&SecretString::new("modal2fa-dummy-password"), &DummySalt)
                .unwrap_or_default()
        });
        self.dummy_runs.fetch_add(1, Ordering::Relaxed);
        // Never `verify`: a dummy that could not be made must not recurse.
        let _ = self.verify_stored(pwd, dummy);
    }
}

/// Django's PBKDF2-SHA256 at its default cost since Django 5.2 (1 000 000 iterations): the
/// legacy class a migrated Django user table typically holds.
pub const DJANGO_PBKDF2: PasswordHashing = PasswordHashing::Pbkdf2Sha256 {
    iterations: 1_000_000,
};

/// The most PBKDF2 iterations [`measure_answer_floor`] runs to time one legacy class.
const SAMPLE_ITERATIONS: u32 = 20_000;

/// The answer floor for failed password checks (`Settings::password_answer_floor`), measured
/// once at start-up on the calling thread: one failed verification of each `legacy` scheme
/// the user store still holds and one dummy verification of `scheme` are timed on
/// `timer`'s monotonic clock, and twice the slowest, plus 10 ms, is the floor. The margin
/// covers a verification slowed by a busy machine (every hash worker busy, other
/// processes on the cores, frequency scaling): measured on 2 shared cores, a 1M-iteration
/// PBKDF2 took about 150 ms alone and up to 290 ms with both workers hashing. It costs no
/// CPU, only the wait of a failed answer; a failure slower still (a machine overloaded)
/// answers when it is done.
///
/// This costs one dummy verification of `scheme` and, for PBKDF2 legacy classes, two runs of
/// at most 20 000 iterations scaled to the class's count (a few milliseconds for
/// [`DJANGO_PBKDF2`] in a release build), once.
pub fn measure_answer_floor(
    scheme: PasswordHashing,
    legacy: &[PasswordHashing],
    timer: &dyn Delay,
) -> Result<Duration, HashError> {
    let attempt = SecretString::new("modal2fa-floor-measurement");
    let configured = PasswordHasher::new(scheme);
    let started = timer.now();
    configured.dummy_verify(&attempt);
    let mut slowest = timer.now().saturating_duration_since(started);
    for legacy_scheme in legacy {
        // PBKDF2's cost is linear in its iterations: a sample of at most
        // `SAMPLE_ITERATIONS`, scaled, stands for the whole (so start-up does not spend
        // two full verifications of a million iterations).
        let (sample, scale) = match *legacy_scheme {
            PasswordHashing::Pbkdf2Sha256 { iterations } if iterations > SAMPLE_ITERATIONS => (
                PasswordHashing::Pbkdf2Sha256 {
                    iterations: SAMPLE_ITERATIONS,
                },
                f64::from(iterations) / f64::from(SAMPLE_ITERATIONS),
            ),
            other => (other, 1.0),
        };
        let hasher = PasswordHasher::new(sample);
        let stored = hasher.hash(&SecretString::new("modal2fa-legacy-sample"), &DummySalt)?;
        let started = timer.now();
        let _ = configured.verify(&attempt, &stored);
        let took = timer.now().saturating_duration_since(started);
        slowest = slowest.max(took.mul_f64(scale));
    }
    Ok(slowest * 2 + Duration::from_millis(10))
}

fn django_pbkdf2(password: &str, salt: &str, iterations: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut out);
    format!("pbkdf2_sha256${iterations}${salt}${}", BASE64.encode(&out))
}

/// Checks a new password: 8 to 4096 bytes, not the username, not all one character.
pub fn validate_new_password(
    password: &SecretString,
    user: Option<&User>,
) -> Result<(), ParseError> {
    let p = password.expose();
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ParseError::new(
            "password",
            Problem::TooShort {
                min: MIN_PASSWORD_CHARS,
            },
        ));
    }
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(ParseError::new(
            "password",
            Problem::TooManyBytes {
                max: MAX_PASSWORD_BYTES,
            },
        ));
    }
    let mut chars = p.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(ParseError::new("password", Problem::RepeatsOneCharacter));
    }
    if let Some(u) = user {
        let canonical = canonical_form(p);
        if canonical == u.username.canonical()
            || u.email.as_ref().is_some_and(|e| e.canonical() == canonical)
        {
            return Err(ParseError::new("password", Problem::SameAsIdentity));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::SequenceRandom;

    fn cheap_argon() -> PasswordHashing {
        PasswordHashing::Argon2id {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn the_default_is_argon2id_with_owasp_parameters_in_a_phc_string() {
        let rng = SequenceRandom::new(3);
        let h = PasswordHasher::new(PasswordHashing::default());
        let hash = h.hash(&"correct horse".into(), &rng).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            h.verify(&"correct horse".into(), &hash),
            PasswordCheck::Valid {
                needs_upgrade: false
            }
        );
        assert_eq!(
            h.verify(&"wrong horse".into(), &hash),
            PasswordCheck::Invalid
        );
    }

    #[test]
    fn a_django_pbkdf2_hash_verifies_and_asks_for_an_upgrade() {
        // Python: base64(hashlib.pbkdf2_hmac("sha256", b"hunter2", b"abcdefghijklmnopqrstuv", 1000)).
        let stored = "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$qkObPPK9rP0GubfMXjglDC6HALWE6Op/eMHGy+WlhjE=";
        let h = PasswordHasher::new(cheap_argon());
        assert_eq!(
            h.verify(&"hunter2".into(), stored),
            PasswordCheck::Valid {
                needs_upgrade: true
            }
        );
        assert_eq!(h.verify(&"hunter3".into(), stored), PasswordCheck::Invalid);
        let same = PasswordHasher::new(PasswordHashing::Pbkdf2Sha256 { iterations: 1000 });
        assert_eq!(
            same.verify(&"hunter2".into(), stored),
            PasswordCheck::Valid {
                needs_upgrade: false
            }
        );
    }

    #[test]
    fn a_known_django_hash_verifies() {
        // Reference value computed with Python: hashlib.pbkdf2_hmac('sha256', b'password', b'salt', 1), base64.
        let stored = "pbkdf2_sha256$1$salt$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=";
        let h = PasswordHasher::new(cheap_argon());
        assert_eq!(
            h.verify(&"password".into(), stored),
            PasswordCheck::Valid {
                needs_upgrade: true
            }
        );
    }

    #[test]
    fn pbkdf2_hashing_writes_django_format() {
        let rng = SequenceRandom::new(3);
        let h = PasswordHasher::new(PasswordHashing::Pbkdf2Sha256 { iterations: 1000 });
        let hash = h.hash(&"secret pw".into(), &rng).unwrap();
        assert!(hash.starts_with("pbkdf2_sha256$1000$"));
        assert_eq!(hash.split('$').count(), 4);
        assert_eq!(
            h.verify(&"secret pw".into(), &hash),
            PasswordCheck::Valid {
                needs_upgrade: false
            }
        );
    }

    #[test]
    fn an_argon2_hash_with_other_parameters_asks_for_an_upgrade() {
        let rng = SequenceRandom::new(3);
        let old = PasswordHasher::new(cheap_argon())
            .hash(&"pw12345678".into(), &rng)
            .unwrap();
        let h = PasswordHasher::new(PasswordHashing::Argon2id {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        });
        assert_eq!(
            h.verify(&"pw12345678".into(), &old),
            PasswordCheck::Valid {
                needs_upgrade: true
            }
        );
        let django = format!("argon2{}", old);
        assert_eq!(
            PasswordHasher::new(cheap_argon()).verify(&"pw12345678".into(), &django),
            PasswordCheck::Valid {
                needs_upgrade: true
            }
        );
    }

    #[test]
    fn garbage_hashes_and_oversized_passwords_never_verify() {
        let h = PasswordHasher::new(cheap_argon());
        for stored in [
            "",
            "!",
            "pbkdf2_sha256$x$y$z",
            "pbkdf2_sha256$0$s$h",
            "$argon2id$nonsense",
            "md5$x$y",
        ] {
            assert_eq!(
                h.verify(&"pw".into(), stored),
                PasswordCheck::Invalid,
                "{stored}"
            );
        }
        let rng = SequenceRandom::new(3);
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        let hash = PasswordHasher::new(PasswordHashing::Pbkdf2Sha256 { iterations: 1 })
            .hash(&long.as_str().into(), &rng)
            .unwrap();
        assert_eq!(
            h.verify(&long.as_str().into(), &hash),
            PasswordCheck::Invalid
        );
        h.dummy_verify(&"anything".into());
    }

    #[test]
    fn an_unusable_or_unparsable_stored_hash_spends_the_dummy_verification_an_unknown_user_does() {
        let h = PasswordHasher::new(cheap_argon());
        let unusable = "!9nd6P3fVjQm2xkT1uRb8sYcWz4LhA0eGoJtKqNv";
        for (n, stored) in [
            unusable,
            "!",
            "",
            "md5$x$y",
            "pbkdf2_sha256$x$y$z",
            "pbkdf2_sha256$0$s$h",
            "pbkdf2_sha256$99999999$s$h",
            "$argon2id$nonsense",
            "$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA",
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(h.verify(&"pw".into(), stored), PasswordCheck::Invalid);
            assert_eq!(
                h.dummy_runs.load(Ordering::Relaxed),
                n as u64 + 1,
                "{stored}"
            );
        }
    }

    #[test]
    fn a_usable_hash_is_verified_itself_and_spends_no_dummy_verification() {
        let rng = SequenceRandom::new(3);
        let h = PasswordHasher::new(cheap_argon());
        let argon = h.hash(&"pw12345678".into(), &rng).unwrap();
        let django = "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$qkObPPK9rP0GubfMXjglDC6HALWE6Op/eMHGy+WlhjE=";
        assert_eq!(
            h.verify(&"wrong one".into(), &argon),
            PasswordCheck::Invalid
        );
        assert_eq!(h.verify(&"hunter3".into(), django), PasswordCheck::Invalid);
        assert_eq!(h.dummy_runs.load(Ordering::Relaxed), 0);
    }

    /// A monotonic clock that moves 100 ms every time it is read.
    struct Ticking(std::sync::Mutex<std::time::Instant>);

    #[async_trait::async_trait]
    impl Delay for Ticking {
        fn now(&self) -> std::time::Instant {
            let mut at = self.0.lock().unwrap();
            *at += Duration::from_millis(100);
            *at
        }

        async fn sleep(&self, _: Duration) {}
    }

    #[test]
    fn the_answer_floor_is_the_slowest_measured_verification_with_a_margin() {
        let legacy = [PasswordHashing::Pbkdf2Sha256 { iterations: 1000 }];
        let start = legacy_start();
        let floor = measure_answer_floor(cheap_argon(), &legacy, &Ticking(start.into())).unwrap();
        assert_eq!(floor, Duration::from_millis(210));
    }

    fn legacy_start() -> std::time::Instant {
        // Any instant will do: the ticking clock only ever moves forward from it.
        #[expect(clippy::disallowed_methods, reason = "a test's starting instant")]
        std::time::Instant::now()
    }

    #[test]
    fn new_passwords_are_checked() {
        assert!(validate_new_password(&"short".into(), None).is_err());
        assert!(validate_new_password(&"aaaaaaaaaa".into(), None).is_err());
        assert!(validate_new_password(&"a fine passphrase".into(), None).is_ok());
        assert!(validate_new_password(&"x".repeat(5000).into(), None).is_err());
    }
}
