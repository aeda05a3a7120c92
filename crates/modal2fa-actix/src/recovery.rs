//! Recovery codes: how many are left, and a new set — shown once, with a download as
//! text — that replaces the old one. Generating needs a session that may manage factors
//! (others step up first); the answer that shows the codes is never cached. Right after
//! a set-up login enrolled its first factor, the set is offered before anything else,
//! and the user goes on afterwards (to "Trust this device?" when it is offered, else to
//! where they were going).

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use modal2fa_core::SecretString;
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::{Flow, Posted};
use crate::respond::{encode, with_errors};

const TITLE: &str = "Recovery codes";

/// Where the user goes after the codes, in a sign-in that offered them.
struct Then {
    next: String,
    /// "Trust this device?" comes next.
    trust: bool,
}

impl Then {
    fn insert(&self, flow: &Flow, ctx: &mut tera::Context) {
        ctx.insert("next", &self.next);
        ctx.insert("after", if self.trust { "trust" } else { "" });
        let url = if self.trust {
            format!(
                "{}?next={}",
                flow.path("auth:confirm_remember"),
                encode(&self.next)
            )
        } else {
            self.next.clone()
        };
        ctx.insert("continue_url", &url);
        ctx.insert("continue_in_modal", &self.trust);
    }
}

/// How many codes are left, and the button that makes a new set.
fn count_modal(flow: &Flow, left: u64, errors: Vec<String>) -> HttpResponse {
    let mut ctx = with_errors(errors);
    ctx.insert("left", &left);
    ctx.insert("codes", &Vec::<String>::new());
    flow.modal("recovery_codes", TITLE, ctx)
}

/// Right after a set-up login enrolled its first factor: the offer of a first set, with
/// "Trust this device?" next when `trust`, else `next`.
pub(crate) fn offer_modal(flow: &Flow, next: &str, trust: bool) -> HttpResponse {
    let mut ctx = with_errors(vec![]);
    ctx.insert("left", &0);
    ctx.insert("codes", &Vec::<String>::new());
    ctx.insert("offer", &true);
    Then {
        next: next.to_owned(),
        trust,
    }
    .insert(flow, &mut ctx);
    flow.modal("recovery_codes", "Your second factor is set up", ctx)
}

/// The new set, once.
fn codes_modal(flow: &Flow, codes: &[SecretString], then: Option<Then>) -> HttpResponse {
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
    if let Some(then) = then {
        then.insert(flow, &mut ctx);
    }
    let mut resp = flow.modal("recovery_codes", TITLE, ctx);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `?offer=1` (with `after=trust` and `next`): the offer after a set-up login, for a
/// browser without JavaScript.
#[derive(Deserialize)]
pub(crate) struct RecoveryQuery {
    offer: Option<String>,
    after: Option<String>,
    next: Option<String>,
}

pub(crate) async fn get(
    flow: Flow,
    q: web::Query<RecoveryQuery>,
) -> Result<HttpResponse, WebError> {
    if flow.state.signed_in().is_none() {
        return Ok(crate::login::modal(&flow, "/", vec![], ""));
    }
    if q.offer.is_some() {
        let next = flow.next(q.next.as_deref());
        return Ok(offer_modal(
            &flow,
            &next,
            q.after.as_deref() == Some("trust"),
        ));
    }
    match flow.auth().factors.recovery_codes_left(&flow.state).await {
        Ok(left) => Ok(count_modal(&flow, left, vec![])),
        Err(e) => Err(flow.fail(e, |f, m| count_modal(f, 0, vec![m]))),
    }
}

/// Generating a set; `next` and `after` when the offer after a sign-in asked.
#[derive(Deserialize)]
pub(crate) struct GenerateForm {
    next: Option<String>,
    after: Option<String>,
}

pub(crate) async fn post(
    flow: Flow,
    Posted(form): Posted<GenerateForm>,
) -> Result<HttpResponse, WebError> {
    let made = flow
        .auth()
        .factors
        .generate_recovery_codes(&flow.state, &flow.ctx)
        .await;
    let then = form.next.as_deref().map(|n| Then {
        next: flow.next(Some(n)),
        trust: form.after.as_deref() == Some("trust"),
    });
    match made {
        Ok(codes) => Ok(codes_modal(&flow, &codes, then)),
        Err(e) => {
            let path = flow.path("auth:recovery_codes");
            Err(flow
                .recover(e, &path, |f, m| count_modal(f, 0, vec![m]))
                .await)
        }
    }
}
