use std::future::Future;
use std::sync::Arc;

use modal2fa_core::model::{Email, NewUser, Page, User, Username};
use modal2fa_core::ports::{ConflictKind, PortError, UserStore};

use super::{NOW, case, e, ensure, run_cases};

type S = Arc<dyn UserStore>;

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: Username::parse(name).unwrap(),
        email: Some(Email::parse(&format!("{name}@Example.com")).unwrap()),
        first_name: "First".into(),
        last_name: "Last".into(),
        password_hash: Some("$argon2id$x".into()),
        is_superuser: false,
        created_at: NOW,
        password_changed_at: Some(NOW),
    }
}

/// The fields modal2fa reads that differ between `expected` and `got`, each named with
/// both values (a password hash only as "differs": it is never printed). The contract
/// compares users with this, not with `==`: a store need keep only what modal2fa reads
/// (see [`UserStore`]) — its name as [`User::display_name`] shows it, not necessarily
/// split in two, and no staff flag at all.
pub fn user_differences(expected: &User, got: &User) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name}: expected {a}, got {b}"));
        }
    };
    field("id", expected.id.to_string(), got.id.to_string());
    field(
        "username",
        format!("{:?}", expected.username.as_str()),
        format!("{:?}", got.username.as_str()),
    );
    field(
        "email",
        format!("{:?}", expected.email.as_ref().map(|e| e.as_str())),
        format!("{:?}", got.email.as_ref().map(|e| e.as_str())),
    );
    field(
        "display_name",
        format!("{:?}", expected.display_name()),
        format!("{:?}", got.display_name()),
    );
    field(
        "is_active",
        expected.is_active.to_string(),
        got.is_active.to_string(),
    );
    field(
        "is_superuser",
        expected.is_superuser.to_string(),
        got.is_superuser.to_string(),
    );
    field(
        "created_at",
        expected.created_at.to_string(),
        got.created_at.to_string(),
    );
    field(
        "last_login",
        format!("{:?}", expected.last_login),
        format!("{:?}", got.last_login),
    );
    field(
        "password_changed_at",
        format!("{:?}", expected.password_changed_at),
        format!("{:?}", got.password_changed_at),
    );
    if expected.password_hash != got.password_hash {
        out.push(match (&expected.password_hash, &got.password_hash) {
            (Some(_), None) => "password_hash: expected one, got none".to_owned(),
            (None, Some(_)) => "password_hash: expected none, got one".to_owned(),
            _ => "password_hash: differs".to_owned(),
        });
    }
    out
}

/// `Ok` if `got` is `expected` in every field modal2fa reads; else names the fields.
fn same_user(what: &str, expected: &User, got: &User) -> Result<(), String> {
    let diff = user_differences(expected, got);
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}: {}", diff.join("; ")))
    }
}

/// The user `new` becomes when a store creates it with `id`.
fn created(new: &NewUser, id: modal2fa_core::UserId) -> User {
    User {
        id,
        username: new.username.clone(),
        email: new.email.clone(),
        first_name: new.first_name.clone(),
        last_name: new.last_name.clone(),
        password_hash: new.password_hash.clone(),
        is_active: true,
        is_superuser: new.is_superuser,
        created_at: new.created_at,
        last_login: None,
        password_changed_at: new.password_changed_at,
    }
}

/// Runs the [`UserStore`] contract.
pub async fn run_user_store_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_cases(
        "UserStore",
        &make,
        vec![
            case!(
                "created users get distinct ids and read back whole",
                created_users_read_back
            ),
            case!("username lookups ignore case", lookups_ignore_case),
            case!(
                "a lookup by a username in another case or width finds the user, by an accented one does not",
                lookups_compare_canonical_forms
            ),
            case!(
                "a new username that differs only in case or width is a conflict, one that differs in an accent is not",
                canonical_duplicates_conflict
            ),
            case!(
                "a duplicate username in another case is a conflict",
                duplicate_is_conflict
            ),
            case!(
                "deactivating and reactivating changes the active flag and nothing else",
                set_active_changes_only_the_flag
            ),
            case!(
                "a name with a space and a single-label address are kept and found as stored",
                names_outside_the_new_account_rules_are_kept
            ),
            case!(
                "a superuser reads back as one and the name reads back as shown",
                superuser_and_name_read_back
            ),
            case!("list pages by id and count counts", list_and_count),
            case!(
                "recording a sign-in sets the last login and nothing else",
                record_login_sets_last_login
            ),
            case!(
                "a password is replaced only from the expected hash, once under concurrency",
                replace_password_cas
            ),
            case!("unknown lookups find nothing", unknown_finds_nothing),
        ],
    )
    .await;
}

