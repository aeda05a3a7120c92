//! Password hashing on [`TokioHashPool`]: a sign-in beyond the pool's workers and queue
//! answers 503 with `Retry-After` at once, and while a slow hash runs the executor thread
//! stays free for other tasks (with inline hashing it would not).

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix_web::test;
use modal2fa_actix::{Modal2faWeb, TokioHashPool, WebSettings};
use modal2fa_core::machine::{LoginState, Outcome};
use modal2fa_core::model::{AuthMethod, RequestContext, Username};
use modal2fa_core::password::{PasswordHasher, PasswordHashing};
use modal2fa_core::ports::{HashPool, LockoutStore, UserStore, run_hashing};
use modal2fa_core::services::{NewAccount, PasswordLogin};
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::{InlineHashPool, MemoryPorts, SequenceRandom};

const PASSWORD: &str = "correct horse battery";

fn cheap() -> Settings {
    Settings {
        password_hashing: PasswordHashing::Argon2id {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Settings::default()
    }
}

async fn services(mem: &MemoryPorts, pool: Arc<dyn HashPool>) -> Modal2fa {
    let mut ports = mem.ports.clone();
    ports.hash_pool = pool;
    let secret = ServerSecret::new(vec![5; 32]).unwrap();
    let auth = Modal2fa::new(ports, Arc::new(DefaultPolicy), cheap(), &secret);
    auth.account
        .create_user(NewAccount {
            username: "alice".into(),
            email: None,
            first_name: String::new(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
            superuser: false,
        })
        .await
        .unwrap();
    auth
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).unwrap() + start.len();
    &s[from..from + s[from..].find(end).unwrap()]
}

#[actix_web::test]
async fn a_sign_in_beyond_the_hash_pool_answers_503_with_retry_after_and_counts_nothing() {
    let mem = MemoryPorts::new();
    let pool = TokioHashPool::new(1, 0);
    let auth = services(&mem, Arc::new(pool.clone())).await;
    let web = Modal2faWeb::builder(auth)
        .settings(WebSettings {
            secure_cookies: false,
            ..WebSettings::default()
        })
        .build()
        .unwrap();
    let client = crate::harness::modal_client(&web).await;
    let app = client.app();
    let peer = "203.0.113.9:4000".parse().unwrap();
    let page = test::call_service(
        app,
        test::TestRequest::get()
            .uri("/auth/login/")
            .peer_addr(peer)
            .to_request(),
    )
    .await;
    let nonce = page
        .response()
        .cookies()
        .find(|c| c.name() == "modal2fa_csrf")
        .map(|c| format!("modal2fa_csrf={}", c.value()))
        .expect("a CSRF nonce cookie");
    let page = test::read_body(page).await;
    let token = between(
        std::str::from_utf8(&page).unwrap(),
        "name=\"csrf_token\" value=\"",
        "\"",
    )
    .to_owned();
    let login = || {
        test::TestRequest::post()
            .uri("/auth/login/")
            .peer_addr(peer)
            .insert_header(("Sec-Fetch-Site", "same-origin"))
            .insert_header(("HX-Request", "true"))
            .insert_header(("Cookie", nonce.clone()))
            .set_form([
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf_token", token.as_str()),
            ])
            .to_request()
    };

    // Another sign-in's hash holds the one worker.
    let (release, wait) = mpsc::channel::<()>();
    let busy = actix_web::rt::spawn({
        let pool = pool.clone();
        async move { run_hashing(&pool, move || wait.recv().is_ok()).await }
    });
    while pool.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    let refused = test::call_service(app, login()).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers().get("Retry-After").unwrap(), "5");
    let body = String::from_utf8(test::read_body(refused).await.to_vec()).unwrap();
    assert!(body.contains("temporarily unavailable"), "{body}");
    let alice = modal2fa_core::lockout::LockoutKey::user(&Username::parse("alice").unwrap());
    assert_eq!(
        mem.lockout.get(&alice).await.unwrap(),
        None,
        "an attempt that was never checked is not counted"
    );

    release.send(()).unwrap();
    assert!(busy.await.unwrap().unwrap());
    let signed_in = test::call_service(app, login()).await;
    assert_eq!(signed_in.status(), 200);
    assert!(
        signed_in
            .response()
            .cookies()
            .any(|c| c.name() == "modal2fa_session"),
        "signed in once the pool had room"
    );
}

/// How long a cheap task on a current-thread runtime waits while alice signs in against a
/// slow stored hash, and how long the sign-in takes.
fn cheap_task_delay_during_a_slow_sign_in(pool: Arc<dyn HashPool>) -> (Duration, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mem = MemoryPorts::new();
        let auth = services(&mem, pool).await;
        let alice = Username::parse("alice").unwrap();
        let user = mem.users.find_by_username(&alice).await.unwrap().unwrap();
        // A stored hash that costs a few hundred milliseconds to verify.
        let slow = PasswordHasher::new(PasswordHashing::Argon2id {
            memory_kib: 32_768,
            iterations: 8,
            parallelism: 1,
        })
        .hash(&PASSWORD.into(), &SequenceRandom::new(1))
        .unwrap();
        let at = auth.now();
        assert!(
            mem.users
                .replace_password(user.id, user.password_hash.as_deref(), &slow, at)
                .await
                .unwrap()
        );
        let started = Instant::now();
        let login = tokio::spawn(async move {
            let ctx = RequestContext::new("203.0.113.10".parse().unwrap(), "test", "/");
            let form = PasswordLogin {
                username: "alice".into(),
                password: PASSWORD.into(),
                trusted_device_cookie: None,
            };
            let report = auth
                .login
                .submit_password(&LoginState::Anonymous, form, &ctx)
                .await
                .unwrap();
            assert_eq!(
                report.outcome,
                Outcome::SignedIn {
                    method: AuthMethod::Password
                }
            );
            started.elapsed()
        });
        let cheap = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            started.elapsed()
        });
        let cheap = cheap.await.unwrap();
        (cheap, login.await.unwrap())
    })
}

#[::core::prelude::v1::test]
fn a_slow_hash_on_the_pool_leaves_the_executor_thread_free_for_other_tasks() {
    let (cheap, login) = cheap_task_delay_during_a_slow_sign_in(Arc::new(TokioHashPool::new(1, 1)));
    assert!(
        cheap * 4 < login && cheap < Duration::from_millis(100),
        "the cheap task took {cheap:?} while the sign-in took {login:?}"
    );
    // The same measurement tells inline hashing apart: the cheap task waits for the hash.
    let (cheap, login) =
        cheap_task_delay_during_a_slow_sign_in(Arc::new(InlineHashPool::default()));
    assert!(
        cheap * 4 >= login,
        "inline: the cheap task took {cheap:?}, the sign-in {login:?}"
    );
}
