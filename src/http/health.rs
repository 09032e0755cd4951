//! Liveness and readiness probes for load balancers and orchestrators, and the gate that keeps
//! requests needing the database out until the instance has started. Probes come every few
//! seconds, so their access log lines are DEBUG.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::db::migrations;
use crate::error::AppError;
use crate::http::error::request_error;
use crate::http::{HttpState, QuietLog};
use crate::lifecycle::{Lifecycle, Phase};

/// `GET /healthz`: the process is up and serving HTTP.
pub(crate) async fn live() -> (Extension<QuietLog>, Json<Value>) {
    (Extension(QuietLog), Json(json!({ "status": "ok" })))
}

/// `GET /readyz`: the instance has started, is not stopping, and PostgreSQL answers with every
/// migration of this build applied. Any other answer is 503 with the reason.
pub(crate) async fn ready(
    State(state): State<HttpState>,
) -> (StatusCode, Extension<QuietLog>, Json<Value>) {
    let (status, body) = readiness(&state).await;
    (status, Extension(QuietLog), Json(body))
}

async fn readiness(state: &HttpState) -> (StatusCode, Value) {
    let unready = |body: Value| (StatusCode::SERVICE_UNAVAILABLE, body);
    match state.app.lifecycle.phase() {
        Phase::WaitingForDatabase => {
            unready(json!({ "status": "starting", "database": "unreachable" }))
        }
        Phase::Migrating => unready(json!({ "status": "starting", "database": "migrating" })),
        Phase::Stopping => unready(json!({ "status": "stopping" })),
        Phase::Serving => match migrations::count_pending(&state.app.database).await {
            Ok(0) => (StatusCode::OK, json!({ "status": "ok" })),
            Ok(pending) => unready(json!({
                "status": "unavailable",
                "database": "migrations pending",
                "pendingMigrations": pending,
            })),
            Err(_) => unready(json!({ "status": "unavailable", "database": "unreachable" })),
        },
    }
}

/// Answers 503 `SERVICE_UNAVAILABLE` to requests that need the database while the instance is
/// still waiting for PostgreSQL or migrating it, rather than letting them fail on a schema that
/// is not there yet.
pub(crate) async fn until_started(
    State(lifecycle): State<Arc<Lifecycle>>,
    request: Request,
    next: Next,
) -> Response {
    if lifecycle.phase().has_started() {
        return next.run(request).await;
    }
    let unavailable = AppError::unavailable(anyhow::anyhow!("the instance is starting"));
    let mut response = request_error(
        StatusCode::SERVICE_UNAVAILABLE,
        unavailable.code(),
        &unavailable.to_string(),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
