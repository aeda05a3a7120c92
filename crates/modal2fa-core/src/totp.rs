//! Time-based one-time passwords (RFC 6238, on HOTP of RFC 4226).
//!
//! Who does what:
//!
//! - **[`totp_rs`] computes.** It generates codes, compares a typed code with the code of a
//!   step (in constant time), and writes the `otpauth://` URL for the QR code. It also
//!   enforces RFC limits: a secret of at least 128 bits, 6 to 8 digits, a step longer than
//!   zero, and no `:` in the issuer or the account name.
//! - **This module decides which time.** Every function takes the time from the caller,
//!   which in the services is the [`Clock`](crate::ports::Clock) port, and hands it to
//!   totp-rs' explicit-time functions (`generate(time)`, `check(token, time)`); the core
//!   never reads the system clock, and no time sent by a client is used. Secrets come from
//!   the [`SecretGenerator`](crate::ports::SecretGenerator) port, never from totp-rs.
//! - **The factor store enforces single use.** [`matching_step`] only says which step
//!   within the allowed skew a code belongs to; the service then consumes that step with
//!   the store's last-used-step compare-and-set
//!   ([`crate::ports::FactorStore::advance_totp_step`]): a step is accepted only if it is
//!   greater than every step accepted before, so a code is never accepted twice and an
//!   older in-window code is refused after a newer one. totp-rs leaves this to its caller.

use data_encoding::BASE32_NOPAD;
use time::OffsetDateTime;
use totp_rs::{Algorithm, Builder, Totp, TotpError};

use crate::model::TotpCode;

/// The HMAC hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlgorithm {
    /// HMAC-SHA1, what authenticator apps use.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl TotpAlgorithm {
    fn to_totp_rs(self) -> Algorithm {
        match self {
            Self::Sha1 => Algorithm::SHA1,
            Self::Sha256 => Algorithm::SHA256,
            Self::Sha512 => Algorithm::SHA512,
        }
    }
}

/// TOTP parameters. The default is SPEC §2's: SHA-1, 6 digits, 30 s, ±1 step.
///
/// totp-rs refuses `digits` outside 6–8 and a `step_seconds` of 0; with such parameters no
/// code ever matches, and generating a code or an `otpauth://` URL panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    /// Hash function.
    pub algorithm: TotpAlgorithm,
    /// Code length, 6 to 8.
    pub digits: u32,
    /// Step length in seconds, at least 1.
    pub step_seconds: u64,
    /// Steps accepted either side of the current one.
    pub skew: u8,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            step_seconds: 30,
            skew: 1,
        }
    }
}

/// Length of newly generated secrets in bytes (ASVS asks ≥ 20; totp-rs needs ≥ 16).
pub const SECRET_LEN: usize = 32;

/// A totp-rs builder for `secret` and `params`. The skew is 0: [`matching_step`] walks the
/// window itself so that it compares at every step.
fn builder(secret: &[u8], params: &TotpParams) -> Builder {
    Builder::new()
        .with_algorithm(params.algorithm.to_totp_rs())
        // Out of u8 range becomes 0, which totp-rs refuses like any other bad length.
        .with_digits(u8::try_from(params.digits).unwrap_or(0))
        .with_step_duration(params.step_seconds)
        .with_skew(0)
        .with_secret(secret)
}

/// A checked totp-rs generator, or why totp-rs refuses `secret` and `params`.
fn generator(secret: &[u8], params: &TotpParams) -> Result<Totp, TotpError> {
    builder(secret, params).build()
}

/// The Unix time of the first second of `step`; steps before 1970 are clamped to step 0.
fn start_of(step: i64, params: &TotpParams) -> u64 {
    u64::try_from(step)
        .unwrap_or(0)
        .saturating_mul(params.step_seconds)
}

/// The time step containing `at` (floor of Unix time over the step length).
pub fn step_at(at: OffsetDateTime, params: &TotpParams) -> i64 {
    at.unix_timestamp()
        .div_euclid(params.step_seconds.max(1) as i64)
}

/// The code for the step containing `at`, as an authenticator app would show it.
///
/// # Panics
///
/// If totp-rs refuses the secret or the parameters (see [`TotpParams`]). The server never
/// generates codes; authenticators, tests and load generators do.
pub fn code_at(secret: &[u8], params: &TotpParams, at: OffsetDateTime) -> String {
    code_for_step(secret, params, step_at(at, params))
}

/// The code for a given step (steps before 1970 give step 0's code).
///
/// # Panics
///
/// As [`code_at`].
pub fn code_for_step(secret: &[u8], params: &TotpParams, step: i64) -> String {
    generator(secret, params)
        .unwrap_or_else(|e| panic!("totp-rs refuses these TOTP parameters: {e}"))
        .generate(start_of(step, params))
        .to_string()
}

