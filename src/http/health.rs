//! Liveness and readiness probes for load balancers and orchestrators. They come every few
//! seconds, so their access log lines are DEBUG.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::http::{HttpState, QuietLog};

/// `GET /healthz`: the process is up and serving HTTP.
pub(crate) async fn live() -> (Extension<QuietLog>, Json<Value>) {
    (Extension(QuietLog), Json(json!({ "status": "ok" })))
}

/// `GET /readyz`: the instance can serve requests, PostgreSQL included.
pub(crate) async fn ready(
    State(state): State<HttpState>,
) -> (StatusCode, Extension<QuietLog>, Json<Value>) {
    if state.app.database.is_reachable().await {
        (
            StatusCode::OK,
            Extension(QuietLog),
            Json(json!({ "status": "ok" })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Extension(QuietLog),
            Json(json!({ "status": "unavailable", "database": "unreachable" })),
        )
    }
}
