//! The configuration's tests: defaults, the example file, unknown keys, invalid values
//! with their source, the environment at any depth, bounds, and secrets never echoed.

use super::*;

/// Loads `text` as the file and `vars` as the environment, as the binary would.
fn load_with(text: &str, vars: &[(&str, &str)]) -> anyhow::Result<Config> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("modal2fa-config-{}-{n}.toml", std::process::id());
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, text).unwrap();
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let result = load(Some(&path), vars);
    std::fs::remove_file(&path).unwrap();
    result
}

fn error(text: &str, vars: &[(&str, &str)]) -> String {
    load_with(text, vars).unwrap_err().to_string()
}

#[test]
fn defaults_load_without_a_file_and_are_the_cores() {
    let c = load(None, []).unwrap();
    assert_eq!(c, Config::default());
    assert!(
        c.secure_cookies(),
        "secure even on the loopback default listener"
    );
    assert_eq!(c.core_settings(), Settings::default());
}

#[test]
fn the_example_file_is_valid_and_shows_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
    assert_eq!(load(Some(&path), []).unwrap(), Config::default());
}

#[test]
fn an_unknown_key_stops_start_up_naming_the_key() {
    assert!(error("listen_port = 9000", &[]).contains("listen_port (/"));
    assert!(error("[lockout]\nuser_attempts = 3", &[]).contains("lockout.user_attempts"));
    let err = error("", &[("MODAL2FA_LOCKOUT__COLOUR", "red")]);
    assert!(
        err.contains("lockout.colour (MODAL2FA_LOCKOUT__COLOUR): unknown key"),
        "{err}"
    );
}

#[test]
fn an_invalid_value_names_its_key_and_where_it_came_from() {
    for (text, key) in [
        ("listen = \"nowhere\"", "listen"),
        ("database_url = \"oracle://x\"", "database_url"),
        ("trusted_proxies = [\"10.0.0.0/99\"]", "trusted_proxies"),
        (
            "[lockout]\nexcluded_ips = [\"nonsense\"]",
            "lockout.excluded_ips",
        ),
        ("logout_redirect = \"//evil.example/\"", "logout_redirect"),
        ("template_dir = \"/no/such/dir\"", "template_dir"),
        ("[appearance.nosuch]\nsize = \"lg\"", "appearance"),
        ("[appearance.login]\nsize = \"huge\"", "appearance"),
        (
            "[password_hashing]\nalgorithm = \"md5\"",
            "password_hashing.algorithm",
        ),
        ("session_idle_minutes = \"soon\"", "session_idle_minutes"),
    ] {
        let err = error(text, &[]);
        assert!(
            err.contains(&format!("{key} (/")) && err.contains(".toml): "),
            "{text}: {err}"
        );
    }
    assert!(
        error("demo = maybe", &[]).contains(".toml:1:8: "),
        "syntax: the file's line"
    );
    let err = error("", &[("MODAL2FA_LISTEN", "nowhere")]);
    assert!(err.contains("listen (MODAL2FA_LISTEN): "), "{err}");
}

#[test]
fn environment_variables_override_the_file_at_any_depth() {
    let file = "listen = \"127.0.0.1:9000\"\n[lockout]\nuser_failed_attempts = 3\n";
    let c = load_with(
        file,
        &[
            ("MODAL2FA_LISTEN", "0.0.0.0:8443"),
            ("MODAL2FA_LOCKOUT__USER_FAILED_ATTEMPTS", "7"),
            ("MODAL2FA_LOCKOUT__EXCLUDED_IPS", "10.0.0.0/8, ::1"),
            ("MODAL2FA_APPEARANCE__LOGIN__SIZE", "lg"),
            ("MODAL2FA_PASSWORD_HASHING__ITERATIONS", "3"),
            ("MODAL2FA_TRUSTED_PROXY_COUNT", "1"),
        ],
    )
    .unwrap();
    assert_eq!(c.listen, SocketAddr::from(([0, 0, 0, 0], 8443)));
    assert_eq!(c.lockout.user_failed_attempts.get(), 7);
    assert!(c.lockout.excluded_ips.contains("::1".parse().unwrap()));
    assert_eq!(c.appearance["login"].size.as_deref(), Some("lg"));
    let argon2id = PasswordHashing::Argon2id {
        memory_kib: 19_456,
        iterations: 3,
        parallelism: 1,
    };
    assert_eq!(c.password_hashing, argon2id);
    assert_eq!(c.core_settings().client_ip.effective_proxy_count(), 1);
}

