//! The parsing newtypes and the method names: what is accepted and what is refused.
use super::*;

#[test]
fn usernames_are_trimmed_and_checked() {
    assert_eq!(Username::parse("  alice ").unwrap().as_str(), "alice");
    assert_eq!(
        Username::parse("a.b+c-d_e@x").unwrap().as_str(),
        "a.b+c-d_e@x"
    );
    assert!(Username::parse("").is_err());
    assert!(Username::parse("   ").is_err());
    assert!(Username::parse("has space").is_err());
    assert!(Username::parse("semi;colon").is_err());
    assert!(Username::parse(&"a".repeat(151)).is_err());
    assert!(Username::parse(&"a".repeat(150)).is_ok());
    assert_eq!(Username::parse("Alice").unwrap().canonical(), "alice");
}

#[test]
fn emails_are_checked_and_their_domain_lower_cased() {
    assert_eq!(
        Email::parse(" Bob@Example.COM ").unwrap().as_str(),
        "Bob@example.com"
    );
    for bad in [
        "",
        "bob",
        "@x.com",
        "bob@",
        "bob@x",
        "bob@.x.com",
        "bob@x..com",
        "b ob@x.com",
    ] {
        assert!(Email::parse(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn totp_codes_accept_six_to_eight_digits_with_spaces() {
    assert_eq!(TotpCode::parse("123 456").unwrap().digits(), "123456");
    assert_eq!(TotpCode::parse("1234-5678").unwrap().digits(), "12345678");
    assert!(TotpCode::parse("12345").is_err());
    assert!(TotpCode::parse("123456789").is_err());
    assert!(TotpCode::parse("12345a").is_err());
    assert!(TotpCode::parse("").is_err());
    assert!(!format!("{:?}", TotpCode::parse("123456").unwrap()).contains("123456"));
}

#[test]
fn auth_methods_round_trip_through_their_names() {
    for m in AuthMethod::ALL {
        assert_eq!(m.as_str().parse::<AuthMethod>().unwrap(), m);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            format!("\"{}\"", m.as_str())
        );
    }
    assert!("sms".parse::<AuthMethod>().is_err());
}
