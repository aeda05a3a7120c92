//! The axum example over HTTP, one test binary: signing in with password and TOTP, and
//! the four things a host must get right around the core.

mod common;
mod security;
mod sign_in_over_http;
