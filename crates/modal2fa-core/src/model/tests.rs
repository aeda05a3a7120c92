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

#[test]
fn spellings_of_one_name_that_differ_in_case_or_width_share_one_canonical_form_and_one_lockout_key()
{
    use crate::lockout::LockoutKey;
    for spelling in [
        "alice",
        "ALICE",
        "Alice",
        "aLiCe",
        "ａｌｉｃｅ",    // fullwidth
        "ＡＬＩＣＥ",    // fullwidth capitals
        "ａLiｃe",       // mixed widths
        "\u{1d41a}lice", // MATHEMATICAL BOLD SMALL A
    ] {
        let name = Username::parse(spelling).unwrap();
        assert_eq!(name.canonical(), "alice", "{spelling}");
        assert_eq!(
            LockoutKey::user(&name),
            LockoutKey::User("alice".into()),
            "{spelling}"
        );
        assert_eq!(name.as_str(), spelling, "the name is kept as typed");
    }
    // Compatibility characters fold to their plain letters: the Kelvin sign, the long s,
    // the "fi" ligature.
    assert_eq!(Username::parse("\u{212a}im").unwrap().canonical(), "kim");
    assert_eq!(Username::parse("\u{17f}am").unwrap().canonical(), "sam");
    assert_eq!(Username::parse("\u{fb01}ona").unwrap().canonical(), "fiona");
}

#[test]
fn accents_are_not_folded_so_an_accented_name_has_its_own_canonical_form_and_lockout_key() {
    use crate::lockout::LockoutKey;
    let plain = Username::parse("alice").unwrap();
    for spelling in [
        "alíce", // precomposed í (U+00ED)
        "ALÍCE",
        "ａｌíｃｅ",
        "ａｌÍｃｅ",
    ] {
        let accented = Username::parse(spelling).unwrap();
        assert_eq!(accented.canonical(), "al\u{ed}ce", "{spelling}");
        assert_ne!(accented.canonical(), plain.canonical(), "{spelling}");
        assert_eq!(
            LockoutKey::user(&accented),
            LockoutKey::User("al\u{ed}ce".into()),
            "{spelling}"
        );
        assert_ne!(LockoutKey::user(&accented), LockoutKey::user(&plain));
    }
    // A decomposed accent (i and U+0301 COMBINING ACUTE ACCENT) is not a letter or a digit:
    // such a name is refused before it is compared.
    assert_eq!(
        Username::parse("ali\u{301}ce").unwrap_err().problem,
        Problem::UsernameCharacters { allowed: "@.+-_" }
    );
}

#[test]
fn a_canonical_form_is_its_own_canonical_form() {
    for s in [
        "alice",
        "ALÍCE",
        "ａｌｉｃｅ",
        "\u{130}stanbul", // İ lower-cases to i + COMBINING DOT ABOVE
        "STRASSE",
        "straße",
        "ΟΔΥΣΣΕΥΣ",
        "\u{fdfa}",
    ] {
        let once = Username::parse(s).unwrap().canonical();
        assert_eq!(canonical_form(&once), once, "{s}");
    }
}

#[test]
fn a_username_whose_canonical_form_is_longer_than_150_characters_is_refused() {
    // U+FDFA (one letter) expands to 18 characters under NFKC.
    assert!(Username::parse(&"\u{fdfa}".repeat(8)).is_ok());
    assert_eq!(
        Username::parse(&"\u{fdfa}".repeat(9)).unwrap_err().problem,
        Problem::TooLong {
            max: Username::MAX_LEN
        }
    );
}

#[test]
fn email_addresses_are_compared_in_the_same_canonical_form() {
    for spelling in [
        "alice@example.com",
        "ALICE@EXAMPLE.COM",
        "Alice@Example.com",
        "ａｌｉｃｅ@example.com",
    ] {
        let email = Email::parse(spelling).unwrap();
        assert_eq!(email.canonical(), "alice@example.com", "{spelling}");
    }
    assert_eq!(
        Email::parse("Alíce@example.com").unwrap().canonical(),
        "alíce@example.com"
    );
    // The address is kept as typed, but for its lower-cased domain.
    assert_eq!(
        Email::parse("ＡLICE@Example.com").unwrap().as_str(),
        "ＡLICE@example.com"
    );
}

#[test]
fn a_stored_name_is_read_exactly_as_stored_and_only_blank_control_or_overlong_names_are_refused() {
    for stored in ["jane doe", " padded ", "semi;colon", "O'Brien"] {
        assert_eq!(Username::from_stored(stored).unwrap().as_str(), stored);
    }
    assert_eq!(
        Username::from_stored("   ").unwrap_err().problem,
        Problem::Required
    );
    assert_eq!(
        Username::from_stored("line\nbreak").unwrap_err().problem,
        Problem::ControlCharacter
    );
    assert!(Username::from_stored(&"a".repeat(151)).is_err());
    assert_eq!(
        Username::for_lookup("  jane doe ").unwrap().as_str(),
        "jane doe"
    );
}

#[test]
fn a_stored_address_needs_an_at_between_two_parts_and_no_space_and_may_be_single_label() {
    for stored in ["ops@localhost", "Mixed@Case.Example", "root@[127.0.0.1]"] {
        assert_eq!(Email::from_stored(stored).unwrap().as_str(), stored);
    }
    for (bad, problem) in [
        ("no-at", Problem::MissingAt),
        ("@example.com", Problem::LocalPart),
        ("a b@example.com", Problem::LocalPart),
        ("ops@", Problem::Domain),
        ("tab\t@example.com", Problem::ControlCharacter),
    ] {
        assert_eq!(
            Email::from_stored(bad).unwrap_err().problem,
            problem,
            "{bad}"
        );
    }
}

#[test]
fn relaxed_rules_admit_spaces_and_single_label_domains_for_new_accounts() {
    let relaxed = NameRules::DJANGO
        .with_username_characters("@.+-_ ")
        .with_single_label_domains(true);
    assert!(Username::parse("jane doe").is_err());
    assert_eq!(
        Username::parse_with(" jane doe ", &relaxed)
            .unwrap()
            .as_str(),
        "jane doe"
    );
    assert_eq!(
        Email::parse("ops@localhost").unwrap_err().problem,
        Problem::Domain
    );
    assert_eq!(
        Email::parse_with("ops@LOCALHOST", &relaxed)
            .unwrap()
            .as_str(),
        "ops@localhost"
    );
}
