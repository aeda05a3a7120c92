//! The user menu (for host pages too), host pages rendered with the common context, the
//! embedded static files, and the "temporarily unavailable" answer.

use actix_session::{Session, SessionExt};
use actix_web::{HttpRequest, HttpResponse, web};
use modal2fa_core::model::AuthMethod;
use serde::Serialize;

use crate::copy;
use crate::error::opaque_500;
use crate::extract::Flow;
use crate::render::ModalAppearance;
use crate::respond::urls;
use crate::{Modal2faWeb, session};

#[derive(Serialize)]
struct MenuUser {
    name: String,
    method: AuthMethod,
    has_totp: bool,
    /// Passkeys the user may use.
    passkeys: usize,
    can_manage_users: bool,
    can_manage_security: bool,
}

/// The user menu's HTML for the session (a "Sign in" button when signed out; nothing
/// when the store cannot be read). Only the signed-in menu has a form (signing out), so
/// only it carries a CSRF token, the user's: the menu never needs the visitor's nonce.
pub(crate) async fn html(web: &Modal2faWeb, session: &Session) -> String {
    let state = session::login_state(session);
    let mut ctx = tera::Context::new();
    ctx.insert("urls", &urls(web));
    ctx.insert("passkeys", &web.auth().passkeys.enabled());
    let token = state.signed_in().map(|s| {
        web.0
            .csrf
            .token(web.auth().now(), crate::Holder::User(s.user_id))
    });
    ctx.insert("csrf_token", &token.unwrap_or_default());
    let user = match web.auth().login.signed_in_user(&state).await {
        Ok((user, s)) => {
            let auth = web.auth();
            let (has_totp, passkeys) = match auth.factors.summary(&user).await {
                Ok(summary) => (summary.totp, summary.passkeys),
                Err(e) => {
                    tracing::warn!(error = %e, "reading factors for the user menu failed");
                    (false, 0)
                }
            };
            Some(MenuUser {
                name: user.display_name(),
                method: s.method,
                has_totp,
                passkeys,
                can_manage_users: auth.policy().can_manage_users(&user),
                can_manage_security: auth.policy().can_manage_security(&user),
            })
        }
        Err(_) => None,
    };
    ctx.insert("user", &user);
    web.0
        .render
        .render("partials/user_menu.html", &ctx)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "rendering the user menu failed");
            String::new()
        })
}

pub(crate) async fn get(flow: Flow) -> HttpResponse {
    let body = html(&flow.web, &flow.session).await;
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// One of the host's own page templates with the common context (see
/// [`Modal2faWeb::page`]).
pub(crate) async fn page(
    web: &Modal2faWeb,
    req: &HttpRequest,
    template: &str,
    title: &str,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> HttpResponse {
    let session = &req.get_session();
    let state = session::login_state(session);
    let mut ctx = tera::Context::new();
    for (k, v) in extra {
        ctx.insert(k.clone(), v);
    }
    ctx.insert("csrf_token", &web.csrf_token_for(req, &state));
    ctx.insert("urls", &urls(web));
    ctx.insert("title", title);
    ctx.insert("site_name", &web.settings().site_name);
    ctx.insert("static_base", &web.static_base());
    ctx.insert("user_menu", &html(web, session).await);
    match web.0.render.render(template, &ctx) {
        Ok(html) => web.with_csrf_cookie(
            req,
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header(("Cache-Control", "no-store"))
                .body(html),
        ),
        Err(e) => {
            tracing::error!(error = %e, template, "rendering a page failed");
            opaque_500()
        }
    }
}

/// 503 with `Retry-After`: a modal fragment for htmx, a full page otherwise.
pub(crate) fn unavailable(web: &Modal2faWeb, htmx: bool) -> HttpResponse {
    let mut ctx = tera::Context::new();
    let look: ModalAppearance = web
        .settings()
        .appearance
        .get("unavailable")
        .cloned()
        .unwrap_or_default();
    ctx.insert("errors", &vec![copy::UNAVAILABLE]);
    ctx.insert("modal_name", "unavailable");
    let title = look.title.as_deref().unwrap_or("Temporarily unavailable");
    ctx.insert("title", title);
    ctx.insert("size", look.size.as_deref().unwrap_or(""));
    ctx.insert("classes", look.classes.as_deref().unwrap_or(""));
    ctx.insert("urls", &urls(web));
    ctx.insert("site_name", &web.settings().site_name);
    ctx.insert("htmx", &htmx);
    ctx.insert("next", "/");
    ctx.insert("next_q", "/");
    ctx.insert("csrf_token", "");
    ctx.insert("static_base", &web.static_base());
    let rendered = web
        .0
        .render
        .render("modals/unavailable.html", &ctx)
        .and_then(|inner| {
            if htmx {
                Ok(inner)
            } else {
                ctx.insert("modal_html", &inner);
                web.0.render.render("page.html", &ctx)
            }
        });
    let body = rendered.unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering the unavailable page failed");
        copy::UNAVAILABLE.to_owned()
    });
    HttpResponse::ServiceUnavailable()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Retry-After", "5"))
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

pub(crate) async fn static_get(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(f) = modal2fa_web_assets::static_file(&path) else {
        return HttpResponse::NotFound().finish();
    };
    let if_none_match = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok());
    if if_none_match == Some(f.etag.as_str()) {
        return HttpResponse::NotModified().finish();
    }
    HttpResponse::Ok()
        .content_type(f.content_type)
        .insert_header(("ETag", f.etag.clone()))
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(f.bytes.into_owned())
}
