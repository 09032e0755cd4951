//! Naver: OAuth 2.0 without an `id_token`; who signed in comes from the profile endpoint,
//! inside its `{"resultcode", "message", "response"}` envelope.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    TokenResponse as _, TokenUrl,
};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use url::Url;

use super::{
    AuthorizationRequest, CodeExchange, IdentityProvider, Profile, ProviderError,
    ProviderHttpClient,
};
use crate::config::{NaverConfig, ProviderName};

/// The client with Naver's authorization and token endpoints set.
type NaverClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The profile endpoint's answer.
#[derive(Debug, Deserialize)]
struct Envelope {
    /// `"00"` on success.
    resultcode: String,
    message: Option<String>,
    response: Option<NaverProfile>,
}

#[derive(Debug, Deserialize)]
struct NaverProfile {
    id: String,
    email: Option<String>,
    name: Option<String>,
    nickname: Option<String>,
    profile_image: Option<String>,
}

/// An error Naver's token endpoint answers with, as a 200 JSON body.
#[derive(Debug, Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

/// The Naver provider.
#[derive(Debug)]
pub(super) struct NaverProvider {
    client: NaverClient,
    userinfo_url: Url,
    http: ProviderHttpClient,
}

impl NaverProvider {
    pub(super) fn new(config: &NaverConfig, redirect_uri: Url, http: ProviderHttpClient) -> Self {
        let client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                config.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(AuthUrl::from_url(config.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri))
            // Naver reads the client secret from the request body only.
            .set_auth_type(AuthType::RequestBody);
        Self {
            client,
            userinfo_url: config.userinfo_url.clone(),
            http,
        }
    }

    fn unreachable(cause: impl std::fmt::Display) -> ProviderError {
        ProviderError::Unreachable {
            provider: ProviderName::Naver,
            cause: cause.to_string(),
        }
    }

    async fn profile(&self, access_token: &str) -> Result<Profile, ProviderError> {
        let answer = self
            .http
            .get_with_bearer(&self.userinfo_url, access_token)
            .await
            .map_err(Self::unreachable)?;
        let envelope: Envelope = serde_json::from_slice(answer.body()).map_err(|error| {
            Self::unreachable(format!(
                "profile endpoint answered {} with no envelope: {error}",
                answer.status()
            ))
        })?;
        let profile = match envelope.response {
            Some(profile) if envelope.resultcode == "00" => profile,
            _ => {
                return Err(ProviderError::Refused(format!(
                    "naver refused the profile request: {} {}",
                    envelope.resultcode,
                    envelope.message.unwrap_or_default()
                )));
            }
        };
        Ok(Profile {
            subject: profile.id,
            email: profile.email,
            // Naver says nothing about whether it verified the address.
            email_verified: false,
            name: profile.name.or(profile.nickname),
            picture: profile.profile_image,
        })
    }
}

impl IdentityProvider for NaverProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Naver
    }

    fn display_name(&self) -> &str {
        "Naver"
    }

    fn exchanges_code_with_state(&self) -> bool {
        true
    }

    fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<Url, ProviderError> {
        let state = request.state.to_owned();
        let (url, _) = self
            .client
            .authorize_url(move || CsrfToken::new(state))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(
                &PkceCodeVerifier::new(request.pkce_verifier.to_owned()),
            ))
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(
                request.redirect_uri.clone(),
            )))
            .url();
        Ok(url)
    }

    fn exchange_code<'a>(
        &'a self,
        exchange: CodeExchange<'a>,
    ) -> BoxFuture<'a, Result<Profile, ProviderError>> {
        Box::pin(async move {
            let mut request = self
                .client
                .exchange_code(AuthorizationCode::new(exchange.code.to_owned()))
                .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(
                    exchange.redirect_uri.clone(),
                )));
            if let Some(state) = exchange.state {
                request = request.add_extra_param("state", state.to_owned());
            }
            if let Some(verifier) = exchange.pkce_verifier {
                request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
            }
            let response =
                request
                    .request_async(&self.http)
                    .await
                    .map_err(|error| match error {
                        RequestTokenError::ServerResponse(refusal) => ProviderError::Refused(
                            format!("naver refused the authorization code: {}", refusal.error()),
                        ),
                        // Naver answers some refusals with 200 and an error body.
                        RequestTokenError::Parse(_, body) => {
                            match serde_json::from_slice::<TokenError>(&body) {
                                Ok(refusal) => ProviderError::Refused(format!(
                                    "naver refused the authorization code: {} {}",
                                    refusal.error,
                                    refusal.error_description.unwrap_or_default()
                                )),
                                Err(_) => Self::unreachable("token endpoint answered no token"),
                            }
                        }
                        other => Self::unreachable(format!("token endpoint: {other:?}")),
                    })?;
            self.profile(response.access_token().secret()).await
        })
    }

    fn verify_id_token<'a>(
        &'a self,
        _id_token: &'a str,
        _nonce: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Profile, ProviderError>> {
        Box::pin(async {
            Err(ProviderError::Refused(
                "naver issues no id_token: sign in with an authorization code".to_owned(),
            ))
        })
    }
}