/// The step within `now ± skew` whose code equals `code`, or `None`. totp-rs checks the
/// code at every step of the window (each comparison in constant time, and no early exit
/// on a match), always at the server's time `now`: no client-supplied time is accepted.
/// Parameters totp-rs refuses never match. Single use is the caller's: see the module
/// documentation.
pub fn matching_step(
    secret: &[u8],
    params: &TotpParams,
    code: &TotpCode,
    now: OffsetDateTime,
) -> Option<i64> {
    let totp = generator(secret, params).ok()?;
    let current = step_at(now, params);
    let skew = i64::from(params.skew);
    let mut found = None;
    for step in (current - skew).max(0)..=(current + skew) {
        // With skew 0, `check` looks at exactly the step starting at this time.
        let matched = totp.check(code.digits(), start_of(step, params)).is_some();
        if matched && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Base32 (RFC 4648, no padding) as authenticator apps expect for manual entry.
pub fn encode_secret(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// Decodes a base32 secret, ignoring spaces, case and padding.
pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    BASE32_NOPAD.decode(cleaned.as_bytes()).ok()
}

/// What stands in for `:` in an issuer or account name: U+2236 RATIO, which reads like a
/// colon in the app but is not the `issuer:account` separator of the URL's label.
const COLON_STAND_IN: char = '\u{2236}';

fn label_part(text: &str) -> String {
    text.replace(':', &COLON_STAND_IN.to_string())
}

/// The `otpauth://totp/…` URL that authenticator apps scan, written by totp-rs.
///
/// The label is `issuer:account` with both percent-encoded (so `@` is `%40` and a space
/// `%20`), and `issuer=` repeats the issuer; an empty issuer leaves only the account. totp-rs omits `algorithm`, `digits` and
/// `period` when they are the Key URI format's defaults (SHA1, 6, 30 s). A `:` in the
/// issuer or account, which would split the label wrongly, becomes `∶` (U+2236 RATIO).
///
/// # Panics
///
/// If totp-rs refuses the secret or the parameters (see [`TotpParams`]), or the account is
/// empty.
pub fn otpauth_url(issuer: &str, account: &str, secret: &[u8], params: &TotpParams) -> String {
    builder(secret, params)
        .with_issuer((!issuer.is_empty()).then(|| label_part(issuer)))
        .with_account_name(label_part(account))
        .build()
        .and_then(|totp| totp.to_url())
        .unwrap_or_else(|e| panic!("totp-rs cannot write this otpauth URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    const SEED1: &[u8] = b"12345678901234567890";
    const SEED256: &[u8] = b"12345678901234567890123456789012";
    const SEED512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn p8(algorithm: TotpAlgorithm) -> TotpParams {
        TotpParams {
            algorithm,
            digits: 8,
            ..Default::default()
        }
    }

    #[test]
    fn rfc_6238_appendix_b_vectors_reproduce_for_sha1_sha256_and_sha512() {
        let table: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, s1, s256, s512) in table {
            let at = OffsetDateTime::from_unix_timestamp(t).unwrap();
            for (seed, algorithm, expected) in [
                (SEED1, TotpAlgorithm::Sha1, s1),
                (SEED256, TotpAlgorithm::Sha256, s256),
                (SEED512, TotpAlgorithm::Sha512, s512),
            ] {
                let params = p8(algorithm);
                assert_eq!(code_at(seed, &params, at), expected, "{algorithm:?} at {t}");
                let code = TotpCode::parse(expected).unwrap();
                assert_eq!(
                    matching_step(seed, &params, &code, at),
                    Some(step_at(at, &params)),
                    "{algorithm:?} at {t} is checked"
                );
            }
        }
        let at = OffsetDateTime::from_unix_timestamp(59).unwrap();
        assert_eq!(code_at(SEED1, &TotpParams::default(), at), "287082");
    }

    #[test]
    fn rfc_4226_appendix_d_hotp_vectors_reproduce_as_totp_at_counter_times_step() {
        // HOTP(K, C) is TOTP at any time in step C, so totp-rs computes these too.
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        let params = TotpParams::default();
        for (counter, code) in (0i64..).zip(expected) {
            assert_eq!(
                code_for_step(SEED1, &params, counter),
                code,
                "counter {counter}"
            );
            let at = OffsetDateTime::from_unix_timestamp(counter * 30).unwrap();
            assert_eq!(code_at(SEED1, &params, at), code, "time {}", counter * 30);
        }
    }

    #[test]
    fn the_window_is_exactly_the_configured_skew() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let params = TotpParams::default();
        let current = step_at(now, &params);
        for (offset, ok) in [
            (-2, false),
            (-1, true),
            (0, true),
            (1, true),
            (2, false),
            (9, false),
        ] {
            let code = TotpCode::parse(&code_for_step(SEED1, &params, current + offset)).unwrap();
            assert_eq!(
                matching_step(SEED1, &params, &code, now),
                ok.then_some(current + offset),
                "offset {offset}"
            );
        }
        let strict = TotpParams { skew: 0, ..params };
        let prev = TotpCode::parse(&code_for_step(SEED1, &strict, current - 1)).unwrap();
        assert_eq!(matching_step(SEED1, &strict, &prev, now), None);
        let cur = TotpCode::parse(&code_at(SEED1, &strict, now)).unwrap();
        assert_eq!(matching_step(SEED1, &strict, &cur, now), Some(current));
    }

    #[test]
    fn the_window_does_not_reach_before_step_zero() {
        let params = TotpParams::default();
        let at = OffsetDateTime::from_unix_timestamp(10).unwrap();
        let code = TotpCode::parse(&code_for_step(SEED1, &params, 1)).unwrap();
        assert_eq!(matching_step(SEED1, &params, &code, at), Some(1));
        let first = TotpCode::parse(&code_for_step(SEED1, &params, 0)).unwrap();
        assert_eq!(matching_step(SEED1, &params, &first, at), Some(0));
    }

    #[test]
    fn a_code_of_the_wrong_length_never_matches() {
        let now = OffsetDateTime::from_unix_timestamp(59).unwrap();
        let eight = TotpCode::parse("94287082").unwrap();
        assert_eq!(
            matching_step(SEED1, &TotpParams::default(), &eight, now),
            None
        );
        assert!(matching_step(SEED1, &p8(TotpAlgorithm::Sha1), &eight, now).is_some());
    }

    #[test]
    fn parameters_or_secrets_that_totp_rs_refuses_never_match() {
        let now = OffsetDateTime::from_unix_timestamp(59).unwrap();
        let code = TotpCode::parse("287082").unwrap();
        let params = TotpParams::default();
        assert!(matching_step(SEED1, &params, &code, now).is_some());
        // 15 bytes is under the 128 bits totp-rs asks for.
        let short = &SEED1[..15];
        let short_code = TotpCode::parse(&code_at(SEED1, &params, now)).unwrap();
        assert_eq!(matching_step(short, &params, &short_code, now), None);
        for bad in [
            TotpParams {
                digits: 5,
                ..params
            },
            TotpParams {
                digits: 9,
                ..params
            },
            TotpParams {
                digits: 262,
                ..params
            },
            TotpParams {
                step_seconds: 0,
                ..params
            },
        ] {
            assert_eq!(matching_step(SEED1, &bad, &code, now), None, "{bad:?}");
        }
    }

    #[test]
    #[should_panic(expected = "totp-rs refuses")]
    fn generating_a_code_for_a_secret_under_128_bits_panics() {
        code_for_step(&SEED1[..15], &TotpParams::default(), 1);
    }

    #[test]
    fn steps_are_thirty_seconds_long() {
        let p = TotpParams::default();
        let t = OffsetDateTime::from_unix_timestamp(60).unwrap();
        assert_eq!(step_at(t, &p), 2);
        assert_eq!(step_at(t + Duration::seconds(29), &p), 2);
        assert_eq!(step_at(t + Duration::seconds(30), &p), 3);
    }

    #[test]
    fn secrets_round_trip_through_base32() {
        let text = encode_secret(SEED1);
        assert_eq!(text, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(decode_secret(&text.to_lowercase()).unwrap(), SEED1);
        assert_eq!(
            decode_secret("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ").unwrap(),
            SEED1
        );
        assert!(decode_secret("not base32!").is_none());
    }

    #[test]
    fn the_otpauth_url_names_issuer_and_account_and_omits_default_parameters() {
        let url = otpauth_url(
            "My Site",
            "alice@example.com",
            SEED1,
            &TotpParams::default(),
        );
        assert_eq!(
            url,
            "otpauth://totp/My%20Site:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=My%20Site"
        );
        assert!(url.contains(&format!("secret={}&", encode_secret(SEED1))));
    }

    #[test]
    fn the_otpauth_url_names_parameters_that_are_not_the_defaults() {
        let params = TotpParams {
            algorithm: TotpAlgorithm::Sha256,
            digits: 8,
            step_seconds: 60,
            skew: 1,
        };
        let url = otpauth_url("My Site", "alice", SEED256, &params);
        assert_eq!(
            url,
            format!(
                "otpauth://totp/My%20Site:alice?secret={}&digits=8&algorithm=SHA256&issuer=My%20Site&period=60",
                encode_secret(SEED256)
            )
        );
    }

    #[test]
    fn an_empty_issuer_leaves_only_the_account_in_the_label() {
        let url = otpauth_url("", "alice", SEED1, &TotpParams::default());
        assert_eq!(
            url,
            "otpauth://totp/alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn a_colon_in_the_issuer_or_account_does_not_break_enrolment() {
        let params = TotpParams::default();
        let url = otpauth_url("Acme: Portal", "a:b@example.com", SEED1, &params);
        assert_eq!(
            url,
            "otpauth://totp/Acme%E2%88%B6%20Portal:a%E2%88%B6b%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%E2%88%B6%20Portal"
        );
        // An authenticator reading the URL sees one issuer, one account and our secret.
        let read = Totp::from_url(&url).unwrap();
        assert_eq!(read.issuer(), Some("Acme∶ Portal"));
        assert_eq!(read.account_name(), "a∶b@example.com");
        assert_eq!(read.secret().as_bytes(), SEED1);
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let typed = read.generate(1_700_000_000).to_string();
        assert_eq!(typed, code_at(SEED1, &params, at));
        let code = TotpCode::parse(&typed).unwrap();
        assert_eq!(
            matching_step(SEED1, &params, &code, at),
            Some(step_at(at, &params))
        );
    }
}
