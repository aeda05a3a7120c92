//! QR codes as inline SVG (no image crates, no data URLs needed).

use qrcodegen::{QrCode, QrCodeEcc};

/// An SVG QR code of `text`, with a four-module quiet zone, or `None` if it does not fit.
pub fn svg(text: &str) -> Option<String> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" role=\"img\" aria-label=\"QR code for your authenticator app\" shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_otpauth_url_becomes_an_svg_with_a_path() {
        let s = super::svg("otpauth://totp/x:y?secret=ABC&issuer=x").unwrap();
        assert!(s.starts_with("<svg") && s.contains("<path d=\"M"));
    }
}
