//! Turning results into responses: rendering a modal (a fragment for htmx, a full page
//! otherwise), commands, persisting a login step in the session, the trusted-device
//! cookie, and mapping a login step or a service error to the next screen.

use std::collections::HashMap;

use actix_web::HttpResponse;
use actix_web::cookie::{Cookie, SameSite};
use modal2fa_core::ServiceError;
use modal2fa_core::machine::{LoginState, Outcome};
use modal2fa_core::services::{CookieUpdate, LoginReport};

use crate::copy;
use crate::error::{WebError, opaque_500};
use crate::extract::Flow;
use crate::render::{Command, command, is_htmx};
use crate::session::{CLIENT_IP, CREATED, LOGIN_STATE, USER_AGENT};
use crate::{Modal2faWeb, second_factor};

/// Which modal a refused login step goes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Back<'a> {
    /// The login modal, keeping the typed username.
    Login(&'a str),
    /// The 2FA modal (or the login modal if the attempt was abandoned).
    SecondFactor,
}

/// `s` percent-encoded for a query string (unreserved characters and `/` kept).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A `303 See Other` to a local path.
pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to.to_owned()))
        .finish()
}

/// Every route's path by short name (`login`, `auth_2fa`, …), for templates.
pub(crate) fn urls(web: &Modal2faWeb) -> HashMap<&'static str, String> {
    let s = web.settings();
    crate::ROUTES
        .iter()
        .map(|(name, _)| (name.trim_start_matches("auth:"), s.path(name)))
        .collect()
}

/// A template context holding `errors`.
pub(crate) fn with_errors(errors: Vec<String>) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("errors", &errors);
    ctx
}

/// The words of a refused report (empty when the report is not a refusal).
pub(crate) fn refusal_text(flow: &Flow, report: &LoginReport) -> String {
    match report.outcome {
        Outcome::Refused(r) => copy::refusal(r, flow.auth().now()),
        _ => String::new(),
    }
}

impl Flow {
    /// Renders a modal: its inner content for htmx, a full page otherwise; with the CSRF
    /// nonce cookie when an anonymous visitor has none yet.
    pub fn modal(&self, name: &str, title: &str, mut ctx: tera::Context) -> HttpResponse {
        let web = &self.web;
        let s = web.settings();
        let appearance = s.appearance.get(name).cloned().unwrap_or_default();
        // The state as this request leaves it (a sign-in step may just have changed it).
        let state = crate::session::login_state(&self.session);
        ctx.insert("csrf_token", &web.csrf_token_for(&self.req, &state));
        ctx.insert("modal_name", name);
        ctx.insert("title", appearance.title.as_deref().unwrap_or(title));
        let default_size = if name == "user_devices" { "lg" } else { "" };
        ctx.insert("size", appearance.size.as_deref().unwrap_or(default_size));
        ctx.insert("classes", appearance.classes.as_deref().unwrap_or(""));
        ctx.insert("urls", &urls(web));
        ctx.insert("site_name", &s.site_name);
        ctx.insert("htmx", &is_htmx(&self.req));
        if ctx.get("errors").is_none() {
            ctx.insert("errors", &Vec::<String>::new());
        }
        let next = ctx
            .get("next")
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        ctx.insert("next_q", &encode(&next));
        ctx.insert("next", &next);
        ctx.insert("static_base", &web.static_base());
        let rendered = web
            .0
            .render
            .render(&format!("modals/{name}.html"), &ctx)
            .and_then(|inner| {
                if is_htmx(&self.req) {
                    Ok(inner)
                } else {
                    ctx.insert("modal_html", &inner);
                    web.0.render.render("page.html", &ctx)
                }
            });
        match rendered {
            Ok(body) => web.with_csrf_cookie(
                &self.req,
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .insert_header(("Cache-Control", "no-store"))
                    .body(body),
            ),
            Err(e) => {
                tracing::error!(error = %e, "rendering a modal failed");
                opaque_500()
            }
        }
    }

    /// The response for a command (close, reload, redirect).
    pub fn command(&self, cmd: Command, fallback: &str) -> HttpResponse {
        command(&self.req, cmd, fallback)
    }

    /// Persists what a login step left: the new state, a renewed id at privilege
    /// changes, nothing at all for an anonymous visitor.
    pub fn apply(&self, report: &LoginReport) -> Result<(), WebError> {
        let session = &self.session;
        if report.end_session || report.state == LoginState::Anonymous {
            if self.state != LoginState::Anonymous {
                session.purge();
            }
            return Ok(());
        }
        let ctx = &self.ctx;
        let insert = || -> Result<(), actix_session::SessionInsertError> {
            session.insert(LOGIN_STATE, &report.state)?;
            session.insert(CLIENT_IP, ctx.ip.to_string())?;
            session.insert(USER_AGENT, &ctx.user_agent)?;
            if report.renew_session {
                session.insert(CREATED, self.auth().now().unix_timestamp())?;
            }
            Ok(())
        };
        insert().map_err(WebError::unexpected)?;
        if report.renew_session {
            session.renew();
        }
        Ok(())
    }

