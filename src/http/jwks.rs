//! `GET /.well-known/jwks.json`: the public keys access tokens are signed with, so that other
//! services can verify them. Served only when tokens are signed with a private key.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::HttpState;

/// How long verifiers may cache the key set. Short enough that a key added for a rotation is
/// seen soon; verifiers also refetch when a token names a key they do not know.
const CACHE_FOR: HeaderValue = HeaderValue::from_static("public, max-age=300");

/// The JWK set (RFC 7517) of the keys tokens are checked against: the current key first.
pub(crate) async fn key_set(State(state): State<HttpState>) -> Response {
    match state.app.tokens.jwks() {
        Some(jwks) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, CACHE_FOR),
            ],
            jwks.to_owned(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
