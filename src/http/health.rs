//! Liveness and readiness probes for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::http::HttpState;

/// `GET /healthz`: the process is up and serving HTTP.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the instance can serve requests, PostgreSQL included.
pub(crate) async fn ready(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    if state.app.database.is_reachable().await {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "database": "unreachable" })),
        )
    }
}