async fn created_users_read_back(s: S) -> Result<(), String> {
    let new = new_user("alice");
    let a = s.create(new.clone()).await.map_err(e)?;
    let b = s.create(new_user("bob")).await.map_err(e)?;
    ensure!(a.id != b.id, "ids must differ");
    same_user("create returned", &created(&new, a.id), &a)?;
    let back = s
        .find_by_id(a.id)
        .await
        .map_err(e)?
        .ok_or("alice not found")?;
    same_user("read back", &a, &back)?;
    ensure!(
        back.is_active && back.last_login.is_none(),
        "new users are active and never signed in"
    );
    ensure!(
        back.password_changed_at == Some(NOW),
        "password_changed_at is kept"
    );
    Ok(())
}

async fn lookups_ignore_case(s: S) -> Result<(), String> {
    let a = s.create(new_user("Alice")).await.map_err(e)?;
    let found = s
        .find_by_username(&Username::parse("aLiCe").unwrap())
        .await
        .map_err(e)?;
    ensure!(
        found.as_ref().map(|u| u.id) == Some(a.id),
        "case-insensitive username lookup failed"
    );
    let by_mail = s
        .find_by_email(&Email::parse("ALICE@example.com").unwrap())
        .await
        .map_err(e)?;
    ensure!(
        by_mail.len() == 1 && by_mail[0].id == a.id,
        "case-insensitive email lookup failed: {by_mail:?}"
    );
    Ok(())
}

async fn lookups_compare_canonical_forms(s: S) -> Result<(), String> {
    let a = s.create(new_user("alice")).await.map_err(e)?;
    let find = |name: &'static str| {
        let s = s.clone();
        async move {
            s.find_by_username(&Username::parse(name).unwrap())
                .await
                .map_err(e)
                .map(|u| u.map(|u| u.id))
        }
    };
    for same in ["ALICE", "Alice", "ａｌｉｃｅ", "ＡＬＩＣＥ"] {
        ensure!(find(same).await? == Some(a.id), "{same} did not find alice");
    }
    for other in ["alíce", "ALÍCE", "alicé", "äliçe"] {
        ensure!(find(other).await?.is_none(), "{other} found alice");
    }
    let by_mail = |addr: &'static str| {
        let s = s.clone();
        async move {
            s.find_by_email(&Email::parse(addr).unwrap())
                .await
                .map_err(e)
                .map(|us| us.iter().map(|u| u.id).collect::<Vec<_>>())
        }
    };
    ensure!(
        by_mail("ａｌｉｃｅ@example.com").await? == vec![a.id],
        "a fullwidth address did not find alice"
    );
    ensure!(
        by_mail("alíce@example.com").await?.is_empty(),
        "an accented address found alice"
    );
    Ok(())
}

async fn canonical_duplicates_conflict(s: S) -> Result<(), String> {
    s.create(new_user("alice")).await.map_err(e)?;
    for same in ["ａｌｉｃｅ", "ＡＬＩＣＥ", "Ａlice"] {
        match s.create(new_user(same)).await {
            Err(PortError::Conflict(ConflictKind::Username)) => {}
            other => return Err(format!("{same}: expected a conflict, got {other:?}")),
        }
    }
    let accented = s.create(new_user("alíce")).await.map_err(e)?;
    match s.create(new_user("ＡＬÍＣＥ")).await {
        Err(PortError::Conflict(ConflictKind::Username)) => {}
        other => {
            return Err(format!(
                "ＡＬÍＣＥ beside {accented:?}: expected a conflict, got {other:?}"
            ));
        }
    }
    Ok(())
}

async fn duplicate_is_conflict(s: S) -> Result<(), String> {
    s.create(new_user("carol")).await.map_err(e)?;
    match s.create(new_user("CAROL")).await {
        Err(PortError::Conflict(ConflictKind::Username)) => Ok(()),
        other => Err(format!("expected a conflict, got {other:?}")),
    }
}

async fn set_active_changes_only_the_flag(s: S) -> Result<(), String> {
    let u = s.create(new_user("dave")).await.map_err(e)?;
    ensure!(
        s.set_active(u.id, false).await.map_err(e)?,
        "deactivating dave"
    );
    let back = s.find_by_id(u.id).await.map_err(e)?.ok_or("missing")?;
    let inactive = User {
        is_active: false,
        ..u.clone()
    };
    same_user("after deactivating", &inactive, &back)?;
    ensure!(
        s.set_active(u.id, true).await.map_err(e)?,
        "reactivating dave"
    );
    let back = s.find_by_id(u.id).await.map_err(e)?.ok_or("missing")?;
    same_user("after reactivating", &u, &back)?;
    ensure!(
        !s.set_active(modal2fa_core::UserId(u.id.0 + 1000), false)
            .await
            .map_err(e)?,
        "a missing id must answer false"
    );
    Ok(())
}

