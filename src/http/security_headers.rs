//! Headers that tell browsers how to treat every response, errors and probes included:
//!
//! - `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`;
//! - a `Content-Security-Policy` that allows nothing and no framing, unless the handler set its
//!   own (only the GraphiQL page does);
//! - `Cache-Control: no-store` unless the handler chose a policy (only GraphiQL's versioned
//!   files do), and always when the request carries `Authorization`, so that no shared cache
//!   keeps what a signed-in request returned.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::set_header::SetResponseHeaderLayer;

/// The Content-Security-Policy of every response but the GraphiQL page: JSON needs nothing.
const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// `router` with the browser-facing headers on every response it gives.
pub(crate) fn add_to(router: Router) -> Router {
    router
        .layer(middleware::from_fn(no_store_when_authenticated))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            NO_STORE,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

/// Marks the response `no-store` when the request carries credentials, whatever the handler set.
async fn no_store_when_authenticated(request: Request, next: Next) -> Response {
    let authenticated = request.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.run(request).await;
    if authenticated {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, NO_STORE);
    }
    response
}
