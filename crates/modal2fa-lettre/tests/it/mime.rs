//! The test reader of messages (`modal2fa_lettre::testing`), on hand-written input.

use modal2fa_lettre::testing::{
    ParsedMail, decode_base64, decode_encoded_words, decode_quoted_printable,
};

#[test]
fn quoted_printable_soft_breaks_are_joined_and_escapes_decoded() {
    let body = "https://example.com/reset/abc=\ndef?x=3D1&y=3D2\nAl=C3=ADce=\n";
    assert_eq!(
        String::from_utf8(decode_quoted_printable(body)).unwrap(),
        "https://example.com/reset/abcdef?x=1&y=2\nAlíce"
    );
}

#[test]
fn base64_decodes_across_lines() {
    assert_eq!(
        decode_base64("QWzDrW\nNlIExp\r\nZGRlbGw=").unwrap(),
        "Alíce Liddell".as_bytes()
    );
    assert!(decode_base64("not*base64").is_none());
}

#[test]
fn adjacent_encoded_words_join_and_plain_text_stays() {
    assert_eq!(
        decode_encoded_words("=?utf-8?b?QWzDrWNl?= =?utf-8?q?_Liddell?= <alice@example.com>"),
        "Alíce Liddell <alice@example.com>"
    );
    assert_eq!(decode_encoded_words("plain  text"), "plain  text");
}

#[test]
fn a_multipart_message_gives_its_decoded_parts_and_headers() {
    let raw = "Subject: =?utf-8?q?Caf=C3=A9?=\r\n\
        To: someone@example.com\r\n\
        Content-Type: multipart/alternative;\r\n boundary=\"XYZ\"\r\n\
        \r\n\
        --XYZ\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        caf=C3=A9 https://a.example/=\r\nlong\r\n\
        --XYZ\r\n\
        Content-Type: text/html; charset=utf-8\r\n\
        Content-Transfer-Encoding: base64\r\n\
        \r\n\
        PHA+Y2Fmw6k8L3A+\r\n\
        --XYZ--\r\n";
    let mail = ParsedMail::parse(raw.as_bytes()).unwrap();
    assert_eq!(mail.header("subject").unwrap(), "Café");
    assert_eq!(mail.raw_header("Subject").unwrap(), "=?utf-8?q?Caf=C3=A9?=");
    assert_eq!(mail.header_count("To"), 1);
    assert_eq!(mail.text.as_deref(), Some("café https://a.example/long"));
    assert_eq!(mail.html.as_deref(), Some("<p>café</p>"));
}
