//! A session ended while a request holds it stays ended: the request in flight writes
//! nothing back, its cookie is anonymous, and so is the next request.
//!
//! The request in flight is a route that has loaded the signed-in session and waits,
//! between loading and writing, until the test has logged the same browser out from
//! another request (a slow request body across a logout, made deterministic).

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::Session;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, HttpResponse, test, web};
use modal2fa_actix::{Modal2faWeb, SignedInUser, WebSettings};
use modal2fa_core::password::PasswordHashing;
use modal2fa_core::services::NewAccount;
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;
use tokio::sync::Notify;

const PASSWORD: &str = "correct horse battery";

/// The two moments of the request in flight.
#[derive(Default)]
struct Hold {
    loaded: Notify,
    resume: Notify,
}

/// Changes the session after the test says so: `renew` moves it to a new id (as a
/// privilege change does), otherwise it writes a new value under the same id.
async fn in_flight(
    session: Session,
    hold: web::Data<Hold>,
    renew: web::Path<bool>,
    _user: SignedInUser,
) -> HttpResponse {
    hold.loaded.notify_one();
    hold.resume.notified().await;
    if *renew {
        session.renew();
    }
    session.insert("modal2fa.test.touched", 1).unwrap();
    HttpResponse::Ok().body("done")
}

async fn protected(user: SignedInUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("hello {}", user.user.username))
}

fn cookie_header(jar: &HashMap<String, String>) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Sends `req` with the jar's cookies; returns status, body and the cookies it set.
async fn send<S, B>(
    app: &S,
    jar: &HashMap<String, String>,
    req: test::TestRequest,
) -> (u16, String, HashMap<String, Option<String>>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = req.peer_addr("203.0.113.7:5000".parse().unwrap());
    if !jar.is_empty() {
        req = req.insert_header(("Cookie", cookie_header(jar)));
    }
    let resp =
        test::call_service(app, req.insert_header(("HX-Request", "true")).to_request()).await;
    let set = resp
        .response()
        .cookies()
        .map(|c| {
            let gone = c.max_age().is_some_and(|m| m.is_zero()) || c.value().is_empty();
            (c.name().to_owned(), (!gone).then(|| c.value().to_owned()))
        })
        .collect();
    let status = resp.status().as_u16();
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    (status, body, set)
}

fn absorb(jar: &mut HashMap<String, String>, set: HashMap<String, Option<String>>) {
    for (name, value) in set {
        match value {
            Some(v) => jar.insert(name, v),
            None => jar.remove(&name),
        };
    }
}

fn csrf(html: &str) -> String {
    let start = "name=\"csrf_token\" value=\"";
    let from = html.find(start).expect("a CSRF field") + start.len();
    html[from..][..html[from..].find('"').unwrap()].to_owned()
}

fn post(path: &str, form: &[(&str, &str)]) -> test::TestRequest {
    test::TestRequest::post()
        .uri(path)
        .insert_header(("Sec-Fetch-Site", "same-origin"))
        .set_form(form)
}

async fn ended_while_in_flight(renew: bool) {
    let mem = Arc::new(MemoryPorts::new());
    let secret = ServerSecret::new(vec![4; 32]).unwrap();
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        Settings {
            password_hashing: PasswordHashing::Argon2id {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            ..Settings::default()
        },
        &secret,
    );
    auth.account
        .create_user(NewAccount {
            username: "alice".into(),
            email: None,
            first_name: "Alice".into(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
            superuser: false,
        })
        .await
        .unwrap();
    let web = Modal2faWeb::builder(auth)
        .settings(WebSettings {
            secure_cookies: false,
            ..WebSettings::default()
        })
        .build()
        .unwrap();
    let hold = web::Data::new(Hold::default());
    let w = web.clone();
    let app = test::init_service(
        App::new()
            .app_data(hold.clone())
            .wrap(web.session_middleware())
            .configure(move |c| w.configure(c))
            .route("/in-flight/{renew}", web::post().to(in_flight))
            .route("/protected", web::get().to(protected)),
    )
    .await;

    let mut jar = HashMap::new();
    let (_, page, set) = send(&app, &jar, test::TestRequest::get().uri("/auth/login/")).await;
    absorb(&mut jar, set);
    let login = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("csrf_token", &csrf(&page)),
    ];
    let (status, body, set) = send(&app, &jar, post("/auth/login/", &login)).await;
    assert_eq!(status, 200, "{body}");
    absorb(&mut jar, set);
    let (status, _, _) = send(&app, &jar, test::TestRequest::get().uri("/protected")).await;
    assert_eq!(status, 200, "signed in");
    let (_, menu, _) = send(&app, &jar, test::TestRequest::get().uri("/auth/menu/")).await;
    let token = csrf(&menu);

    // The request in flight has loaded the session; the browser logs out meanwhile.
    let first = send(
        &app,
        &jar,
        post(&format!("/in-flight/{renew}"), &[("x", "1")]),
    );
    let logout = async {
        hold.loaded.notified().await;
        let out = send(&app, &jar, post("/auth/logout/", &[("csrf_token", &token)])).await;
        hold.resume.notify_one();
        out
    };
    let ((status, body, set), (out_status, _, _)) = tokio::join!(first, logout);
    assert_eq!((status, out_status), (200, 200), "{body}");
    assert!(
        mem.sessions.is_empty(),
        "the ended session was written back: {} row(s)",
        mem.sessions.len()
    );

    // Whatever cookie the request in flight left, it signs nobody in.
    absorb(&mut jar, set);
    let (_, body, _) = send(&app, &jar, test::TestRequest::get().uri("/protected")).await;
    assert_ne!(body, "hello alice", "still signed in after the logout");
    assert!(mem.sessions.is_empty());
}

#[actix_web::test]
async fn a_request_in_flight_across_a_logout_does_not_bring_the_session_back() {
    ended_while_in_flight(false).await;
}

#[actix_web::test]
async fn a_renewal_in_flight_across_a_logout_does_not_bring_the_session_back() {
    ended_while_in_flight(true).await;
}
