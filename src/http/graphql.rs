//! GraphQL over HTTP: request parsing, authentication, and response rendering.
//!
//! POST bodies must be `application/json` (anything else is 415, which also keeps browsers from
//! sending cross-site "simple" requests), a single request (batches are refused), and at most
//! [`MAX_BODY_BYTES`](crate::http::MAX_BODY_BYTES). GET runs queries only: a mutation is 405.
//! Responses are `application/json`, or `application/graphql-response+json` when the client
//! asks for it, in which case a request refused before it runs (a document that does not parse
//! or validate, an unknown operation, a required variable missing) is answered with 400.
//!
//! Either method may name its document by hash instead of sending it (Apollo's automatic
//! persisted queries): an unknown hash is answered 200 with `PERSISTED_QUERY_NOT_FOUND`, which
//! makes Apollo's clients send the document with its hash; a hash that does not match the
//! document sent with it is 400.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::{JoinError, JoinHandle};

use crate::auth::{self, Session};
use crate::error::{AppError, INTERNAL_MESSAGE};
use crate::graphql::{self, PreparedRequest, RequestContext, RequestError};
use crate::http::client_ip::ClientIp;
use crate::http::error::{Refusal, error_response, request_error};
use crate::http::media_type::MediaRange;
use crate::http::metrics::RequestStarted;
use crate::http::{GraphqlLogFields, HttpState, MAX_BODY_BYTES, REQUEST_ID_HEADER};
use crate::metrics::{Metrics, OperationLabel};

const JSON: &str = "application/json";
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// The code of the error that replaces a response over the size limit.
const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";

/// `POST /graphql`.
pub(crate) async fn post_request(
    State(state): State<HttpState>,
    client_ip: ClientIp,
    started: Option<Extension<RequestStarted>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(format) = ResponseFormat::negotiate(&headers) else {
        return not_acceptable();
    };
    let prepared = post_body(&headers, body).and_then(|request| prepare(&state, request));
    let response = match prepared {
        Ok(request) => execute(state, client_ip, started, headers, request, format).await,
        Err(refusal) => refusal.into_response(),
    };
    format.label(response)
}

/// `request` with its document looked up or parsed, and its persisted query resolved.
fn prepare(state: &HttpState, request: async_graphql::Request) -> Result<PreparedRequest, Refusal> {
    graphql::prepare(&state.documents, request).map_err(|error| match error {
        RequestError::MissingQuery => Refusal::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the request has no `query`: send the GraphQL document as `query`",
        ),
        // Apollo's clients expect a successful response carrying the error, and then send the
        // document with its hash.
        RequestError::PersistedQuery(error) if error.asks_for_text() => {
            Refusal::new(StatusCode::OK, error.code(), error.to_string())
        }
        RequestError::PersistedQuery(error) => {
            Refusal::new(StatusCode::BAD_REQUEST, error.code(), error.to_string())
        }
    })
}

/// The GraphQL request a POST carries.
fn post_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<async_graphql::Request, Refusal> {
    if !has_json_content_type(headers) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as `Content-Type: application/json` (in UTF-8)",
        ));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body is larger than the limit of {MAX_BODY_BYTES} bytes"),
        ),
        status => Refusal::new(status, "BAD_REQUEST", "the body could not be read"),
    })?;
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "BATCH_NOT_SUPPORTED",
            "batched requests are not supported: send one operation per request",
        ));
    }
    serde_json::from_slice::<async_graphql::Request>(&body).map_err(|error| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the body is not a GraphQL request: {error}"),
        )
    })
}

/// `GET /graphql?query=...`: queries only.
pub(crate) async fn get_request(
    State(state): State<HttpState>,
    client_ip: ClientIp,
    started: Option<Extension<RequestStarted>>,
    headers: HeaderMap,
    RawQuery(query_string): RawQuery,
) -> Response {
    let Some(format) = ResponseFormat::negotiate(&headers) else {
        return not_acceptable();
    };
    let response = match get_parameters(&state, query_string.as_deref().unwrap_or_default()) {
        // GET runs queries only: `get_parameters` refuses the rest.
        Ok(request) => execute(state, client_ip, started, headers, request, format).await,
        Err(refusal) => refusal.into_response(),
    };
    format.label(response)
}

