//! [`SecurityHeaders`]: the strict headers the modals are built for (a CSP without inline
//! scripts, no framing, no MIME sniffing, a same-origin referrer policy, HSTS under
//! https), on the responses under the mount point only, or on every response of the app.
//!
//! Scoped by default, because a host's own pages are the host's: one with an inline
//! script would break under `script-src 'self'`. A header the handler set itself is kept.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::Error;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};

/// The Content-Security-Policy the modals hold under: scripts, styles and connections
/// from this origin only, images also as `data:` (the QR code), no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Where [`SecurityHeaders`] applies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Paths equal to this mount point or below it.
    Mount(String),
    /// Every response of the app.
    Everywhere,
}

impl Scope {
    fn covers(&self, path: &str) -> bool {
        match self {
            Self::Everywhere => true,
            Self::Mount(mount) => path
                .strip_prefix(mount.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }
}

/// Security headers as middleware (see
/// [`Modal2faWeb::security_headers`](crate::Modal2faWeb::security_headers) and
/// [`Modal2faWeb::security_headers_everywhere`](crate::Modal2faWeb::security_headers_everywhere)).
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    scope: Scope,
    headers: Rc<Vec<(HeaderName, HeaderValue)>>,
}

impl SecurityHeaders {
    /// The headers for responses below `mount` (`None`: every response), with HSTS when
    /// `https`.
    pub(crate) fn new(mount: Option<&str>, https: bool) -> Self {
        let mut headers = vec![
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            ("cross-origin-opener-policy", "same-origin"),
        ];
        if https {
            headers.push((
                "strict-transport-security",
                "max-age=63072000; includeSubDomains",
            ));
        }
        let scope = match mount {
            Some(m) => Scope::Mount(m.trim_end_matches('/').to_owned()),
            None => Scope::Everywhere,
        };
        Self {
            scope,
            headers: Rc::new(
                headers
                    .into_iter()
                    .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
                    .collect(),
            ),
        }
    }

    /// Whether the headers go on the response to a request for `path`.
    pub fn covers(&self, path: &str) -> bool {
        self.scope.covers(path)
    }
}

impl<S, B> Transform<S, ServiceRequest> for SecurityHeaders
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = SecurityHeadersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SecurityHeadersService {
            inner: Rc::new(service),
            config: self.clone(),
        }))
    }
}

/// The service [`SecurityHeaders`] builds.
pub struct SecurityHeadersService<S> {
    inner: Rc<S>,
    config: SecurityHeaders,
}

impl<S, B> Service<ServiceRequest> for SecurityHeadersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>>>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let headers = self
            .config
            .covers(req.path())
            .then(|| self.config.headers.clone());
        let call = self.inner.call(req);
        Box::pin(async move {
            let mut res = call.await?;
            for (name, value) in headers.iter().flat_map(|h| h.iter()) {
                if !res.headers().contains_key(name) {
                    res.headers_mut().insert(name.clone(), value.clone());
                }
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_scope_covers_the_mount_point_and_below_it_only() {
        let h = SecurityHeaders::new(Some("/auth/"), false);
        for path in [
            "/auth",
            "/auth/",
            "/auth/login/",
            "/auth/static/modal2fa.js",
        ] {
            assert!(h.covers(path), "{path}");
        }
        for path in ["/", "/authors", "/about/auth/", "/protected"] {
            assert!(!h.covers(path), "{path}");
        }
        assert!(SecurityHeaders::new(None, false).covers("/anything"));
    }

    #[test]
    fn hsts_is_sent_only_under_https() {
        let names =
            |h: SecurityHeaders| h.headers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let hsts = HeaderName::from_static("strict-transport-security");
        assert!(names(SecurityHeaders::new(None, true)).contains(&hsts));
        assert!(!names(SecurityHeaders::new(None, false)).contains(&hsts));
    }
}
