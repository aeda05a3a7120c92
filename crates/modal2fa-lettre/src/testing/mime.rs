//! A small reader of the messages this crate writes: headers (unfolded, RFC 2047 encoded
//! words decoded) and the decoded text and HTML parts of a `multipart/alternative`. Enough
//! for assertions in tests; not a general MIME parser.

/// A message, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMail {
    headers: Vec<(String, String)>,
    /// The `text/plain` part, decoded (quoted-printable or base64), with `\n` line ends.
    pub text: Option<String>,
    /// The `text/html` part, decoded, with `\n` line ends.
    pub html: Option<String>,
}

impl ParsedMail {
    /// Reads `raw` (a whole message, as on the wire).
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let (headers, body) = split_entity(&raw);
        let mut mail = Self {
            headers: headers.clone(),
            text: None,
            html: None,
        };
        collect_parts(&headers, body, &mut mail, 0)?;
        Ok(mail)
    }

    /// The first header called `name` (case-insensitive), unfolded and decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| decode_encoded_words(v))
    }

    /// The first header called `name`, unfolded but not decoded (as on the wire).
    pub fn raw_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How many headers are called `name`.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// Splits an entity (`\n` line ends) into its unfolded headers and its body.
fn split_entity(entity: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match entity.find("\n\n") {
        Some(i) => (&entity[..i], &entity[i + 2..]),
        None => (entity, ""),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A parameter of a structured header value (`boundary="…"`).
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn collect_parts(
    headers: &[(String, String)],
    body: &str,
    mail: &mut ParsedMail,
    depth: usize,
) -> Result<(), String> {
    if depth > 8 {
        return Err("MIME parts nested too deep".into());
    }
    let content_type = header(headers, "Content-Type").unwrap_or("text/plain");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media.starts_with("multipart/") {
        let boundary = parameter(content_type, "boundary")
            .ok_or_else(|| format!("`{media}` without a boundary"))?;
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut current: Option<Vec<&str>> = None;
        for line in body.split('\n') {
            let trimmed = line.trim_end();
            if trimmed == delimiter || trimmed == format!("{delimiter}--") {
                if let Some(lines) = current.take() {
                    parts.push(lines.join("\n"));
                }
                if trimmed.ends_with("--") {
                    break;
                }
                current = Some(Vec::new());
            } else if let Some(lines) = current.as_mut() {
                lines.push(line);
            }
        }
        if parts.is_empty() {
            return Err(format!("`{media}` without parts"));
        }
        for part in parts {
            let (h, b) = split_entity(&part);
            collect_parts(&h, b, mail, depth + 1)?;
        }
        return Ok(());
    }
    let encoding = header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body).ok_or("invalid base64 body")?,
        _ => body.as_bytes().to_vec(),
    };
    let decoded = String::from_utf8(bytes)
        .map_err(|_| format!("a `{media}` part is not UTF-8"))?
        .replace("\r\n", "\n");
    let slot = match media.as_str() {
        "text/plain" => &mut mail.text,
        "text/html" => &mut mail.html,
        _ => return Ok(()),
    };
    if slot.is_none() {
        *slot = Some(decoded);
    }
    Ok(())
}

/// Decodes a quoted-printable body (`\n` line ends): `=XX` escapes, and soft line
/// breaks (`=` at the end of a line) joined.
pub fn decode_quoted_printable(body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut lines = body.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && let Some(b) = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        if !soft && lines.peek().is_some() {
            out.push(b'\n');
        }
    }
    out
}

/// Decodes standard base64, ignoring whitespace. `None` when it is not base64.
pub fn decode_base64(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in input.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Decodes the RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) of a header
/// value; the whitespace between two adjacent encoded words is dropped.
pub fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((decoded, len)) = encoded_word(rest) {
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            rest = &rest[len..];
            last_was_word = true;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == ' ' || c == '\t' {
            pending_space.push(c);
        } else {
            out.push_str(&pending_space);
            pending_space.clear();
            out.push(c);
            last_was_word = false;
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(&pending_space);
    out
}

/// The encoded word at the start of `s`, decoded, and its length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let data = &inner[..end];
    if data.contains(' ') || !charset.to_ascii_lowercase().starts_with("utf-8") {
        return None;
    }
    let bytes = match encoding {
        "b" | "B" => decode_base64(data)?,
        "q" | "Q" => decode_quoted_printable(&data.replace('_', " ")),
        _ => return None,
    };
    let len = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    Some((String::from_utf8(bytes).ok()?, len))
}