/// The GraphQL query a GET carries, prepared: a mutation, sent as text or by hash, is refused.
fn get_parameters(state: &HttpState, query_string: &str) -> Result<PreparedRequest, Refusal> {
    let request = prepare(state, parse_query_string(query_string)?)?;
    if request.operation().is_mutation() {
        return Err(Refusal::method_not_allowed(
            "POST",
            "mutations must be sent with POST",
        ));
    }
    Ok(request)
}

/// The request a GET's query string carries: `query`, `operationName`, and `variables` and
/// `extensions` as JSON objects (left empty when the parameter is, as graphql-http does).
///
/// Read here rather than by async-graphql's `parse_query_string`, which expects
/// `operation_name` and so ignores the spec's `operationName`. A parameter given twice is
/// refused rather than one of its values picked silently.
fn parse_query_string(query_string: &str) -> Result<async_graphql::Request, Refusal> {
    let refusal = |problem: String| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the query string is not a GraphQL request: {problem}"),
        )
    };
    let [mut query, mut operation_name, mut variables, mut extensions] = [None, None, None, None];
    for (name, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        let parameter = match name.as_ref() {
            "query" => &mut query,
            "operationName" => &mut operation_name,
            "variables" => &mut variables,
            "extensions" => &mut extensions,
            _ => continue,
        };
        if parameter.replace(value.into_owned()).is_some() {
            return Err(refusal(format!("`{name}` is given more than once")));
        }
    }
    let mut request = async_graphql::Request::new(query.unwrap_or_default());
    request.operation_name = operation_name;
    request.variables = json_object("variables", variables).map_err(refusal)?;
    request.extensions = json_object("extensions", extensions).map_err(refusal)?;
    Ok(request)
}

/// The JSON object in the query-string parameter `name`; empty when it is absent, empty or null.
fn json_object<T: DeserializeOwned + Default>(
    name: &str,
    value: Option<String>,
) -> Result<T, String> {
    match value.filter(|value| !value.is_empty()) {
        None => Ok(T::default()),
        Some(value) => serde_json::from_str(&value)
            .map_err(|error| format!("`{name}` is not a JSON object: {error}")),
    }
}

/// Any other method on `/graphql`.
pub(crate) async fn other_method(headers: HeaderMap) -> Response {
    let format = ResponseFormat::negotiate(&headers).unwrap_or(ResponseFormat::Json);
    format.label(
        Refusal::method_not_allowed("GET, POST", "use POST, or GET for queries").into_response(),
    )
}

/// Admits the request, runs it, and renders the result; counts it in the operation metrics and
/// gives its access log line the operation and the user.
///
/// The work runs in a task of its own, aborted if the request is dropped (when it times out,
/// say), so that the timer answering the client never waits behind it and its database
/// connection is released at once.
async fn execute(
    state: HttpState,
    ClientIp(client_ip): ClientIp,
    started: Option<Extension<RequestStarted>>,
    headers: HeaderMap,
    request: PreparedRequest,
    format: ResponseFormat,
) -> Response {
    let operation = request.operation().clone();
    let timer = OperationTimer {
        metrics: Arc::clone(&state.app.metrics),
        label: state.app.metrics.operation_label(operation.name.as_deref()),
        operation_type: operation.type_label(),
        started: Instant::now(),
        request_started: started.map(|Extension(RequestStarted(at))| at),
        request_timeout: state.app.request_timeout,
        finished: false,
    };
    let is_mutation = operation.is_mutation();
    let task = AbortOnDrop(tokio::spawn(async move {
        let request_id = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let session = match admit(&state, client_ip, &headers, is_mutation).await {
            Ok(session) => session,
            Err(error) => return (error_response(&error, &request_id), error.code(), None),
        };
        let user_id = session
            .as_ref()
            .map(|signed_in| signed_in.user.id.to_string());
        let user_agent = headers.get(header::USER_AGENT).map(HeaderValue::as_bytes);
        let context = RequestContext::new(session, request_id, user_agent, client_ip);
        let response = graphql::execute(&state.schema, &state.app, request, context).await;
        let (rendered, replaced_by) =
            format.render(&response, state.app.graphql_limits.max_response_bytes);
        let outcome = replaced_by.unwrap_or_else(|| graphql::outcome(&response));
        (rendered, outcome, user_id)
    }));
    let (mut response, outcome, user_id) = match task.wait().await {
        Ok(done) => done,
        Err(error) => {
            tracing::error!(%error, "the GraphQL task failed");
            let response = request_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                INTERNAL_MESSAGE,
            );
            (response, "INTERNAL_SERVER_ERROR", None)
        }
    };
    timer.finish(outcome);
    response
        .extensions_mut()
        .insert(GraphqlLogFields { operation, user_id });
    response
}

