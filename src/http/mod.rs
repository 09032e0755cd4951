//! The HTTP surface: routes, the layers every request passes through, and error rendering.
//!
//! - `POST /graphql` runs any operation; `GET /graphql` runs queries only;
//! - `GET /` serves GraphiQL outside production;
//! - `GET /healthz` answers while the process runs, `GET /readyz` while PostgreSQL answers too.

mod error;
mod graphql;
mod health;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::graphql::{AppSchema, build_schema};
use crate::state::AppState;

/// The largest request body accepted, well above any legitimate query.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long one request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The header carrying the request id, set when the client sends none.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// What HTTP handlers share.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// The application state.
    app: AppState,
    /// The GraphQL schema, built once.
    schema: AppSchema,
}

/// The application's router, with every layer.
pub fn router(state: AppState) -> Router {
    let production = state.env.is_production();
    let http_state = HttpState {
        schema: build_schema(state.clone()),
        app: state,
    };

    let mut routes = Router::new()
        .route(
            "/graphql",
            get(graphql::get_request).post(graphql::post_request),
        )
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready));
    if !production {
        routes = routes.route("/", get(graphql::graphiql));
    }

    routes
        .with_state(http_state)
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                .make_span_with(request_span),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
}

/// The log span of one request, carrying its id so every log line of the request has it.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
    )
}
