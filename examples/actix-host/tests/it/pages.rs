//! The application's pages with modal2fa in them, as a browser sees them.

use crate::host::{Host, PASSWORD};

#[actix_web::test]
async fn a_member_signs_in_with_a_password_and_sees_the_account_page_with_the_user_menu() {
    let host = Host::start().await;
    host.account("mary", false).await;
    let mut browser = host.browser().await;
    assert_eq!(browser.get("/account").await.status, 303, "signed out");
    let signed_in = browser.sign_in("mary", PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Signed in as <strong>mary</strong>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Sign out"),
        "the user menu is in the navbar"
    );
    assert!(
        page.body.contains("/auth/static/modal2fa.js"),
        "the assets by helper"
    );
}

#[actix_web::test]
async fn the_reports_page_sends_a_password_only_session_through_the_second_factor() {
    let host = Host::start().await;
    host.account("mary", false).await;
    let mut browser = host.browser().await;
    browser.sign_in("mary", PASSWORD).await;
    let reports = browser.get("/reports").await;
    assert_eq!(reports.status, 303);
    assert_eq!(reports.redirect(), Some("/auth/2fa/?next=/reports"));
}

#[actix_web::test]
async fn the_policy_hook_makes_an_administrator_set_up_a_second_factor_first() {
    let host = Host::start().await;
    host.account("root", true).await;
    let mut browser = host.browser().await;
    let answer = browser.sign_in("root", PASSWORD).await;
    // Not signed in: the password opened the first-time set-up, not the application.
    let account = browser.get("/account").await;
    assert_eq!(account.status, 303, "the login answered {}", answer.status);
    let setup = browser.get("/auth/2fa/totp/").await;
    assert_eq!(setup.status, 200);
    assert!(
        setup.body.contains("modal2fa-secret"),
        "the set-up modal: {}",
        setup.body
    );
}

#[actix_web::test]
async fn the_host_layout_keeps_its_inline_script_while_the_auth_routes_have_the_strict_csp() {
    let host = Host::start().await;
    let mut browser = host.browser().await;
    let home = browser.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("<script>document.documentElement"));
    assert_eq!(home.header("content-security-policy"), None);
    let login = browser.get("/auth/login/").await;
    let csp = login.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

#[actix_web::test]
async fn an_htmx_request_for_a_guarded_page_gets_hx_redirect() {
    let host = Host::start().await;
    let mut browser = host.browser().await;
    browser.set_htmx(true);
    let answer = browser.get("/reports").await;
    assert!(answer.status < 300, "{}", answer.status);
    assert_eq!(
        answer.header("hx-redirect"),
        Some("/auth/login/?next=/reports")
    );
}

#[actix_web::test]
async fn a_name_with_a_space_in_the_host_table_signs_in() {
    let host = Host::start().await;
    host.account("jane doe", false).await;
    let mut browser = host.browser().await;
    assert_eq!(browser.sign_in("Jane Doe", PASSWORD).await.status, 303);
    let page = browser.get("/account").await;
    assert!(page.body.contains("jane doe"), "{}", page.body);
}

#[actix_web::test]
async fn a_legacy_hash_upgrade_changes_the_password_column_only() {
    let host = Host::start().await;
    let id = host.account("lee", false).await;
    // A Django PBKDF2 hash of "hunter2", a name with odd spacing and a column modal2fa
    // knows nothing of, as the application's table holds them.
    sqlx::query(
        "UPDATE host_accounts SET password = ?, full_name = 'Lee  Ann   Smith', theme = 'dark' WHERE id = ?",
    )
    .bind("pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$qkObPPK9rP0GubfMXjglDC6HALWE6Op/eMHGy+WlhjE=")
    .bind(id.0)
    .execute(&host.pool)
    .await
    .unwrap();
    let mut browser = host.browser().await;
    assert_eq!(browser.sign_in("lee", "hunter2").await.status, 303);
    let (password, full_name, theme): (String, String, String) =
        sqlx::query_as("SELECT password, full_name, theme FROM host_accounts WHERE id = ?")
            .bind(id.0)
            .fetch_one(&host.pool)
            .await
            .unwrap();
    assert!(
        password.starts_with("$argon2id$"),
        "upgraded: {}",
        &password[..12]
    );
    assert_eq!(full_name, "Lee  Ann   Smith");
    assert_eq!(theme, "dark");
}
