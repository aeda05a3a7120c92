//! The actix-web layer over HTTP, in process, one binary: every sign-in flow with cookies
//! and CSRF, and the customisation points.

mod csrf;
mod customising;
mod email_links;
mod ended;
mod flows;
mod guards;
mod harness;
mod hash_pool;
mod host;
mod outage;
mod passkey_pages;
mod passkeys;
mod recovery;
mod test_client;
