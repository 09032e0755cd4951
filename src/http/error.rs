//! Errors answered before or outside GraphQL execution, in the GraphQL response shape so that
//! clients read every error the same way: `{"errors": [{"message", "extensions": {"code"}}]}`.

use std::any::Any;
use std::borrow::Cow;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{AppError, INTERNAL_MESSAGE};
use crate::http::graphql::ResponseFormat;

/// The HTTP status an error is answered with.
fn status(error: &AppError) -> StatusCode {
    match error {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        AppError::AccountExists { .. } => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Renders `error` for request `request_id`, logging internal causes.
pub(crate) fn error_response(error: &AppError, request_id: &str) -> Response {
    error.log_cause(request_id);
    let mut extensions = json!({ "code": error.code() });
    match error {
        AppError::Internal(_) => extensions["requestId"] = request_id.into(),
        AppError::InvalidInput { field, .. } => extensions["field"] = (*field).into(),
        AppError::AccountExists { provider } => extensions["provider"] = provider.as_str().into(),
        _ => {}
    }
    let body = json!({ "errors": [{ "message": error.to_string(), "extensions": extensions }] });
    let mut response = (status(error), Json(body)).into_response();
    match error {
        AppError::Unauthenticated(_) => {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        AppError::RateLimited {
            retry_after_seconds,
        } => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        _ => {}
    }
    response
}

/// Renders `error` for the browser sign-in routes, which are not GraphQL:
/// `{"error": CODE, "message": …}`, with `provider` for ACCOUNT_EXISTS.
pub(crate) fn flow_error_response(error: &AppError, request_id: &str) -> Response {
    error.log_cause(request_id);
    let mut body = json!({ "error": error.code(), "message": error.to_string() });
    if let AppError::AccountExists { provider } = error {
        body["provider"] = provider.as_str().into();
    }
    let mut response = (status(error), Json(body)).into_response();
    if let AppError::RateLimited {
        retry_after_seconds,
    } = error
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
    }
    response
}

/// Renders `error` for a browser sent back to the app it came from: the fragment
/// `error=CODE&error_description=…`, with `provider` for ACCOUNT_EXISTS as in
/// [`flow_error_response`], so the app can tell the person where to sign in.
pub(crate) fn flow_error_fragment(error: &AppError, request_id: &str) -> String {
    error.log_cause(request_id);
    let mut fragment = url::form_urlencoded::Serializer::new(String::new());
    fragment
        .append_pair("error", error.code())
        .append_pair("error_description", &error.to_string());
    if let AppError::AccountExists { provider } = error {
        fragment.append_pair("provider", provider);
    }
    fragment.finish()
}

/// A request refused before GraphQL runs it (bad content type, malformed body, ...).
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    /// The methods to list in an `Allow` header.
    allow: Option<&'static str>,
}

impl Refusal {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    /// A 405 that lists the methods allowed.
    pub(crate) fn method_not_allowed(allow: &'static str, message: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                message,
            )
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = request_error(self.status, self.code, &self.message);
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// A plain request error (bad content type, malformed body, ...) with its own status and code.
pub(crate) fn request_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// Answers a request whose handler panicked: logged, and a 500 without details.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = detail, "request handler panicked");
    request_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_SERVER_ERROR",
        INTERNAL_MESSAGE,
    )
}

/// Answers 503 `TIMEOUT` for a request still running after `limit`, and drops its work.
pub(crate) async fn time_limit(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let format = ResponseFormat::negotiate(request.headers()).unwrap_or(ResponseFormat::Json);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis(), "request timed out");
            let message = format!(
                "the request took longer than {} ms and was stopped; retry, or ask for less",
                limit.as_millis()
            );
            format.label(request_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                &message,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_limited_is_429_with_retry_after_and_a_graphql_body() {
        let response = error_response(&AppError::rate_limited(Duration::from_millis(2_500)), "");

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({ "errors": [{
                "message": "too many requests: retry in 3 s",
                "extensions": { "code": "RATE_LIMITED" },
            }] })
        );
    }

    #[test]
    fn account_exists_names_the_provider_in_the_fragment_too() {
        let error = AppError::AccountExists {
            provider: "google".to_owned(),
        };

        let fragment = flow_error_fragment(&error, "");

        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(fragment.as_bytes())
            .into_owned()
            .collect();
        let names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["error", "error_description", "provider"]);
        assert_eq!(pairs[0].1, "ACCOUNT_EXISTS");
        assert_eq!(pairs[2].1, "google");
    }
}
