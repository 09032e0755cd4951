//! The HTTP surface: routes, the layers every request passes through, and error rendering.
//!
//! - `POST /graphql` runs any operation; `GET /graphql` runs queries only;
//! - `GET /` serves GraphiQL outside production, and `GET /graphiql/...` the files it loads;
//! - `GET /healthz` answers while the process runs, `GET /readyz` while the instance has started,
//!   is not stopping, and PostgreSQL answers with every migration applied; until the instance
//!   has started, `/graphql` and `/auth/...` answer 503;
//! - `GET /metrics` answers Prometheus, unless `METRICS_ADDR` moves it to a listener of its own.
//!
//! Every request is counted by route and status, and ends with one access log line.

mod auth;
mod client_ip;
mod error;
mod graphiql;
mod graphql;
mod health;
mod jwks;
mod media_type;
mod metrics;
mod request_id;
mod security_headers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response};
use axum::routing::get;
use axum::{Router, middleware};
use opentelemetry_http::HeaderExtractor;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, OnResponse, TraceLayer};

pub use request_id::MAX_REQUEST_ID_BYTES;

use crate::config::{CorsOrigins, ProxyConfig};
use crate::graphql::{AppSchema, DocumentCache, OperationInfo, build_schema};
use crate::state::AppState;

/// The largest request body accepted: room for the largest valid request, a post of 10,000
/// four-byte characters JSON-escaped as surrogate pairs (12 bytes each) with its title, and
/// little more.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The header carrying the request id, set when the client sends none or an unusable one.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

const GRAPHQL_ROUTE: &str = "/graphql";
const AUTH_START_ROUTE: &str = "/auth/{provider}";
const AUTH_CALLBACK_ROUTE: &str = "/auth/{provider}/callback";
const JWKS_ROUTE: &str = "/.well-known/jwks.json";
const LIVE_ROUTE: &str = "/healthz";
const READY_ROUTE: &str = "/readyz";
const GRAPHIQL_ROUTE: &str = "/";
const GRAPHIQL_ASSET_ROUTE: &str = "/graphiql/{*path}";
/// Every route template, each a label of the HTTP metrics.
const ROUTES: [&str; 9] = [
    GRAPHQL_ROUTE,
    AUTH_START_ROUTE,
    AUTH_CALLBACK_ROUTE,
    JWKS_ROUTE,
    LIVE_ROUTE,
    READY_ROUTE,
    GRAPHIQL_ROUTE,
    GRAPHIQL_ASSET_ROUTE,
    metrics::METRICS_PATH,
];

/// Marks a response whose access log line is DEBUG rather than INFO: probes and scrapes, which
/// arrive every few seconds and say nothing about the traffic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuietLog;

/// What the access log line of a GraphQL request adds to the method, path, status and latency.
#[derive(Debug, Clone)]
pub(crate) struct GraphqlLogFields {
    /// The operation the request ran, or asked to.
    operation: OperationInfo,
    /// The signed-in user, if any.
    user_id: Option<String>,
}

/// What HTTP handlers share.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// The application state.
    app: AppState,
    /// The GraphQL schema, built once.
    schema: AppSchema,
    /// The documents this instance has parsed, and knows by hash.
    documents: Arc<DocumentCache>,
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

/// Serves `/metrics` alone on `listener` (the `METRICS_ADDR` one) until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = security_headers::add_to(metrics::router(state));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The application's router, with every layer.
pub fn router(state: AppState) -> Router {
    let production = state.env.is_production();
    let request_timeout = state.request_timeout;
    let cors = cors_layer(&state.cors_origins, &state.cors_allowed_headers);
    let proxies = state.proxies.clone();
    let (hits, misses) = state.metrics.document_cache();
    let http_state = HttpState {
        schema: build_schema(state.clone()),
        documents: Arc::new(DocumentCache::new(state.graphql_limits, hits, misses)),
        app: state.clone(),
    };

    let mut routes = Router::new()
        .route(
            GRAPHQL_ROUTE,
            get(graphql::get_request)
                .post(graphql::post_request)
                .fallback(graphql::other_method),
        )
        .route(AUTH_START_ROUTE, get(auth::start))
        .route(
            AUTH_CALLBACK_ROUTE,
            get(auth::callback_get).post(auth::callback_post),
        )
        // The routes above need the database; those below answer while it is not there yet.
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&http_state.app.lifecycle),
            health::until_started,
        ))
        .route(JWKS_ROUTE, get(jwks::key_set))
        .route(LIVE_ROUTE, get(health::live))
        .route(READY_ROUTE, get(health::ready));
    if !production {
        routes = routes
            .route(GRAPHIQL_ROUTE, get(graphiql::page))
            .route(GRAPHIQL_ASSET_ROUTE, get(graphiql::asset));
    }

    let mut router = routes.with_state(http_state);
    // With `METRICS_ADDR`, `/metrics` is served there only, and is a 404 here.
    if state.metrics_addr.is_none() {
        router = router.merge(metrics::router(state.clone()));
    }
    let mut router = router.layer(CatchPanicLayer::custom(error::panic_response));
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
        .layer(middleware::from_fn_with_state(
            state,
            metrics::count_request,
        ))
        .layer(
            TraceLayer::new_for_http()
                .on_response(AccessLog)
                // A 503 under load is expected; the causes worth an ERROR are logged where
                // they happen, with the request id.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN))
                .make_span_with(move |request: &Request<Body>| request_span(request, &proxies)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
        .layer(middleware::map_request(
            request_id::drop_unusable_request_id,
        ));
    security_headers::add_to(router)
}

/// The log span of one request, carrying its id and client so every log line of the request
/// has them.
fn request_span(request: &Request<Body>, proxies: &ProxyConfig) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let client_ip = client_ip::of_request(request.extensions(), request.headers(), proxies);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
        %client_ip,
        otel.name = %request.method(),
        otel.kind = "server",
    );
    crate::telemetry::continue_trace(&span, &HeaderExtractor(request.headers()));
    span
}

/// Writes the access log line of each response: status, latency in milliseconds and, for
/// GraphQL, the operation and the signed-in user. Probes and scrapes log at DEBUG.
#[derive(Debug, Clone, Copy)]
struct AccessLog;

impl<B> OnResponse<B> for AccessLog {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &tracing::Span) {
        let status = response.status().as_u16();
        // Whole microseconds, so that the number reads cleanly.
        let latency_ms = latency.as_micros() as f64 / 1_000.0;
        let graphql = response.extensions().get::<GraphqlLogFields>();
        let operation_name = graphql.map(|fields| {
            crate::metrics::loggable_operation_name(fields.operation.name.as_deref())
        });
        let operation_type = graphql.map(|fields| fields.operation.type_label());
        let user_id = graphql.and_then(|fields| fields.user_id.as_deref());
        macro_rules! access_log {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    status,
                    latency_ms,
                    operation_name,
                    operation_type,
                    user_id,
                    "answered request"
                )
            };
        }
        if response.extensions().get::<QuietLog>().is_some() {
            access_log!(tracing::Level::DEBUG);
        } else {
            access_log!(tracing::Level::INFO);
        }
    }
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
