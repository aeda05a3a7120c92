//! Recovery codes: how many are left, and a new set — shown once, with a download as
//! text — that replaces the old one. Generating needs a session that may manage factors
//! (others step up first); the answer that shows the codes is never cached.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use modal2fa_core::SecretString;

use crate::error::WebError;
use crate::extract::{Flow, Posted, TokenForm};
use crate::respond::{encode, with_errors};

const TITLE: &str = "Recovery codes";

/// How many codes are left, and the button that makes a new set.
fn count_modal(flow: &Flow, left: u64, errors: Vec<String>) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("left", &left);
    ctx.insert("codes", &Vec::<String>::new());
    flow.modal("recovery_codes", TITLE, ctx)
}

/// The new set, once.
fn codes_modal(flow: &Flow, codes: &[SecretString]) -> HttpResponse {
    let shown: Vec<&str> = codes.iter().map(SecretString::expose).collect();
    let text = format!(
        "{} recovery codes. Each works once.\r\n\r\n{}\r\n",
        flow.web.settings().site_name,
        shown.join("\r\n")
    );
    let mut ctx = with_errors(vec![]);
    ctx.insert("left", &codes.len());
    ctx.insert("codes", &shown);
    ctx.insert(
        "download",
        &format!("data:text/plain;charset=utf-8,{}", encode(&text)),
    );
    let mut resp = flow.modal("recovery_codes", TITLE, ctx);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(crate) async fn get(flow: Flow) -> Result<HttpResponse, WebError> {
    if flow.state.signed_in().is_none() {
        return Ok(crate::login::modal(&flow, "/", vec![], ""));
    }
    match flow.auth().factors.recovery_codes_left(&flow.state).await {
        Ok(left) => Ok(count_modal(&flow, left, vec![])),
        Err(e) => Err(flow.fail(e, |f, m| count_modal(f, 0, vec![m]))),
    }
}

pub(crate) async fn post(flow: Flow, _: Posted<TokenForm>) -> Result<HttpResponse, WebError> {
    let made = flow
        .auth()
        .factors
        .generate_recovery_codes(&flow.state, &flow.ctx)
        .await;
    match made {
        Ok(codes) => Ok(codes_modal(&flow, &codes)),
        Err(e) => {
            let path = flow.path("auth:recovery_codes");
            Err(flow
                .recover(e, &path, |f, m| count_modal(f, 0, vec![m]))
                .await)
        }
    }
}
