//! The application's own pages, in its own layout (which has an inline script of its
//! own: modal2fa's strict CSP covers only `/auth/…`). Each page takes modal2fa's guard
//! as an extractor and puts the user menu in its navbar.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use modal2fa_actix::{Modal2faWeb, SecondFactorUser, SignedInUser, actix_session};

/// The application's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", modal2fa_actix::get().to(home))
        .route("/account", modal2fa_actix::get().to(account))
        .route("/reports", modal2fa_actix::get().to(reports));
}

/// The application's layout: its own theme script inline, modal2fa's assets by helper.
async fn layout(
    web: &Modal2faWeb,
    req: &HttpRequest,
    session: &Session,
    title: &str,
    body: &str,
) -> HttpResponse {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} · Acme</title>
{csrf}
{styles}
<script>document.documentElement.dataset.theme = localStorage.theme || "light";</script>
</head>
<body>
<nav class="navbar border-bottom mb-4"><div class="container">
<a class="navbar-brand" href="/">Acme</a>
{menu}
</div></nav>
<main class="container">{body}</main>
{scripts}
</body>
</html>"#,
        csrf = web.csrf_meta_tag(req),
        styles = web.head_tags(),
        menu = web.user_menu_html(session).await,
        scripts = web.script_tags(),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html)
}

async fn home(web: web::Data<Modal2faWeb>, req: HttpRequest, session: Session) -> HttpResponse {
    let body = "<h1>Acme</h1><p>Open <a href=\"/account\">your account</a> or \
                <a href=\"/reports\">the reports</a> (behind a second factor).</p>";
    layout(&web, &req, &session, "Home", body).await
}

async fn account(
    user: SignedInUser,
    web: web::Data<Modal2faWeb>,
    req: HttpRequest,
    session: Session,
) -> HttpResponse {
    let body = format!(
        "<h1>Your account</h1><p>Signed in as <strong>{}</strong>.</p>",
        escape(&user.user.display_name())
    );
    layout(&web, &req, &session, "Account", &body).await
}

async fn reports(
    user: SecondFactorUser,
    web: web::Data<Modal2faWeb>,
    req: HttpRequest,
    session: Session,
) -> HttpResponse {
    let body = format!(
        "<h1>Reports</h1><p>Hello {}, these figures need a second factor.</p>",
        escape(&user.0.user.display_name())
    );
    layout(&web, &req, &session, "Reports", &body).await
}

/// Text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