    /// The trusted-device cookie for an update, if it changes.
    pub fn device_cookie(&self, update: &CookieUpdate) -> Option<Cookie<'static>> {
        let s = self.web.settings();
        let base = |value: String| {
            Cookie::build(s.device_cookie_name(), value)
                .path("/")
                .http_only(true)
                .secure(s.secure_cookies)
                .same_site(SameSite::Lax)
        };
        match update {
            CookieUpdate::Keep => None,
            CookieUpdate::Set(v) => {
                let lifetime = self.auth().settings().trusted_device_lifetime;
                Some(
                    base(v.expose().to_owned())
                        .max_age(actix_web::cookie::time::Duration::seconds(
                            lifetime.whole_seconds(),
                        ))
                        .finish(),
                )
            }
            CookieUpdate::Clear => {
                let mut c = base(String::new()).finish();
                c.make_removal();
                Some(c)
            }
        }
    }

    /// `resp` with the trusted-device cookie of `update` attached.
    pub fn with_device_cookie(
        &self,
        mut resp: HttpResponse,
        update: &CookieUpdate,
    ) -> HttpResponse {
        if let Some(c) = self.device_cookie(update) {
            // A cookie built from our own values always encodes.
            let _ = resp.add_cookie(&c);
        }
        resp
    }

    /// Applies a login step and answers with the next screen.
    pub fn after_login_step(
        &self,
        report: LoginReport,
        next: &str,
        back: Back<'_>,
    ) -> Result<HttpResponse, WebError> {
        self.apply(&report)?;
        let htmx = is_htmx(&self.req);
        let resp = match report.outcome {
            Outcome::SignedIn { .. } if report.offer_recovery_codes => {
                if htmx {
                    crate::recovery::offer_modal(self, next, report.offer_trust)
                } else {
                    let to = self.path("auth:recovery_codes");
                    let after = if report.offer_trust {
                        "&after=trust"
                    } else {
                        ""
                    };
                    redirect(&format!("{to}?offer=1{after}&next={}", encode(next)))
                }
            }
            Outcome::SignedIn { .. } if report.offer_trust => {
                if htmx {
                    crate::devices::trust_modal(self, next, vec![])
                } else {
                    let to = self.path("auth:confirm_remember");
                    redirect(&format!("{to}?next={}", encode(next)))
                }
            }
            Outcome::SignedIn { .. } => self.command(Command::Redirect(next.to_owned()), next),
            Outcome::SecondFactorRequired { setup } => {
                if htmx {
                    second_factor::modal(self, &report.state, next, vec![], setup)
                } else {
                    let to = self.path("auth:auth_2fa");
                    redirect(&format!("{to}?next={}", encode(next)))
                }
            }
            Outcome::Refused(r) => {
                let msg = copy::refusal(r, self.auth().now());
                match (back, &report.state) {
                    (Back::Login(typed), _) => crate::login::modal(self, next, vec![msg], typed),
                    (_, LoginState::Anonymous) => crate::login::modal(self, next, vec![msg], ""),
                    _ => second_factor::modal(self, &report.state, next, vec![msg], false),
                }
            }
            _ => self.command(Command::Close, next),
        };
        Ok(self.with_device_cookie(resp, &report.trusted_device_cookie))
    }

    /// Turns a service error into what the user sees instead: `rerender` with a message
    /// for a mistake they can act on, the sign-in modal when they are not signed in, the
    /// 2FA modal for a step-up (coming back to `step_up_to`), the "unavailable" page for
    /// a store outage, and an opaque 500 for anything else.
    pub async fn recover(
        &self,
        e: ServiceError,
        step_up_to: &str,
        rerender: impl FnOnce(&Flow, String) -> HttpResponse,
    ) -> WebError {
        match e {
            ServiceError::StepUpRequired => match self.step_up(step_up_to, true).await {
                Ok(resp) => WebError::shown(resp),
                Err(e) => e,
            },
            ServiceError::NotSignedIn => {
                WebError::shown(crate::login::modal(self, step_up_to, vec![], ""))
            }
            other => self.fail(other, rerender),
        }
    }

    /// [`Flow::recover`] without step-up: for errors a step-up cannot fix.
    pub fn fail(
        &self,
        e: ServiceError,
        rerender: impl FnOnce(&Flow, String) -> HttpResponse,
    ) -> WebError {
        if let Some(msg) = copy::service_error(&e, self.auth().now()) {
            return WebError::shown(rerender(self, msg));
        }
        match e {
            ServiceError::Unavailable(source) => {
                tracing::error!(error = %crate::error::chain(source.as_ref()), "a store is unavailable");
                WebError::shown(crate::menu::unavailable(&self.web, is_htmx(&self.req)))
            }
            ServiceError::Unexpected(source) => WebError::Unexpected(source),
            other => WebError::unexpected(other),
        }
    }

    /// Starts a step-up (a session that may not manage factors proves one first) and
    /// shows the 2FA modal, which comes back to `next`; `explain` adds why.
    pub async fn step_up(&self, next: &str, explain: bool) -> Result<HttpResponse, WebError> {
        let report = match self
            .auth()
            .login
            .begin_step_up(&self.state, &self.ctx)
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.fail(e, |f, m| crate::login::modal(f, next, vec![m], ""))),
        };
        self.apply(&report)?;
        if report.outcome == Outcome::AlreadySatisfied {
            return Ok(self.command(Command::Redirect(next.to_owned()), next));
        }
        let errors = if explain {
            vec![copy::CONFIRM_FIRST.into()]
        } else {
            vec![]
        };
        Ok(second_factor::modal(
            self,
            &report.state,
            next,
            errors,
            false,
        ))
    }
}
