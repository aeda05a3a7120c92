//! [`SessionLayer`]: actix-session's middleware over the core session service, plus what
//! it cannot do itself — answer a request whose session cannot be read because the store
//! is down with 503 and `Retry-After` (the "temporarily unavailable" modal) instead of an
//! opaque 500, and set the anonymous visitor's CSRF nonce cookie on any response whose
//! tokens were minted under a new nonce (a host page that called
//! [`Modal2faWeb::csrf_token`] included).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_session::SessionMiddleware;
use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};

use crate::Modal2faWeb;
use crate::error::WebError;
use crate::session::{DEFERRED_DELETE, PortSessionStore, STORE_UNAVAILABLE};

/// Server-side sessions for the app (see [`Modal2faWeb::session_middleware`]).
pub struct SessionLayer {
    inner: SessionMiddleware<PortSessionStore>,
    web: Modal2faWeb,
}

impl SessionLayer {
    pub(crate) fn new(inner: SessionMiddleware<PortSessionStore>, web: Modal2faWeb) -> Self {
        Self { inner, web }
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionLayerService<
        <SessionMiddleware<PortSessionStore> as Transform<S, ServiceRequest>>::Transform,
    >;
    type InitError = ();
    type Future = Pin<Box<dyn Future<Output = Result<Self::Transform, ()>>>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let inner = self.inner.new_transform(service);
        let web = self.web.clone();
        Box::pin(async move {
            Ok(SessionLayerService {
                inner: Rc::new(inner.await?),
                web,
            })
        })
    }
}

/// The service [`SessionLayer`] builds.
pub struct SessionLayerService<S> {
    inner: Rc<S>,
    web: Modal2faWeb,
}

impl<S, B> Service<ServiceRequest> for SessionLayerService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>>>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // (The request itself must not be cloned before routing: only what the page needs.)
        let htmx = crate::render::is_htmx(req.request());
        let web = self.web.clone();
        let call = self.inner.call(req);
        Box::pin(DEFERRED_DELETE.scope(RefCell::new(None), async move {
            let result = call.await;
            // A deletion that no renewal's save took over (a purge): run it now.
            let pending = DEFERRED_DELETE.with(|d| d.borrow_mut().take());
            let result = match (result, pending) {
                (Ok(res), Some(id_hash)) => {
                    match crate::session::delete_now(&web.auth().sessions, &id_hash).await {
                        Ok(()) => Ok(res),
                        Err(e) => Err(actix_web::error::ErrorInternalServerError(e)),
                    }
                }
                (result, _) => result,
            };
            match result {
                Ok(mut res) => {
                    set_minted_nonce(&web, &mut res);
                    Ok(res.map_into_left_body())
                }
                Err(e) if e.to_string() == STORE_UNAVAILABLE => {
                    let page = crate::menu::unavailable(&web, htmx);
                    Err(WebError::shown(page).into())
                }
                Err(e) => Err(e),
            }
        }))
    }
}

/// Sets the CSRF nonce cookie minted for the request of `res`, unless there is none or
/// the handler set it already.
fn set_minted_nonce<B>(web: &Modal2faWeb, res: &mut ServiceResponse<B>) {
    let Some(cookie) = crate::csrf::minted_cookie(res.request(), &web.0.settings) else {
        return;
    };
    if res.response().cookies().all(|c| c.name() != cookie.name()) {
        // A cookie built from our own values always encodes.
        let _ = res.response_mut().add_cookie(&cookie);
    }
}
