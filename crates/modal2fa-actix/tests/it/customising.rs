//! Customisation: per-modal appearance, a template override directory, replacing a named
//! route's handler, and the permission guard.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{App, HttpResponse, test, web};
use modal2fa_actix::testing::{TestClient, TestResponse};
use modal2fa_actix::{ManageUsers, Modal2faWeb, ModalAppearance, Permitted, WebSettings};
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;

fn web_with(settings: WebSettings, replace_login: bool) -> Modal2faWeb {
    let mem = MemoryPorts::new();
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        Settings::default(),
        &ServerSecret::new(vec![6; 32]).unwrap(),
    );
    let mut b = Modal2faWeb::builder(auth).settings(settings);
    if replace_login {
        b = b.replace_route("auth:login", || {
            web::get().to(|| async { HttpResponse::Ok().body("my own login") })
        });
    }
    b.build().unwrap()
}

/// `GET path` as htmx does, through the test client.
async fn get(web: Modal2faWeb, path: &str) -> TestResponse {
    let w = web.clone();
    let app = test::init_service(
        App::new()
            .wrap(web.session_middleware())
            .configure(move |c| w.configure(c))
            .route(
                "/users",
                web::get().to(|u: Permitted<ManageUsers>| async move {
                    HttpResponse::Ok().body(format!("admin {}", u.0.user.username))
                }),
            ),
    )
    .await;
    let mut client = TestClient::new(app, &web);
    client.set_htmx(true);
    client.get(path).await
}

#[actix_web::test]
async fn a_modal_takes_its_configured_size_title_and_classes() {
    let mut appearance = HashMap::new();
    appearance.insert(
        "login".to_owned(),
        ModalAppearance {
            size: Some("sm".into()),
            title: Some("Welcome back".into()),
            classes: Some("my-login".into()),
        },
    );
    let body = get(
        web_with(
            WebSettings {
                appearance,
                ..WebSettings::default()
            },
            false,
        ),
        "/auth/login/",
    )
    .await
    .body;
    assert!(body.contains("data-modal2fa-size=\"sm\""), "{body}");
    assert!(body.contains("Welcome back") && body.contains("my-login"));
}

#[actix_web::test]
async fn a_template_in_the_override_directory_replaces_the_embedded_one() {
    let dir = std::env::temp_dir().join(format!("modal2fa-templates-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("modals")).unwrap();
    std::fs::write(
        dir.join("modals/login.html"),
        "<div>Company sign-in {{ csrf_token | length }}</div>",
    )
    .unwrap();
    let body = get(
        web_with(
            WebSettings {
                template_dir: Some(dir.clone()),
                ..WebSettings::default()
            },
            false,
        ),
        "/auth/login/",
    )
    .await
    .body;
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(body.starts_with("<div>Company sign-in "), "{body}");
}

#[actix_web::test]
async fn a_broken_override_template_is_reported_when_building() {
    let dir = std::env::temp_dir().join(format!("modal2fa-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("page.html"), "{% if %}").unwrap();
    let mem = MemoryPorts::new();
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        Settings::default(),
        &ServerSecret::new(vec![6; 32]).unwrap(),
    );
    let result = Modal2faWeb::builder(auth)
        .settings(WebSettings {
            template_dir: Some(dir.clone()),
            ..WebSettings::default()
        })
        .build();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(result.is_err());
}

#[actix_web::test]
async fn a_modal_of_the_hosts_own_in_the_override_directory_may_take_an_appearance() {
    let dir = std::env::temp_dir().join(format!("modal2fa-own-modal-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("modals")).unwrap();
    std::fs::write(dir.join("modals/company_terms.html"), "<div>Terms</div>").unwrap();
    let appearance = HashMap::from([("company_terms".to_owned(), ModalAppearance::default())]);
    let settings = |dir: Option<std::path::PathBuf>| WebSettings {
        template_dir: dir,
        appearance: appearance.clone(),
        ..WebSettings::default()
    };
    let auth = || {
        Modal2fa::new(
            MemoryPorts::new().ports,
            Arc::new(DefaultPolicy),
            Settings::default(),
            &ServerSecret::new(vec![6; 32]).unwrap(),
        )
    };
    let with_dir = Modal2faWeb::builder(auth())
        .settings(settings(Some(dir.clone())))
        .build();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(with_dir.is_ok(), "{:?}", with_dir.err());
    let without = Modal2faWeb::builder(auth())
        .settings(settings(None))
        .build();
    assert!(without.is_err(), "no such modal without the directory");
}

#[actix_web::test]
async fn a_named_route_can_be_replaced_by_the_host() {
    let r = get(web_with(WebSettings::default(), true), "/auth/login/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "my own login"));
}

#[actix_web::test]
async fn the_permission_guard_sends_anonymous_visitors_to_the_login_modal() {
    let r = get(web_with(WebSettings::default(), false), "/users").await;
    assert_eq!(r.redirect(), Some("/auth/login/?next=/users"));
}