async fn names_outside_the_new_account_rules_are_kept(s: S) -> Result<(), String> {
    let new = NewUser {
        username: Username::from_stored("Jane  Doe").map_err(e)?,
        email: Some(Email::from_stored("Ops@localhost").map_err(e)?),
        ..new_user("placeholder")
    };
    let u = s.create(new.clone()).await.map_err(e)?;
    same_user("create returned", &created(&new, u.id), &u)?;
    let found = s
        .find_by_username(&Username::for_lookup(" jane  DOE ").map_err(e)?)
        .await
        .map_err(e)?
        .ok_or("`jane  DOE` did not find `Jane  Doe`")?;
    same_user("found by username", &u, &found)?;
    let by_mail = s
        .find_by_email(&Email::for_lookup("ops@LOCALHOST").map_err(e)?)
        .await
        .map_err(e)?;
    ensure!(
        by_mail.iter().map(|u| u.id).collect::<Vec<_>>() == vec![u.id],
        "`ops@LOCALHOST` did not find `Ops@localhost`"
    );
    Ok(())
}

async fn superuser_and_name_read_back(s: S) -> Result<(), String> {
    let new = NewUser {
        first_name: "Mary  Ann".into(),
        last_name: "Smith".into(),
        is_superuser: true,
        email: None,
        password_hash: None,
        password_changed_at: None,
        ..new_user("mary")
    };
    let u = s.create(new.clone()).await.map_err(e)?;
    let back = s.find_by_id(u.id).await.map_err(e)?.ok_or("missing")?;
    same_user("read back", &created(&new, u.id), &back)
}

async fn list_and_count(s: S) -> Result<(), String> {
    let mut ids = Vec::new();
    for n in ["u1", "u2", "u3", "u4", "u5"] {
        ids.push(s.create(new_user(n)).await.map_err(e)?.id);
    }
    ensure!(s.count().await.map_err(e)? == 5, "count");
    let first = s.list(Page::first(2)).await.map_err(e)?;
    let rest = s
        .list(Page {
            offset: 2,
            limit: 10,
        })
        .await
        .map_err(e)?;
    let got: Vec<_> = first.iter().chain(rest.iter()).map(|u| u.id).collect();
    ensure!(got == ids, "pages {got:?} != {ids:?}");
    Ok(())
}

async fn unknown_finds_nothing(s: S) -> Result<(), String> {
    ensure!(
        s.find_by_id(modal2fa_core::UserId(999))
            .await
            .map_err(e)?
            .is_none(),
        "id"
    );
    ensure!(
        s.find_by_username(&Username::parse("nobody").unwrap())
            .await
            .map_err(e)?
            .is_none(),
        "username"
    );
    ensure!(
        s.find_by_email(&Email::parse("no@body.org").unwrap())
            .await
            .map_err(e)?
            .is_empty(),
        "email"
    );
    Ok(())
}

async fn replace_password_cas(s: S) -> Result<(), String> {
    let u = s.create(new_user("erin")).await.map_err(e)?;
    let later = NOW + time::Duration::hours(1);
    ensure!(
        !s.replace_password(u.id, Some("$wrong"), "$new", later)
            .await
            .map_err(e)?,
        "wrong expected hash"
    );
    ensure!(
        s.replace_password(u.id, Some("$argon2id$x"), "$new", later)
            .await
            .map_err(e)?,
        "right expected hash"
    );
    let back = s.find_by_id(u.id).await.map_err(e)?.ok_or("missing")?;
    ensure!(
        back.password_hash.as_deref() == Some("$new") && back.password_changed_at == Some(later),
        "{back:?}"
    );
    let mut none = new_user("frank");
    none.password_hash = None;
    let f = s.create(none).await.map_err(e)?;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.replace_password(f.id, None, &format!("$h{i}"), later)
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.map_err(e)?.map_err(e)? {
            wins += 1;
        }
    }
    ensure!(wins == 1, "{wins} of 20 concurrent first passwords won");
    Ok(())
}

async fn record_login_sets_last_login(s: S) -> Result<(), String> {
    let u = s.create(new_user("gina")).await.map_err(e)?;
    let at = NOW + time::Duration::minutes(5);
    s.record_login(u.id, at).await.map_err(e)?;
    let back = s.find_by_id(u.id).await.map_err(e)?.ok_or("missing")?;
    let signed_in = User {
        last_login: Some(at),
        ..u.clone()
    };
    same_user("after recording a sign-in", &signed_in, &back)?;
    s.record_login(modal2fa_core::UserId(u.id.0 + 1000), at)
        .await
        .map_err(e)?;
    Ok(())
}