#[test]
fn variables_that_are_not_settings_are_ignored() {
    let vars = [
        ("MODAL2FA_TEST_POSTGRES_URL", "x"),
        ("MODAL2FA_CONFIG", "x"),
        ("MODAL2FA_LOG", "x"),
        ("OTHER", "x"),
    ];
    let c = load(None, vars.map(|(k, v)| (k.to_owned(), v.to_owned()))).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn an_environment_string_that_looks_like_a_number_stays_a_string() {
    let c = load_with(
        "",
        &[
            ("MODAL2FA_SITE_NAME", "2024"),
            ("MODAL2FA_TOTP_ISSUER", "007"),
        ],
    )
    .unwrap();
    assert_eq!(
        (c.site_name.as_str(), c.totp_issuer.as_str()),
        ("2024", "007")
    );
}

#[test]
fn the_secret_is_never_shown_in_an_error() {
    for text in [
        "secret = 98765432109876543210",
        "secret = 987654321abc",
        "secret = [\"987654321\"]",
    ] {
        let err = error(text, &[]);
        assert!(
            err.contains("secret") && !err.contains("987654321"),
            "{err}"
        );
    }
    let err = error("", &[("MODAL2FA_SECRET__X", "987654321")]);
    assert!(
        err.contains("MODAL2FA_SECRET__X") && !err.contains("987654321"),
        "{err}"
    );
    let c = load_with("secret = \"987654321\"", &[]).unwrap();
    assert!(
        !format!("{c:?}").contains("987654321"),
        "nor in Debug output"
    );
}

#[test]
fn lifetimes_and_counts_beyond_their_bounds_are_refused() {
    for (text, bound) in [
        ("session_idle_minutes = 1441", "session_idle_minutes (/"),
        (
            "session_absolute_hours = 4000000000",
            "session_absolute_hours (/",
        ),
        ("pending_login_minutes = 61", "must be from 1 to 60"),
        ("reset_link_days = 31", "must be from 1 to 30"),
        ("trusted_device_days = 401", "must be from 1 to 400"),
        ("database_max_connections = 0", "must be from 1 to 1000"),
        (
            "database_acquire_timeout_seconds = 61",
            "database_acquire_timeout_seconds (/",
        ),
        (
            "[lockout]\nuser_failed_attempts = 0",
            "lockout.user_failed_attempts (/",
        ),
        (
            "[lockout]\nlockout_seconds = 86401",
            "lockout.lockout_seconds (/",
        ),
        (
            "[lockout]\nmax_lockout_seconds = 2592001",
            "lockout.max_lockout_seconds (/",
        ),
        (
            "[lockout]\nlockout_seconds = 60\nmax_lockout_seconds = 30",
            "not be below",
        ),
        (
            "[password_hashing]\niterations = 101",
            "iterations must be from 1 to 100",
        ),
    ] {
        let err = error(text, &[]);
        assert!(err.contains(bound), "{text}: {err}");
    }
}

#[test]
fn the_database_timeouts_are_bounded_seconds_that_make_the_pools_options() {
    assert_eq!(Config::default().pool_options(), PoolOptions::default());
    let c = load_with(
        "database_acquire_timeout_seconds = 60",
        &[("MODAL2FA_DATABASE_MAX_CONNECTIONS", "4")],
    )
    .unwrap();
    let seconds = std::time::Duration::from_secs;
    assert_eq!(
        c.pool_options(),
        PoolOptions {
            max_connections: 4,
            acquire_timeout: seconds(60),
            ..PoolOptions::default()
        }
    );
    for (key, var, value) in [
        (
            "database_acquire_timeout_seconds",
            "MODAL2FA_DATABASE_ACQUIRE_TIMEOUT_SECONDS",
            "0",
        ),
        (
            "database_acquire_timeout_seconds",
            "MODAL2FA_DATABASE_ACQUIRE_TIMEOUT_SECONDS",
            "61",
        ),
    ] {
        let err = error("", &[(var, value)]);
        assert!(
            err.contains(&format!("{key} ({var}): must be from 1 to 60")),
            "{err}"
        );
    }
}

#[test]
fn password_hashing_maps_to_the_core_scheme() {
    let c = load_with("[password_hashing]\nalgorithm = \"pbkdf2_sha256\"", &[]).unwrap();
    assert_eq!(
        c.password_hashing,
        PasswordHashing::Pbkdf2Sha256 {
            iterations: 1_000_000
        }
    );
    let text = "[password_hashing]\nalgorithm = \"argon2id\"\nmemory_kib = 47104\niterations = 1\nparallelism = 2";
    let argon2id = PasswordHashing::Argon2id {
        memory_kib: 47_104,
        iterations: 1,
        parallelism: 2,
    };
    assert_eq!(
        load_with(text, &[])
            .unwrap()
            .core_settings()
            .password_hashing,
        argon2id
    );
    let err = error(
        "[password_hashing]\nalgorithm = \"pbkdf2_sha256\"\nmemory_kib = 1",
        &[],
    );
    assert!(
        err.contains("password_hashing (/") && err.contains("takes only iterations"),
        "{err}"
    );
}

#[test]
fn a_hash_cost_below_the_floor_is_refused_unless_weak_hashing_is_allowed() {
    // OWASP's rows, and past the last one.
    for (m, t) in [
        (47_104, 1),
        (19_456, 2),
        (12_288, 3),
        (9_216, 4),
        (7_168, 5),
        (7_168, 9),
    ] {
        let text = |m: u32| format!("[password_hashing]\nmemory_kib = {m}\niterations = {t}\n");
        assert!(load_with(&text(m), &[]).is_ok(), "{}", text(m));
        let err = error(&text(m - 1), &[]);
        let (key, bound) = ("password_hashing.memory_kib (/", format!("at least {m} "));
        assert!(err.contains(key) && err.contains(&bound), "{err}");
    }
    let weak = "[password_hashing]\nalgorithm = \"pbkdf2_sha256\"\niterations = 1000\n";
    let err = error(weak, &[]);
    assert!(
        err.contains("password_hashing.iterations (/") && err.contains("at least 600000"),
        "{err}"
    );
    assert!(load_with(&format!("allow_weak_password_hashing = true\n{weak}"), &[]).is_ok());
    assert!(load_with(weak, &[("MODAL2FA_ALLOW_WEAK_PASSWORD_HASHING", "true")]).is_ok());
}

#[test]
fn cookies_are_secure_on_a_loopback_listener_unless_insecure_http_development_is_set() {
    // Behind a reverse proxy on the same host the listener is loopback: still secure.
    for listen in ["127.0.0.1:8080", "[::1]:8080", "127.0.0.2:0"] {
        let c = load_with(&format!("listen = \"{listen}\""), &[]).unwrap();
        assert!(!c.insecure_http_development, "{listen}");
        assert!(c.secure_cookies(), "{listen}: Secure, __Host- and HSTS");
    }
    let c = load_with("insecure_http_development = true", &[]).unwrap();
    assert!(
        !c.secure_cookies(),
        "the development setting turns them off"
    );
    let c = load_with(
        "listen = \"[::1]:0\"",
        &[("MODAL2FA_INSECURE_HTTP_DEVELOPMENT", "true")],
    )
    .unwrap();
    assert!(!c.secure_cookies(), "from the environment too");
    let c = load_with(
        "insecure_http_development = true",
        &[("MODAL2FA_INSECURE_HTTP_DEVELOPMENT", "false")],
    )
    .unwrap();
    assert!(c.secure_cookies(), "the environment wins over the file");
}

#[test]
fn insecure_http_development_on_a_listener_that_is_not_loopback_stops_start_up_naming_it() {
    let err = error(
        "listen = \"0.0.0.0:8080\"\ninsecure_http_development = true",
        &[],
    );
    assert!(
        err.contains("insecure_http_development (/") && err.contains("loopback"),
        "{err}"
    );
    let err = error(
        "insecure_http_development = true",
        &[("MODAL2FA_LISTEN", "192.0.2.10:8080")],
    );
    assert!(
        err.contains("insecure_http_development (/") && err.contains("192.0.2.10:8080"),
        "{err}"
    );
    let err = error(
        "listen = \"[::]:8080\"",
        &[("MODAL2FA_INSECURE_HTTP_DEVELOPMENT", "true")],
    );
    assert!(
        err.contains("insecure_http_development (MODAL2FA_INSECURE_HTTP_DEVELOPMENT): "),
        "{err}"
    );
}

#[test]
fn the_removed_secure_cookies_key_stops_start_up_pointing_to_its_replacement() {
    for (text, vars) in [
        ("secure_cookies = false", &[][..]),
        ("", &[("MODAL2FA_SECURE_COOKIES", "true")][..]),
    ] {
        let err = error(text, vars);
        assert!(
            err.contains("secure_cookies (")
                && err.contains("removed")
                && err.contains("insecure_http_development"),
            "{err}"
        );
    }
}

#[test]
fn passkeys_are_configured_by_their_origin_and_a_bad_one_stops_start_up_naming_the_key() {
    let env = [(
        "MODAL2FA_WEBAUTHN__ORIGIN".to_owned(),
        "http://localhost:8080".to_owned(),
    )];
    let c = load(None, env).unwrap();
    let rp = c.core_settings().relying_party.expect("passkeys on");
    assert_eq!(
        (rp.id(), rp.origin()),
        ("localhost", "http://localhost:8080")
    );
    assert_eq!(Config::default().core_settings().relying_party, None);
    let err = error("", &[("MODAL2FA_WEBAUTHN__ORIGIN", "http://example.com")]);
    assert!(err.contains("webauthn.origin"), "{err}");
}

#[test]
fn a_public_url_or_mail_section_that_cannot_work_stops_start_up_naming_the_key() {
    for (text, key) in [
        ("public_url = \"http://app.example.com\"", "public_url"),
        (
            "public_url = \"https://app.example.com/auth\"",
            "public_url",
        ),
        ("public_url = \"app.example.com\"", "public_url"),
        ("[mail]\ntransport = \"smtp\"", "mail.smtp.host"),
        ("[mail]\ntransport = \"file\"", "mail.file_dir"),
        ("[mail]\ntransport = \"pigeon\"", "mail.transport"),
    ] {
        let err = error(text, &[]);
        assert!(err.contains(key), "{text}: {err}");
    }
    for ok in [
        "public_url = \"https://app.example.com\"",
        "public_url = \"http://localhost:8080\"",
    ] {
        load_with(ok, &[]).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}
