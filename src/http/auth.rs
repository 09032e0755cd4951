//! The browser sign-in routes: `GET /auth/{provider}` sends the browser to the provider with a
//! flow stored server-side and bound to the browser by a cookie; `GET|POST
//! /auth/{provider}/callback` finishes it (POST for Apple's form) and answers with the tokens:
//! in the fragment of a redirect to the flow's `redirect_to`, or as JSON without one.

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::config::ProviderName;
use crate::domain::sessions::SignedIn;
use crate::domain::sign_in::{self, Callback, Client, FinishedFlow, StartedFlow};
use crate::error::AppError;
use crate::http::client_ip::ClientIp;
use crate::http::error::{flow_error_fragment, flow_error_response};
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
    let request_id = request_id(&headers);
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

/// What a provider sends back to the callback, in the query string or Apple's form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CallbackParameters {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    user: Option<String>,
}

/// `GET /auth/{provider}/callback`.
pub(crate) async fn callback_get(
    State(state): State<HttpState>,
    ClientIp(client_ip): ClientIp,
    Path(provider): Path<String>,
    Query(parameters): Query<CallbackParameters>,
    headers: HeaderMap,
) -> Response {
    callback(&state, client_ip, &provider, &parameters, &headers).await
}

/// `POST /auth/{provider}/callback`: Apple's `response_mode=form_post`.
pub(crate) async fn callback_post(
    State(state): State<HttpState>,
    ClientIp(client_ip): ClientIp,
    Path(provider): Path<String>,
    headers: HeaderMap,
    Form(parameters): Form<CallbackParameters>,
) -> Response {
    callback(&state, client_ip, &provider, &parameters, &headers).await
}

async fn callback(
    state: &HttpState,
    client_ip: std::net::IpAddr,
    provider: &str,
    parameters: &CallbackParameters,
    headers: &HeaderMap,
) -> Response {
    let request_id = request_id(headers);
    let finished = finished(state, client_ip, provider, parameters, headers).await;
    let mut response = match finished {
        Err(error) => flow_error_response(&error, request_id),
        Ok(FinishedFlow {
            redirect_to: Some(redirect_to),
            outcome,
        }) => {
            let fragment = match &outcome {
                Ok(signed_in) => token_fragment(signed_in),
                Err(error) => flow_error_fragment(error, request_id),
            };
            let mut location = redirect_to;
            location.set_fragment(Some(&fragment));
            see_other(location.as_str())
        }
        Ok(FinishedFlow {
            redirect_to: None,
            outcome: Ok(signed_in),
        }) => Json(token_body(&signed_in)).into_response(),
        Ok(FinishedFlow {
            redirect_to: None,
            outcome: Err(error),
        }) => flow_error_response(&error, request_id),
    };
    // The flow is over, whichever way: the browser forgets its binding.
    if let Ok(expired) = HeaderValue::from_str(&format!(
        "{BINDING_COOKIE}=; Path=/auth/{provider}; Max-Age=0; HttpOnly; SameSite=Lax"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, expired);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn finished(
    state: &HttpState,
    client_ip: std::net::IpAddr,
    provider: &str,
    parameters: &CallbackParameters,
    headers: &HeaderMap,
) -> Result<FinishedFlow, AppError> {
    let app = &state.app;
    let provider: ProviderName = provider
        .parse()
        .map_err(|message: String| AppError::NotFound(message.into()))?;
    app.rate_limits.check_client(client_ip, true)?;
    let callback = Callback {
        provider,
        binding: binding_cookie(headers),
        state: parameters.state.as_deref(),
        code: parameters.code.as_deref(),
        error: parameters.error.as_deref(),
        error_description: parameters.error_description.as_deref(),
        user: parameters.user.as_deref(),
    };
    let client = Client {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok()),
        ip: Some(client_ip),
    };
    sign_in::finish_browser_flow(
        &app.database,
        &app.providers,
        &app.tokens,
        &app.auth,
        &callback,
        &client,
    )
    .await
}

/// The binding cookie the browser sent, if any.
fn binding_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == BINDING_COOKIE)
        .map(|(_, value)| value)
}

/// The tokens as a URL fragment, for an app that reads them from its own page's address.
fn token_fragment(signed_in: &SignedIn) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", &signed_in.access_token)
        .append_pair("refresh_token", &signed_in.refresh_token)
        .append_pair("expires_in", &signed_in.expires_in.as_secs().to_string())
        .append_pair("token_type", "Bearer")
        .finish()
}

/// The tokens and who signed in, as JSON.
fn token_body(signed_in: &SignedIn) -> serde_json::Value {
    serde_json::json!({
        "accessToken": signed_in.access_token,
        "refreshToken": signed_in.refresh_token,
        "tokenType": "Bearer",
        "expiresIn": signed_in.expires_in.as_secs(),
        "user": {
            "id": signed_in.user.id.as_str(),
            "email": signed_in.user.email,
            "name": signed_in.user.name,
        },
    })
}

/// 303 to `location`.
fn see_other(location: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        let error = AppError::internal(anyhow::anyhow!("a redirect is not a header value"));
        return flow_error_response(&error, "");
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// The request's id, for the logs of a failure.
fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}
