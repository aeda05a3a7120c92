//! Rows of a host's own users table that modal2fa's rules for *new* accounts would refuse:
//! they are read as stored, sign in as typed, and a row that cannot be read at all
//! refuses only its own sign-in.

use std::sync::Arc;

use modal2fa_core::lockout::LockoutKey;
use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::{AuthMethod, Email, NameRules, Problem, Username};
use modal2fa_core::ports::{LockoutStore, Notification, PortError};
use modal2fa_core::services::NewAccount;
use modal2fa_core::{AuthPolicy, ServiceError};

use crate::world::{PASSWORD, World, world, world_with};

#[tokio::test]
async fn a_host_row_whose_username_has_a_space_signs_in_with_the_name_as_typed() {
    let w = world();
    let id = w.user("jane").await;
    w.mem.users.edit(id, |u| {
        u.username = Username::from_stored("jane doe").unwrap();
    });
    let r = w
        .password(&LoginState::Anonymous, "  Jane Doe ", PASSWORD, None)
        .await;
    assert_eq!(
        r.outcome,
        Outcome::SignedIn {
            method: AuthMethod::Password
        }
    );
}

#[tokio::test]
async fn a_host_row_with_a_single_label_address_gets_its_password_reset_link() {
    let w = world();
    let id = w.user("ops").await;
    w.mem.users.edit(id, |u| {
        u.email = Some(Email::from_stored("ops@localhost").unwrap());
    });
    w.auth
        .account
        .request_password_reset(
            "OPS@localhost",
            "https://app.example/reset/",
            &crate::world::ctx(),
        )
        .await
        .unwrap();
    let sent = w.sent().await;
    assert!(
        matches!(sent.as_slice(), [Notification::PasswordReset { to, .. }] if to.user_id == id),
        "{} notifications",
        sent.len()
    );
}

#[tokio::test]
async fn new_accounts_follow_the_django_rules_by_default_and_the_policys_rules_when_relaxed() {
    let strict = world();
    let refused = strict
        .auth
        .account
        .create_user(account("jane doe", "jane@localhost"))
        .await;
    assert!(
        matches!(&refused, Err(ServiceError::Refused(Refusal::Invalid(e))) if e.field == "username"
            && e.problem == Problem::UsernameCharacters { allowed: "@.+-_" }),
        "{refused:?}"
    );

    struct Relaxed;
    impl AuthPolicy for Relaxed {
        fn name_rules(&self) -> NameRules {
            NameRules::DJANGO
                .with_username_characters("@.+-_ ")
                .with_single_label_domains(true)
        }
    }
    let relaxed = world_with(Arc::new(Relaxed));
    let jane = relaxed
        .auth
        .account
        .create_user(account("jane doe", "jane@localhost"))
        .await
        .unwrap();
    assert_eq!(jane.username.as_str(), "jane doe");
    assert_eq!(jane.email.unwrap().as_str(), "jane@localhost");
}

fn account(username: &str, email: &str) -> NewAccount {
    NewAccount {
        username: username.into(),
        email: Some(email.into()),
        first_name: String::new(),
        last_name: String::new(),
        password: Some(PASSWORD.into()),
        superuser: false,
    }
}

/// A users table with one row the store cannot represent: `broken`, whose address is
/// not one.
fn one_broken_row(
    users: Arc<modal2fa_test_support::MemoryUsers>,
) -> modal2fa_test_support::HookedUsers {
    modal2fa_test_support::HookedUsers::new(users, |_, name, found| {
        if name.canonical() != "broken" {
            return found;
        }
        let problem = Email::from_stored("no address").unwrap_err();
        Err(PortError::unreadable("host_accounts id=7", problem))
    })
}

#[tokio::test]
async fn a_row_that_cannot_be_read_fails_its_sign_in_as_a_wrong_password_and_counts_it() {
    let mem = modal2fa_test_support::MemoryPorts::new();
    let mut ports = mem.ports.clone();
    ports.users = Arc::new(one_broken_row(mem.users.clone()));
    let w = World {
        auth: modal2fa_core::Modal2fa::new(
            ports,
            Arc::new(modal2fa_core::DefaultPolicy),
            crate::world::settings(),
            &modal2fa_core::ServerSecret::new(vec![3; 32]).unwrap(),
        ),
        mem,
    };
    let r = w
        .try_password(
            &LoginState::Anonymous,
            "broken",
            PASSWORD,
            None,
            &crate::world::ctx(),
        )
        .await
        .expect("an unreadable row is not a failed request");
    assert_eq!(r.outcome, Outcome::Refused(Refusal::InvalidCredentials));
    let counted = w
        .mem
        .lockout
        .get(&LockoutKey::user(&Username::parse("broken").unwrap()))
        .await
        .unwrap()
        .expect("the failure is counted on the name");
    assert_eq!(counted.failures, 1);
    // Every other account signs in as before.
    w.user("alice").await;
    let ok = w
        .password(&LoginState::Anonymous, "alice", PASSWORD, None)
        .await;
    assert!(matches!(ok.outcome, Outcome::SignedIn { .. }));
}
