//! The browser sign-in routes: `GET /auth/{provider}` sends the browser to the provider with a
//! flow stored server-side and bound to the browser by a cookie.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::config::ProviderName;
use crate::domain::sign_in::{self, StartedFlow};
use crate::error::AppError;
use crate::http::client_ip::ClientIp;
use crate::http::error::flow_error_response;
use crate::http::{HttpState, REQUEST_ID_HEADER};

/// The cookie that binds a flow to the browser that started it.
pub(crate) const BINDING_COOKIE: &str = "festapi_auth_flow";

/// What `GET /auth/{provider}` accepts.
#[derive(Debug, Deserialize)]
pub(crate) struct StartParameters {
    /// Where to send the browser once signed in; one of `AUTH_ALLOWED_REDIRECTS`.
    redirect_to: Option<String>,
}

/// `GET /auth/{provider}`: 303 to the provider, with the binding cookie.
pub(crate) async fn start(
    State(state): State<HttpState>,
    ClientIp(client_ip): ClientIp,
    Path(provider): Path<String>,
    Query(parameters): Query<StartParameters>,
    headers: HeaderMap,
) -> Response {
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    match started(&state, client_ip, &provider, parameters).await {
        Ok(flow) => redirect(&flow),
        Err(error) => flow_error_response(&error, request_id),
    }
}

async fn started(
    state: &HttpState,
    client_ip: std::net::IpAddr,
    provider: &str,
    parameters: StartParameters,
) -> Result<StartedFlow, AppError> {
    let app = &state.app;
    let provider: ProviderName = provider
        .parse()
        .map_err(|message: String| AppError::NotFound(message.into()))?;
    // Each start stores a row: it counts as a write against the client's allowance.
    app.rate_limits.check_client(client_ip, true)?;
    sign_in::start_browser_flow(
        &app.database,
        &app.providers,
        &app.auth,
        provider,
        parameters.redirect_to.as_deref(),
    )
    .await
}

/// 303 to the provider, setting the binding cookie.
fn redirect(flow: &StartedFlow) -> Response {
    let same_site = if flow.cross_site_callback {
        "None"
    } else {
        "Lax"
    };
    // SameSite=None is only honoured on Secure cookies.
    let secure = if flow.secure_cookie || flow.cross_site_callback {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{BINDING_COOKIE}={}; Path={}; Max-Age={}; HttpOnly; SameSite={same_site}{secure}",
        flow.binding,
        flow.cookie_path,
        flow.lifetime.as_secs()
    );
    let (Ok(location), Ok(cookie)) = (
        HeaderValue::from_str(flow.location.as_str()),
        HeaderValue::from_str(&cookie),
    ) else {
        let error = AppError::internal(anyhow::anyhow!("a flow's redirect is not a header value"));
        return flow_error_response(&error, "");
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::SET_COOKIE, cookie);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
