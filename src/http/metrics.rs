//! `GET /metrics` for Prometheus, and the middleware that counts every HTTP request.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::{QuietLog, ROUTES};
use crate::metrics::{self, CONTENT_TYPE};
use crate::state::AppState;

/// The path metrics are served at.
pub(crate) const METRICS_PATH: &str = "/metrics";
/// The route label of requests no route matched: the path itself is never a label, so that
/// made-up paths cannot add series.
const UNMATCHED_ROUTE: &str = "unmatched";

/// A router serving `/metrics` alone.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route(METRICS_PATH, get(scrape))
        .with_state(state)
}

/// `GET /metrics`: the exposition, with the pool and database gauges sampled now.
async fn scrape(State(state): State<AppState>) -> Response {
    let sample = metrics::sample(&state.database).await;
    let mut response = state.metrics.render(&sample).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    // Scrapes come every few seconds: their access log lines are DEBUG, like the probes'.
    response.extensions_mut().insert(QuietLog);
    response
}

/// When a request reached the router, before the request timeout started counting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestStarted(pub Instant);

/// Counts the request and times it, by route template and status.
pub(crate) async fn count_request(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = route_label(request.extensions().get::<MatchedPath>());
    let started = Instant::now();
    request.extensions_mut().insert(RequestStarted(started));
    let response = next.run(request).await;
    state
        .metrics
        .record_request(route, response.status().as_u16(), started.elapsed());
    response
}

/// The route template a request matched, as a static label.
fn route_label(matched: Option<&MatchedPath>) -> &'static str {
    matched
        .and_then(|matched| ROUTES.iter().find(|route| **route == matched.as_str()))
        .copied()
        .unwrap_or(UNMATCHED_ROUTE)
}
