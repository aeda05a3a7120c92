//! The core's hot paths: TOTP verification, the lockout decision, one state-machine step,
//! client-IP resolution, and link/trusted-device token signing and checking.
//!
//! `cargo bench -p modal2fa-core --bench core`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modal2fa_core::client_ip::ClientIpConfig;
use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::lockout::{self, LockoutSettings};
use modal2fa_core::machine::{
    self, LoginEvent, LoginState, MachineConfig, PasswordAttempt, PasswordVerdict,
    TrustedDeviceVerdict, ValidPassword,
};
use modal2fa_core::model::TrustedDevice;
use modal2fa_core::model::{TotpCode, User, UserId, Username};
use modal2fa_core::secret::{Keys, ServerSecret};
use modal2fa_core::tokens::{
    LinkPurpose, LinkSigner, ParsedLink, TrustedDeviceToken, TrustedTokenMatch,
};
use modal2fa_core::totp::{self, TotpParams};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

struct Rng;

impl modal2fa_core::ports::SecretGenerator for Rng {
    fn fill(&self, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
    }
}

fn bench(c: &mut Criterion) {
    let secret = [7u8; 32];
    let params = TotpParams::default();
    let code = TotpCode::parse(&totp::code_at(&secret, &params, NOW)).unwrap();
    c.bench_function("totp_verify", |b| {
        b.iter(|| totp::matching_step(black_box(&secret), &params, black_box(&code), NOW))
    });

    let key = LockoutKey::User("alice".into());
    let rule = LockoutSettings::default().rule_for(&key);
    let entry = lockout::apply_failure(None, &key, NOW, rule);
    c.bench_function("lockout_decision", |b| {
        b.iter(|| {
            let status = lockout::status(Some(black_box(&entry)), NOW);
            let next = lockout::apply_failure(Some(&entry), &key, NOW, rule);
            (status, next)
        })
    });

    let event = LoginEvent::Password(PasswordAttempt {
        user_key: Some(key.clone()),
        ip_key: Some(LockoutKey::Ip("192.0.2.1".into())),
        lock: lockout::LockStatus::Open,
        user_counted: None,
        verdict: PasswordVerdict::Valid(ValidPassword {
            user_id: UserId(1),
            user_key: key.clone(),
            password_login_allowed: true,
            two_factor_applies: true,
            trusted_device: TrustedDeviceVerdict::Absent,
            has_factor: true,
            has_passkey: false,
            factor_optional: true,
        }),
    });
    let config = MachineConfig::default();
    let state = LoginState::Anonymous;
    c.bench_function("state_machine_step", |b| {
        b.iter(|| machine::step(black_box(&state), event.clone(), NOW, &config))
    });

    let ip = ClientIpConfig {
        trusted_proxy_count: 1,
        ..Default::default()
    };
    let peer = "10.0.0.2".parse().unwrap();
    let header: &[u8] = b"6.6.6.6, 198.51.100.7";
    c.bench_function("client_ip_resolution", |b| {
        b.iter(|| ip.resolve(black_box(peer), &[black_box(header)]))
    });

    let keys = Keys::derive(&ServerSecret::new(vec![9; 32]).unwrap());
    let signer = LinkSigner::new(&keys);
    let user = User {
        id: UserId(7),
        username: Username::parse("alice").unwrap(),
        email: None,
        first_name: String::new(),
        last_name: String::new(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        is_active: true,
        is_superuser: false,
        created_at: NOW,
        last_login: Some(NOW - Duration::days(1)),
        password_changed_at: None,
    };
    let token = signer.issue(LinkPurpose::PasswordReset, &user, NOW, Duration::days(3));
    c.bench_function("link_token_sign", |b| {
        b.iter(|| {
            signer.issue(
                LinkPurpose::PasswordReset,
                black_box(&user),
                NOW,
                Duration::days(3),
            )
        })
    });
    c.bench_function("link_token_verify", |b| {
        b.iter(|| {
            let parsed = ParsedLink::parse(black_box(token.expose())).unwrap();
            signer
                .verify(LinkPurpose::PasswordReset, &parsed, &user, NOW)
                .unwrap()
        })
    });

    let device_token = TrustedDeviceToken::generate(&Rng);
    let device = TrustedDevice {
        id: device_token.id().to_owned(),
        user_id: UserId(7),
        name: "laptop".into(),
        key_hash: device_token.key_hash(),
        previous_key_hash: None,
        created_at: NOW,
        last_used_at: NOW,
        last_ip: None,
        user_agent: String::new(),
    };
    let cookie = device_token.cookie_value();
    c.bench_function("trusted_device_token_check", |b| {
        b.iter(|| {
            let t = TrustedDeviceToken::parse(black_box(cookie.expose())).unwrap();
            assert_eq!(t.matches(&device), TrustedTokenMatch::Current);
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
