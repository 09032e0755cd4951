//! The HTTP surface: routes, the layers every request passes through, and error rendering.
//!
//! - `POST /graphql` runs any operation; `GET /graphql` runs queries only;
//! - `GET /` serves GraphiQL outside production, and `GET /graphiql/...` the files it loads;
//! - `GET /healthz` answers while the process runs, `GET /readyz` while the instance has started,
//!   is not stopping, and PostgreSQL answers with every migration applied; until the instance
//!   has started, `/graphql` and `/auth/...` answer 503.

mod auth;
mod client_ip;
mod error;
mod graphiql;
mod graphql;
mod health;
mod jwks;
mod media_type;
mod request_id;
mod security_headers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::get;
use axum::{Router, middleware};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};

pub use request_id::MAX_REQUEST_ID_BYTES;

use crate::config::CorsOrigins;
use crate::graphql::{AppSchema, build_schema};
use crate::state::AppState;

/// The largest request body accepted: room for the largest valid request, a post of 10,000
/// four-byte characters JSON-escaped as surrogate pairs (12 bytes each) with its title, and
/// little more.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The header carrying the request id, set when the client sends none or an unusable one.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// What HTTP handlers share.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// The application state.
    app: AppState,
    /// The GraphQL schema, built once.
    schema: AppSchema,
}

/// Serves the application on `listener` until `shutdown` resolves; then stops accepting
/// connections, closes idle keep-alive ones, and returns once requests in flight are answered.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connection info gives the handlers each client's address, for the rate limits.
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The application's router, with every layer.
pub fn router(state: AppState) -> Router {
    let production = state.env.is_production();
    let request_timeout = state.request_timeout;
    let cors = cors_layer(&state.cors_origins, &state.cors_allowed_headers);
    let http_state = HttpState {
        schema: build_schema(state.clone()),
        app: state,
    };

    let mut routes = Router::new()
        .route(
            "/graphql",
            get(graphql::get_request)
                .post(graphql::post_request)
                .fallback(graphql::other_method),
        )
        .route("/auth/{provider}", get(auth::start))
        .route(
            "/auth/{provider}/callback",
            get(auth::callback_get).post(auth::callback_post),
        )
        // The routes above need the database; those below answer while it is not there yet.
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&http_state.app.lifecycle),
            health::until_started,
        ))
        .route("/.well-known/jwks.json", get(jwks::key_set))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready));
    if !production {
        routes = routes
            .route("/", get(graphiql::page))
            .route("/graphiql/{*path}", get(graphiql::asset));
    }

    let mut router = routes
        .with_state(http_state)
        .layer(CatchPanicLayer::custom(error::panic_response));
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    let router = router
        .layer(middleware::from_fn_with_state(
            request_timeout,
            error::time_limit,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                // A 503 under load is expected; the causes worth an ERROR are logged where
                // they happen, with the request id.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN))
                .make_span_with(request_span),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
        .layer(middleware::map_request(
            request_id::drop_unusable_request_id,
        ));
    security_headers::add_to(router)
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

/// Cross-origin rules for browsers: none unless origins are configured. Bearer tokens travel in
/// a header, so credentials (cookies) are never allowed.
fn cors_layer(origins: &CorsOrigins, allowed_headers: &[String]) -> Option<CorsLayer> {
    let allowed = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(origins) => AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        ),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(
                allowed_headers
                    .iter()
                    // Checked to be header names at start-up, so none is dropped here.
                    .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
                    .collect::<Vec<_>>(),
            )
            .expose_headers([REQUEST_ID_HEADER])
            .max_age(Duration::from_secs(60 * 60)),
    )
}
