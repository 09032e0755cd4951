//! The HTTP client that talks to identity providers: rustls with Mozilla's roots, time limits on
//! connecting, reading and the whole exchange, no redirects followed, and bounded answers.

use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;

use anyhow::Context as _;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// How long connecting to a provider may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a provider may stay silent while answering.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one whole request to a provider may take.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read from a provider; discovery documents and key sets are a few KiB.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A request to a provider that got no usable answer: unreachable, too slow, or too large.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailure(String);

/// A client for provider endpoints, shared by every provider. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProviderHttpClient {
    client: reqwest::Client,
}

/// Makes ring the process's rustls crypto provider, which reqwest clients built without a TLS
/// configuration of their own use. Idempotent.
pub fn install_tls_crypto_provider() {
    // Fails only when a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl ProviderHttpClient {
    /// Builds the client.
    pub fn new() -> anyhow::Result<Self> {
        install_tls_crypto_provider();
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("configuring TLS for identity providers")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            // A provider answers; it never sends us elsewhere. A redirect is refused as an answer.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("festapi/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client for identity providers")?;
        Ok(Self { client })
    }

    /// Sends `request` and reads the answer, for oauth2 and openidconnect.
    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpFailure> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let mut response = self
            .client
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|error| HttpFailure(format!("{url}: {}", describe(&error))))?;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| HttpFailure(format!("{url}: {}", describe(&error))))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpFailure(format!(
                    "{url}: the answer is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let mut answer = HttpResponse::new(body);
        *answer.status_mut() = response.status();
        *answer.headers_mut() = std::mem::take(response.headers_mut());
        Ok(answer)
    }

    /// A GET of `url` with a bearer token, for profile endpoints.
    pub async fn get_with_bearer(
        &self,
        url: &url::Url,
        token: &str,
    ) -> Result<HttpResponse, HttpFailure> {
        let request = openidconnect::http::Request::get(url.as_str())
            .header(
                openidconnect::http::header::AUTHORIZATION,
                format!("Bearer {token}"),
            )
            .header(openidconnect::http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|error| HttpFailure(format!("{url}: {error}")))?;
        self.execute(request).await
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderHttpClient {
    type Error = HttpFailure;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpFailure>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

/// An error with its causes, which reqwest and openidconnect keep in its source chain.
pub(super) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
