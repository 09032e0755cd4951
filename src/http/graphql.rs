//! GraphQL over HTTP: request parsing, authentication, and response rendering.
//!
//! POST bodies must be `application/json` (anything else is 415, which also keeps browsers from
//! sending cross-site "simple" requests), a single request (batches are refused), and at most
//! [`MAX_BODY_BYTES`](crate::http::MAX_BODY_BYTES). GET runs queries only: a mutation is 405.
//! Responses are `application/json`, or `application/graphql-response+json` when the client
//! asks for it, in which case a document that fails to parse or validate is answered with 400.

use async_graphql::parser::types::OperationType;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{self, Session};
use crate::error::{AppError, INTERNAL_MESSAGE};
use crate::graphql::{self, PARSE_FAILED, RequestContext, VALIDATION_FAILED};
use crate::http::HttpState;
use crate::http::REQUEST_ID_HEADER;
use crate::http::error::{error_response, request_error};

const JSON: &str = "application/json";
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// `POST /graphql`.
pub(crate) async fn post_request(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(format) = ResponseFormat::negotiate(&headers) else {
        return not_acceptable();
    };
    if !has_json_content_type(&headers) {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as `Content-Type: application/json`",
        );
    }
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[') {
        return request_error(
            StatusCode::BAD_REQUEST,
            "BATCH_NOT_SUPPORTED",
            "batched requests are not supported: send one operation per request",
        );
    }
    let request = match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) => request,
        Err(error) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the body is not a GraphQL request: {error}"),
            );
        }
    };
    execute(&state, &headers, request, format).await
}

/// `GET /graphql?query=...`: queries only.
pub(crate) async fn get_request(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(query_string): RawQuery,
) -> Response {
    let Some(format) = ResponseFormat::negotiate(&headers) else {
        return not_acceptable();
    };
    let request = match async_graphql::http::parse_query_string(
        query_string.as_deref().unwrap_or_default(),
    ) {
        Ok(request) => request,
        Err(error) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the query string is not a GraphQL request: {error}"),
            );
        }
    };
    if is_mutation(&request) {
        let mut response = request_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, &headers, request, format).await
}

/// Authenticates the request, runs it, and renders the result.
async fn execute(
    state: &HttpState,
    headers: &HeaderMap,
    request: async_graphql::Request,
    format: ResponseFormat,
) -> Response {
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let session = match session(state, headers).await {
        Ok(session) => session,
        Err(error) => return error_response(&error, &request_id),
    };
    let context = RequestContext {
        session,
        request_id,
    };
    let response = graphql::execute(&state.schema, &state.app, request, context).await;
    format.render(&response)
}

/// The session the `Authorization` header opens: none without the header, an error when the
/// header is there but unusable.
async fn session(state: &HttpState, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            AppError::Unauthenticated(
                "the Authorization header must be `Bearer <access token>`".into(),
            )
        })?;
    let session = auth::authenticate(&state.app.database, &state.app.tokens, token).await?;
    Ok(Some(session))
}

/// Whether a GET request asks for a mutation (or a subscription), which GET must not run.
///
/// A document that does not parse is let through: execution reports the parse error.
fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let operation = match &request.operation_name {
        Some(name) => document
            .operations
            .iter()
            .find(|(operation_name, _)| {
                operation_name.is_some_and(|candidate| candidate.as_str() == name)
            })
            .map(|(_, operation)| operation),
        None => document
            .operations
            .iter()
            .next()
            .map(|(_, operation)| operation),
    };
    operation.is_some_and(|operation| operation.node.ty != OperationType::Query)
}

fn not_acceptable() -> Response {
    request_error(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_ACCEPTABLE",
        "accept application/json or application/graphql-response+json",
    )
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(JSON))
}

/// The media type a response is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseFormat {
    /// `application/json`: always 200 once the request was executed or rejected as GraphQL.
    Json,
    /// `application/graphql-response+json`: 400 for documents that fail to parse or validate.
    GraphQLResponseJson,
}

impl ResponseFormat {
    /// The format the `Accept` header asks for; `None` when it accepts neither.
    fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
        else {
            return Some(Self::Json);
        };
        let media_types = || {
            accept
                .split(',')
                .filter_map(|item| item.split(';').next())
                .map(str::trim)
        };
        if media_types().any(|media_type| media_type.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON)) {
            return Some(Self::GraphQLResponseJson);
        }
        if media_types().any(|media_type| {
            ["application/json", "application/*", "*/*"]
                .iter()
                .any(|accepted| media_type.eq_ignore_ascii_case(accepted))
        }) || accept.trim().is_empty()
        {
            return Some(Self::Json);
        }
        None
    }

    fn render(self, response: &async_graphql::Response) -> Response {
        let rejected = response.errors.iter().any(|error| {
            error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                .is_some_and(|code| {
                    *code == async_graphql::Value::from(PARSE_FAILED)
                        || *code == async_graphql::Value::from(VALIDATION_FAILED)
                })
        });
        let (status, content_type) = match (self, rejected) {
            (Self::GraphQLResponseJson, true) => (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE_JSON),
            (Self::GraphQLResponseJson, false) => (StatusCode::OK, GRAPHQL_RESPONSE_JSON),
            (Self::Json, _) => (StatusCode::OK, JSON),
        };
        // A rejected document was never executed, so the response has no `data` entry at all.
        let body = if rejected {
            serde_json::json!({ "errors": response.errors })
        } else {
            match serde_json::to_value(response) {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(%error, "cannot serialize a GraphQL response");
                    return request_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "INTERNAL_SERVER_ERROR",
                        INTERNAL_MESSAGE,
                    );
                }
            }
        };
        let mut http_response = (status, Json(body)).into_response();
        http_response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        http_response
    }
}
