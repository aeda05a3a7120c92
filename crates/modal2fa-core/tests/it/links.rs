//! Passwords by link and by hand: reset links, invitations, changing the password, mail failures.

use modal2fa_core::ServiceError;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, SecurityEventKind};
use modal2fa_core::ports::Notification;
use modal2fa_core::services::InviteRequest;
use time::Duration;

use crate::world::*;

async fn reset_link(w: &World) -> String {
    w.sent()
        .await
        .iter()
        .rev()
        .find_map(|n| match n {
            Notification::PasswordReset { link, .. } => Some(
                link.expose()
                    .trim_start_matches("https://x/reset/")
                    .to_owned(),
            ),
            _ => None,
        })
        .expect("no reset mail")
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let w = world();
    w.user("alice").await;
    let signed = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    w.auth.sessions.create(&signed.state, &ctx()).await.unwrap();
    w.auth
        .account
        .request_password_reset("ALICE@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w).await;
    assert!(w.auth.account.check_reset_link(&token).await.is_ok());
    w.auth
        .account
        .reset_password(&token, &"a brand new secret".into(), &ctx())
        .await
        .unwrap();
    assert!(matches!(
        w.auth
            .account
            .reset_password(&token, &"another new secret".into(), &ctx())
            .await,
        Err(ServiceError::Refused(Refusal::Link(_)))
    ));
    assert_eq!(w.mem.sessions.list_active_count(), 0);
    assert_eq!(w.notified(SecurityEventKind::PasswordChanged).await, 1);
    let r = w
        .password(&LoginState::Anonymous, "alice", "a brand new secret", None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}

#[tokio::test]
async fn a_reset_link_dies_when_the_user_signs_in_and_after_three_days() {
    let w = world();
    w.user("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w).await;
    w.mem.clock.advance(Duration::seconds(1));
    w.password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(w.auth.account.check_reset_link(&token).await.is_err());
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w).await;
    w.mem.clock.advance(Duration::days(3));
    assert!(matches!(
        w.auth.account.check_reset_link(&token).await,
        Err(ServiceError::Refused(Refusal::Link(
            modal2fa_core::tokens::LinkError::Expired
        )))
    ));
}

#[tokio::test]
async fn a_reset_request_for_an_unknown_address_answers_the_same_and_sends_nothing() {
    let w = world();
    w.auth
        .account
        .request_password_reset("nobody@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    assert!(w.sent().await.is_empty());
}

#[tokio::test]
async fn reset_requests_are_rate_limited_per_address() {
    let w = world();
    w.user("alice").await;
    for _ in 0..15 {
        w.auth
            .account
            .request_password_reset(
                "alice@example.com",
                "https://x/reset/",
                &ctx_from("192.0.2.1"),
            )
            .await
            .unwrap();
    }
    let mails = w
        .sent()
        .await
        .iter()
        .filter(|n| matches!(n, Notification::PasswordReset { .. }))
        .count();
    assert_eq!(
        mails, 10,
        "the 10th request locks the address; later ones send nothing"
    );
}

#[tokio::test]
async fn an_invitation_link_sets_the_first_password_once_and_signs_in() {
    let w = world();
    let admin = w.admin().await;
    let u = w
        .auth
        .account
        .invite(
            &admin,
            InviteRequest {
                email: "new@example.com".into(),
                first_name: "New".into(),
                last_name: "Person".into(),
            },
            "https://x/invite/",
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(u.username.as_str(), "new@example.com");
    let token = w
        .sent()
        .await
        .iter()
        .find_map(|n| match n {
            Notification::Invitation { link, .. } => Some(
                link.expose()
                    .trim_start_matches("https://x/invite/")
                    .to_owned(),
            ),
            _ => None,
        })
        .unwrap();
    let r = w
        .auth
        .account
        .accept_invitation(
            &LoginState::Anonymous,
            &token,
            &"my first password".into(),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
    assert!(
        w.auth
            .account
            .accept_invitation(
                &LoginState::Anonymous,
                &token,
                &"a second password".into(),
                &ctx()
            )
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_uses_of_one_reset_link_set_the_password_once() {
    let w = world();
    w.user("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (auth, token) = (w.auth.clone(), token.clone());
            tokio::spawn(async move {
                auth.account
                    .reset_password(&token, &format!("new password number {i}").into(), &ctx())
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn changing_the_password_needs_the_old_one_and_voids_trusted_devices() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    let r = w.sign_in_2fa("alice", &secret).await;
    let cookie = w.trust(&r.state, "Laptop").await;
    assert!(matches!(
        w.auth
            .account
            .change_password(
                &r.state,
                &"not it at all".into(),
                &"new password 123".into(),
                false,
                &ctx()
            )
            .await,
        Err(ServiceError::Refused(Refusal::InvalidCredentials))
    ));
    assert!(matches!(
        w.auth
            .account
            .change_password(&r.state, &PASSWORD.into(), &"short".into(), false, &ctx())
            .await,
        Err(ServiceError::Refused(Refusal::Invalid(_)))
    ));
    w.auth
        .account
        .change_password(
            &r.state,
            &PASSWORD.into(),
            &"new password 123".into(),
            false,
            &ctx(),
        )
        .await
        .unwrap();
    let r = w
        .password(
            &LoginState::Anonymous,
            "alice",
            "new password 123",
            Some(&cookie),
        )
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
}

#[tokio::test]
async fn a_failing_mailer_never_undoes_a_change() {
    let w = world();
    let (_, secret) = w.enrolled("alice").await;
    w.mem.notifier.fail_from_now();
    let r = w.sign_in_2fa("alice", &secret).await;
    w.auth.factors.remove_totp(&r.state, &ctx()).await.unwrap();
    let r = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}

#[tokio::test]
async fn a_reset_never_skips_the_second_factor_on_the_next_sign_in() {
    let w = world();
    let (_, _secret) = w.enrolled("alice").await;
    w.auth
        .account
        .request_password_reset("alice@example.com", "https://x/reset/", &ctx())
        .await
        .unwrap();
    let token = reset_link(&w).await;
    w.auth
        .account
        .reset_password(&token, &"a brand new secret".into(), &ctx())
        .await
        .unwrap();
    let r = w
        .password(&LoginState::Anonymous, "alice", "a brand new secret", None)
        .await;
    assert_eq!(r.outcome, Outcome::SecondFactorRequired { setup: false });
}