/// Counts one GraphQL operation when it finishes, or when it is dropped unfinished: then it
/// was stopped by the request timeout (`TIMEOUT`, as the client was told) or by the client
/// going away (`CANCELLED`).
struct OperationTimer {
    metrics: Arc<Metrics>,
    label: OperationLabel,
    operation_type: &'static str,
    /// When the handler began.
    started: Instant,
    /// When the request reached the router, which is what the request timeout counts from.
    request_started: Option<Instant>,
    request_timeout: Duration,
    finished: bool,
}

impl OperationTimer {
    fn finish(mut self, outcome: &'static str) {
        self.record(outcome);
        self.finished = true;
    }

    fn record(&self, outcome: &'static str) {
        self.metrics.record_operation(
            &self.label,
            self.operation_type,
            outcome,
            self.started.elapsed(),
        );
    }
}

impl Drop for OperationTimer {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let timed_out = self
            .request_started
            .is_some_and(|at| at.elapsed() >= self.request_timeout);
        self.record(if timed_out { "TIMEOUT" } else { "CANCELLED" });
    }
}

/// A task that is aborted when this handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn wait(mut self) -> Result<T, JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The session of a request its client's and its user's rate limits admit. The client's come
/// first, so a flood is refused before it costs an authentication query.
async fn admit(
    state: &HttpState,
    client_ip: IpAddr,
    headers: &HeaderMap,
    is_mutation: bool,
) -> Result<Option<Session>, AppError> {
    let rate_limits = &state.app.rate_limits;
    rate_limits.check_client(client_ip, is_mutation)?;
    let session = session(state, headers).await?;
    if let Some(signed_in) = &session {
        rate_limits.check_user(&signed_in.user.id, is_mutation)?;
    }
    Ok(session)
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

fn not_acceptable() -> Response {
    request_error(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_ACCEPTABLE",
        "accept application/json or application/graphql-response+json",
    )
}

/// Whether the body is `application/json` in UTF-8: with no charset, which means UTF-8, or with
/// `charset=utf-8`. Other charsets are refused (415) rather than misread, as graphql-http does.
fn has_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(MediaRange::parse)
        .is_some_and(|media_type| media_type.is(JSON) && media_type.utf8)
}

/// The media type a response is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFormat {
    /// `application/json`: always 200 once the request was executed or rejected as GraphQL.
    Json,
    /// `application/graphql-response+json`: 400 for requests refused before they run.
    GraphQLResponseJson,
}

