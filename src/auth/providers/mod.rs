//! Identity providers behind one trait: where to send a browser to sign in, how to turn the code
//! it comes back with into a verified profile, and how to check an `id_token` an app obtained on
//! a device.
//!
//! OpenID Connect providers (Google, Kakao, Apple, any other) are found through their discovery
//! documents, fetched with their signing keys at start-up and cached; a provider that cannot be
//! reached then is retried in the background, and signing in with it answers
//! SERVICE_UNAVAILABLE meanwhile. Naver speaks plain OAuth 2.0 and has a profile endpoint.

mod apple;
mod http_client;
mod naver;
mod oidc;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use url::Url;

pub use http_client::{HttpFailure, ProviderHttpClient, install_tls_crypto_provider};

use crate::config::{AuthConfig, ProviderName};
use crate::error::AppError;

/// The first wait before a provider that could not be reached is tried again; each failure
/// doubles it, up to [`LONGEST_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two attempts to reach a provider.
const LONGEST_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Who signed in, as the provider vouches for them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The provider's stable id of the person (`sub`).
    pub subject: String,
    /// Their e-mail address, when the provider shares it.
    pub email: Option<String>,
    /// Whether the provider says it verified that address.
    pub email_verified: bool,
    /// Their display name.
    pub name: Option<String>,
    /// A URL of their picture.
    pub picture: Option<String>,
}

/// Why a provider could not tell who signed in.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider's discovery document or keys have not been fetched yet.
    #[error("{0} cannot be reached yet; retry shortly")]
    NotReady(ProviderName),
    /// The provider did not answer, or answered with something unusable.
    #[error("{provider} did not answer usably: {cause}")]
    Unreachable {
        /// The provider.
        provider: ProviderName,
        /// What went wrong, for the logs.
        cause: String,
    },
    /// The provider refused, or what it sent failed verification; the message is safe to show.
    #[error("{0}")]
    Refused(String),
}

impl From<ProviderError> for AppError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Refused(message) => AppError::Unauthenticated(message.into()),
            unavailable => AppError::unavailable(anyhow::Error::new(unavailable)),
        }
    }
}

/// What the browser is sent to the provider with.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationRequest<'a> {
    /// Where the provider sends the browser back.
    pub redirect_uri: &'a Url,
    /// The random value that comes back with the code.
    pub state: &'a str,
    /// The random value the `id_token` must carry.
    pub nonce: &'a str,
    /// The PKCE verifier kept server-side; the provider is sent its S256 challenge.
    pub pkce_verifier: &'a str,
}

/// A code to exchange for who signed in.
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    /// The authorization code.
    pub code: &'a str,
    /// The redirect URI the code was issued for.
    pub redirect_uri: &'a Url,
    /// The PKCE verifier, when the flow used one.
    pub pkce_verifier: Option<&'a str>,
    /// The nonce the `id_token` must carry; `None` demands none.
    pub nonce: Option<&'a str>,
    /// The `state` of the authorization response, which Naver wants back at its token endpoint.
    pub state: Option<&'a str>,
}

/// One identity provider.
pub trait IdentityProvider: Send + Sync + fmt::Debug {
    /// Which provider this is.
    fn name(&self) -> ProviderName;

    /// The label of its sign-in button.
    fn display_name(&self) -> &str;

    /// Whether it answers the browser callback with a cross-site form POST (Apple), so the
    /// browser-binding cookie must be `SameSite=None`.
    fn posts_callback_form(&self) -> bool {
        false
    }

    /// Whether its token endpoint wants the `state` of the authorization response back with the
    /// code (Naver), so a code cannot be exchanged without it.
    fn exchanges_code_with_state(&self) -> bool {
        false
    }

    /// Whether its discovery document and keys are at hand.
    fn is_ready(&self) -> bool {
        true
    }

    /// Fetches its discovery document and keys; a no-op for providers without any.
    fn load(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }

    /// The provider URL a browser is sent to.
    fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<Url, ProviderError>;

    /// Exchanges an authorization code for the verified profile of who signed in.
    fn exchange_code<'a>(
        &'a self,
        exchange: CodeExchange<'a>,
    ) -> BoxFuture<'a, Result<Profile, ProviderError>>;

    /// Verifies an `id_token` an app obtained itself; `nonce` is the raw value the app made.
    fn verify_id_token<'a>(
        &'a self,
        id_token: &'a str,
        nonce: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Profile, ProviderError>>;
}

