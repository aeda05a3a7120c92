//! Time-based one-time passwords (RFC 6238, on HOTP of RFC 4226).
//!
//! Verification finds which time step (if any) within the allowed skew a code belongs to;
//! single use is then enforced by the factor store's last-used-step compare-and-set
//! ([`crate::ports::FactorStore::advance_totp_step`]): a step is accepted only if it is
//! greater than every step accepted before, so a code is never accepted twice and an
//! older in-window code is refused after a newer one.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use time::OffsetDateTime;

use crate::model::TotpCode;
use crate::secret::constant_time_eq;

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
    fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }
}

/// TOTP parameters. The default is SPEC §2's: SHA-1, 6 digits, 30 s, ±1 step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    /// Hash function.
    pub algorithm: TotpAlgorithm,
    /// Code length, 6 to 8.
    pub digits: u32,
    /// Step length in seconds.
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

/// Length of newly generated secrets in bytes (ASVS asks ≥ 20).
pub const SECRET_LEN: usize = 32;

/// RFC 4226 HOTP value for `counter`, as a zero-padded decimal string.
pub fn hotp(secret: &[u8], counter: u64, algorithm: TotpAlgorithm, digits: u32) -> String {
    let msg = counter.to_be_bytes();
    let mac: Vec<u8> = match algorithm {
        TotpAlgorithm::Sha1 => mac_of::<Hmac<sha1::Sha1>>(secret, &msg),
        TotpAlgorithm::Sha256 => mac_of::<Hmac<sha2::Sha256>>(secret, &msg),
        TotpAlgorithm::Sha512 => mac_of::<Hmac<sha2::Sha512>>(secret, &msg),
    };
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    let digits = digits.clamp(6, 8);
    let value = bin % 10u32.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

fn mac_of<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The time step containing `at` (floor of Unix time over the step length).
pub fn step_at(at: OffsetDateTime, params: &TotpParams) -> i64 {
    at.unix_timestamp()
        .div_euclid(params.step_seconds.max(1) as i64)
}

/// The code for the step containing `at`.
pub fn code_at(secret: &[u8], params: &TotpParams, at: OffsetDateTime) -> String {
    code_for_step(secret, params, step_at(at, params))
}

/// The code for a given step.
pub fn code_for_step(secret: &[u8], params: &TotpParams, step: i64) -> String {
    hotp(secret, step.max(0) as u64, params.algorithm, params.digits)
}

/// The step within `now ± skew` whose code equals `code`, compared in constant time at
/// every step. The time is always the server's: no client-supplied time is accepted.
pub fn matching_step(
    secret: &[u8],
    params: &TotpParams,
    code: &TotpCode,
    now: OffsetDateTime,
) -> Option<i64> {
    if code.digits().len() != params.digits as usize {
        return None;
    }
    let current = step_at(now, params);
    let skew = i64::from(params.skew);
    let mut found = None;
    for step in (current - skew)..=(current + skew) {
        if step < 0 {
            continue;
        }
        let candidate = code_for_step(secret, params, step);
        if constant_time_eq(candidate.as_bytes(), code.digits().as_bytes()) && found.is_none() {
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

/// The `otpauth://totp/…` URL that authenticator apps scan.
pub fn otpauth_url(issuer: &str, account: &str, secret: &[u8], params: &TotpParams) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        percent_encode(issuer),
        percent_encode(account),
        encode_secret(secret),
        percent_encode(issuer),
        params.algorithm.name(),
        params.digits,
        params.step_seconds
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
            assert_eq!(
                code_at(SEED1, &p8(TotpAlgorithm::Sha1), at),
                s1,
                "SHA1 at {t}"
            );
            assert_eq!(
                code_at(SEED256, &p8(TotpAlgorithm::Sha256), at),
                s256,
                "SHA256 at {t}"
            );
            assert_eq!(
                code_at(SEED512, &p8(TotpAlgorithm::Sha512), at),
                s512,
                "SHA512 at {t}"
            );
        }
        let at = OffsetDateTime::from_unix_timestamp(59).unwrap();
        assert_eq!(code_at(SEED1, &TotpParams::default(), at), "287082");
    }

    #[test]
    fn rfc_4226_appendix_d_hotp_vectors_reproduce() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(SEED1, counter as u64, TotpAlgorithm::Sha1, 6), *code);
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
    fn the_otpauth_url_names_issuer_account_and_parameters() {
        let url = otpauth_url(
            "My Site",
            "alice@example.com",
            SEED1,
            &TotpParams::default(),
        );
        assert_eq!(
            url,
            "otpauth://totp/My%20Site:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=My%20Site&algorithm=SHA1&digits=6&period=30"
        );
    }
}