impl ResponseFormat {
    /// The format the `Accept` header asks for; `None` when it accepts neither (406).
    ///
    /// The spec asks for "the highest priority media type listed that is supported", so weights
    /// (`q`) count and `q=0` refuses a type; each type takes its weight from the most specific
    /// range that covers it (RFC 9110 §12.5.1). Among equal weights the type listed first wins,
    /// as in graphql-http 1.22, and a range covering both (`*/*`, `application/*`) means
    /// `application/json`, the default (audit 47DE). Ranges asking for a charset other than
    /// UTF-8 are not acceptable, as in graphql-http.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .filter(|accept| !accept.trim().is_empty())
        else {
            return Some(Self::Json);
        };
        let ranges: Vec<_> = accept.split(',').map(MediaRange::parse).collect();
        // How much the client wants `media_type`, and where the range saying so is listed.
        let preference = |media_type: &str| {
            let mut decided: Option<(u8, u16, usize)> = None;
            for (position, range) in ranges.iter().enumerate() {
                let specificity = if range.is(media_type) {
                    3
                } else if range.is("application/*") {
                    2
                } else if range.is("*/*") {
                    1
                } else {
                    continue;
                };
                let Some(weight) = range.weight.filter(|_| range.utf8) else {
                    continue;
                };
                if decided.is_none_or(|(current, ..)| specificity > current) {
                    decided = Some((specificity, weight, position));
                }
            }
            decided.map(|(_, weight, position)| (weight, position))
        };
        // Listed last, so that `max_by` picks `Json` when everything else is equal.
        [
            (Self::GraphQLResponseJson, preference(GRAPHQL_RESPONSE_JSON)),
            (Self::Json, preference(JSON)),
        ]
        .into_iter()
        .filter_map(|(format, preference)| Some((format, preference?)))
        .filter(|(_, (weight, _))| *weight > 0)
        .max_by(
            |(_, (weight, position)), (_, (other_weight, other_position))| {
                weight.cmp(other_weight).then(other_position.cmp(position))
            },
        )
        .map(|(format, _)| format)
    }

    /// Sets this format's media type on a response this module wrote as JSON.
    pub(crate) fn label(self, mut response: Response) -> Response {
        let content_type = match self {
            Self::Json => JSON,
            Self::GraphQLResponseJson => GRAPHQL_RESPONSE_JSON,
        };
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }

    /// The HTTP response for a GraphQL response, or an error in its place when its body would be
    /// longer than `max_bytes`: a client never receives half a response. The code of that error
    /// comes along when there is one.
    fn render(
        self,
        response: &async_graphql::Response,
        max_bytes: usize,
    ) -> (Response, Option<&'static str>) {
        // The status rule of graphql-http 1.22 and the GraphQL over HTTP draft it encodes: a
        // request refused before running (parse, validation, operation or variable errors) is
        // 400 under application/graphql-response+json and 200 under application/json.
        let rejected = graphql::was_refused(response);
        let status = match (self, rejected) {
            (Self::GraphQLResponseJson, true) => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        let mut body = BoundedBody::new(max_bytes);
        // A refused request never ran, so the response has no `data` entry at all.
        let written = if rejected {
            serde_json::to_writer(
                &mut body,
                &ErrorsOnly {
                    errors: &response.errors,
                },
            )
        } else {
            serde_json::to_writer(&mut body, response)
        };
        match written {
            Ok(()) => ((status, body.bytes).into_response(), None),
            Err(error) if error.is_io() => {
                tracing::warn!(max_bytes, "refused a response over the size limit");
                let message = format!(
                    "the response would be larger than {max_bytes} bytes; ask for fewer items"
                );
                let body = serde_json::json!({
                    "data": null,
                    "errors": [{ "message": message, "extensions": { "code": RESPONSE_TOO_LARGE } }],
                });
                (
                    (StatusCode::OK, Json(body)).into_response(),
                    Some(RESPONSE_TOO_LARGE),
                )
            }
            Err(error) => {
                tracing::error!(%error, "cannot serialize a GraphQL response");
                let response = request_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_SERVER_ERROR",
                    INTERNAL_MESSAGE,
                );
                (response, Some("INTERNAL_SERVER_ERROR"))
            }
        }
    }
}

/// A response of errors alone.
#[derive(Serialize)]
struct ErrorsOnly<'a> {
    errors: &'a [async_graphql::ServerError],
}

/// A response body being written, refusing to grow past a limit.
struct BoundedBody {
    bytes: Vec<u8>,
    limit: usize,
}

impl BoundedBody {
    fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(limit.min(4096)),
            limit,
        }
    }
}

impl std::io::Write for BoundedBody {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + chunk.len() > self.limit {
            return Err(std::io::Error::from(std::io::ErrorKind::FileTooLarge));
        }
        self.bytes.extend_from_slice(chunk);
        Ok(chunk.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