/// The configured providers.
#[derive(Debug, Default)]
pub struct Providers {
    providers: BTreeMap<ProviderName, Arc<dyn IdentityProvider>>,
}

impl Providers {
    /// Builds every configured provider. Nothing is fetched yet: see [`Providers::load`].
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let mut providers: BTreeMap<ProviderName, Arc<dyn IdentityProvider>> = BTreeMap::new();
        let Some(public_url) = &config.public_url else {
            return Ok(Self::default());
        };
        let http = ProviderHttpClient::new()?;
        for provider in &config.oidc {
            let redirect_uri = callback_url(public_url, provider.provider);
            providers.insert(
                provider.provider,
                Arc::new(oidc::OidcProvider::new(
                    provider,
                    redirect_uri,
                    http.clone(),
                )?),
            );
        }
        if let Some(apple) = &config.apple {
            let redirect_uri = callback_url(public_url, ProviderName::Apple);
            providers.insert(
                ProviderName::Apple,
                Arc::new(apple::apple_provider(apple, redirect_uri, http.clone())?),
            );
        }
        if let Some(naver) = &config.naver {
            let redirect_uri = callback_url(public_url, ProviderName::Naver);
            providers.insert(
                ProviderName::Naver,
                Arc::new(naver::NaverProvider::new(naver, redirect_uri, http.clone())),
            );
        }
        Ok(Self { providers })
    }

    /// The provider `name`, when it is configured.
    pub fn get(&self, name: ProviderName) -> Option<&Arc<dyn IdentityProvider>> {
        self.providers.get(&name)
    }

    /// Every configured provider, in the order of [`ProviderName::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn IdentityProvider>> {
        self.providers.values()
    }

    /// Fetches what every provider not ready yet needs; returns whether all are ready now.
    /// Failures are logged.
    pub async fn load(&self) -> bool {
        let pending: Vec<_> = self
            .providers
            .values()
            .filter(|provider| !provider.is_ready())
            .collect();
        let outcomes =
            futures_util::future::join_all(pending.iter().map(|provider| provider.load())).await;
        let mut all_ready = true;
        for (provider, outcome) in pending.iter().zip(outcomes) {
            match outcome {
                Ok(()) => tracing::info!(provider = %provider.name(), "identity provider ready"),
                Err(error) => {
                    all_ready = false;
                    tracing::warn!(
                        provider = %provider.name(),
                        error = %error,
                        "identity provider unreachable; retrying in the background"
                    );
                }
            }
        }
        all_ready
    }

    /// Loads every provider, then keeps retrying those that failed in a background task,
    /// waiting longer after each failure. The task ends once all are ready.
    pub async fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let all_ready = self.load().await;
        let providers = Arc::clone(self);
        tokio::spawn(async move {
            let mut wait = FIRST_RETRY_WAIT;
            let mut ready = all_ready;
            while !ready {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_RETRY_WAIT);
                ready = providers.load().await;
            }
        })
    }
}

/// `{AUTH_PUBLIC_URL}/auth/{provider}/callback`.
pub fn callback_url(public_url: &Url, provider: ProviderName) -> Url {
    let mut url = public_url.clone();
    let path = format!(
        "{}/auth/{provider}/callback",
        public_url.path().trim_end_matches('/')
    );
    url.set_path(&path);
    url
}

/// `{AUTH_PUBLIC_URL}/auth/{provider}`: where sign-in buttons send the browser.
pub fn login_url(public_url: &Url, provider: ProviderName) -> Url {
    let mut url = public_url.clone();
    let path = format!(
        "{}/auth/{provider}",
        public_url.path().trim_end_matches('/')
    );
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_live_under_the_public_url() {
        for base in ["https://api.example.com", "https://api.example.com/"] {
            let public_url = Url::parse(base).unwrap();
            assert_eq!(
                callback_url(&public_url, ProviderName::Apple).as_str(),
                "https://api.example.com/auth/apple/callback"
            );
            assert_eq!(
                login_url(&public_url, ProviderName::Kakao).as_str(),
                "https://api.example.com/auth/kakao"
            );
        }
        let nested = Url::parse("https://example.com/api").unwrap();
        assert_eq!(
            callback_url(&nested, ProviderName::Oidc).as_str(),
            "https://example.com/api/auth/oidc/callback"
        );
    }
}
