//! A tiny hand-written HTTP/1.1 client, just enough to drive the server's modals: one
//! keep-alive connection to `127.0.0.1` (reopened once when the server closed it), a
//! cookie jar, htmx requests (`HX-Request: true`) and same-origin form POSTs.
//!
//! It reads a response's body by its `Content-Length` only: it does not support chunked
//! bodies (`Transfer-Encoding: chunked`). A response without a `Content-Length` is read as
//! an empty body, and whatever the server sent as its body is left on the connection.

use std::collections::HashMap;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What the harness looks at in a response.
pub struct Resp {
    /// The status code (0 when the status line is malformed).
    pub status: u16,
    /// The `Location` or `HX-Redirect` header.
    pub location: Option<String>,
    /// The body, read by its `Content-Length`.
    pub body: String,
}

/// A client of the server on `127.0.0.1:port`.
pub struct Client {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
    /// The cookies to send: set by `Set-Cookie`, removed by an empty value or `Max-Age=0`.
    pub jar: HashMap<String, String>,
}

impl Client {
    /// A client with no connection yet and an empty jar.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            conn: None,
            jar: HashMap::new(),
        }
    }

    /// Sends one request (a form POST when `form` is given, an htmx request when `htmx`)
    /// and reads its response; on a failure of a kept-alive connection it reconnects and
    /// tries once more. Panics when that fails too.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&str>,
        htmx: bool,
    ) -> Resp {
        for attempt in 0..2 {
            if self.conn.is_none() {
                let s = TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .expect("connect");
                s.set_nodelay(true).ok();
                self.conn = Some(BufReader::new(s));
            }
            match self.try_request(method, path, form, htmx).await {
                Ok(r) => return r,
                Err(e) if attempt == 0 => {
                    let _ = e;
                    self.conn = None;
                }
                Err(e) => panic!("{method} {path}: {e}"),
            }
        }
        unreachable!()
    }

    async fn try_request(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&str>,
        htmx: bool,
    ) -> std::io::Result<Resp> {
        let port = self.port;
        let cookies = self
            .jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let conn = self.conn.as_mut().unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUser-Agent: modal2fa-bench\r\n"
        );
        if htmx {
            req.push_str("HX-Request: true\r\n");
        }
        if !cookies.is_empty() {
            req.push_str(&format!("Cookie: {cookies}\r\n"));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            req.push_str(&format!(
                "Sec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        conn.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (mut len, mut location, mut close) = (0usize, None, false);
        loop {
            line.clear();
            conn.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').unwrap_or((l, ""));
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => len = value.parse().unwrap_or(0),
                "location" | "hx-redirect" => location = Some(value.to_owned()),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "set-cookie" => {
                    let pair = value.split(';').next().unwrap_or("");
                    if let Some((k, v)) = pair.split_once('=') {
                        if v.is_empty() || value.contains("Max-Age=0") {
                            self.jar.remove(k);
                        } else {
                            self.jar.insert(k.to_owned(), v.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
        let mut buf = vec![0; len];
        conn.read_exact(&mut buf).await?;
        if close {
            self.conn = None;
        }
        Ok(Resp {
            status,
            location,
            body: String::from_utf8_lossy(&buf).into_owned(),
        })
    }
}

/// The CSRF token of the first form in `html`; panics when there is none.
pub fn csrf(html: &str) -> String {
    let start = html
        .find("name=\"csrf_token\" value=\"")
        .map(|i| i + 25)
        .expect("a csrf token");
    html[start..].split('"').next().unwrap().to_owned()
}

/// `s` percent-encoded for a form body: every byte but ASCII letters and digits.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
