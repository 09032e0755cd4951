//! OpenID Connect providers: discovery, cached signing keys, the code exchange and `id_token`
//! verification, with openidconnect doing the protocol.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::BoxFuture;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdToken, CoreIdTokenClaims,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, SignatureVerificationError, TokenResponse as _,
};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use url::Url;

use super::apple::AppleClientSecret;
use super::http_client::describe;
use super::{
    AuthorizationRequest, CodeExchange, IdentityProvider, Profile, ProviderError,
    ProviderHttpClient,
};
use crate::config::{OidcProviderConfig, ProviderName};

/// The least time between two fetches of a provider's keys caused by an unknown `kid`.
pub(super) const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How far in the future an `id_token`'s `iat` may lie, for clocks that drift.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A client built from discovered metadata: authorization endpoint known, token and user-info
/// endpoints as the metadata says.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Where a provider's client secret comes from.
#[derive(Debug)]
pub(super) enum ClientSecretSource {
    /// A secret set in the configuration.
    Fixed(ClientSecret),
    /// Apple's: a JWT signed with our key, renewed before it expires.
    Apple(AppleClientSecret),
}

impl ClientSecretSource {
    fn current(&self) -> Result<ClientSecret, ProviderError> {
        match self {
            Self::Fixed(secret) => Ok(secret.clone()),
            Self::Apple(apple) => apple.current(),
        }
    }
}

/// An OpenID Connect provider.
#[derive(Debug)]
pub(super) struct OidcProvider {
    name: ProviderName,
    display_name: String,
    issuer: IssuerUrl,
    client_id: ClientId,
    secret: ClientSecretSource,
    scopes: Vec<Scope>,
    redirect_uri: RedirectUrl,
    /// Apple: answer the callback with a form POST (`response_mode=form_post`), and `id_token`s
    /// of apps carry the SHA-256 of the nonce.
    apple: bool,
    http: ProviderHttpClient,
    /// The discovery document with its key set, once fetched.
    metadata: RwLock<Option<Arc<CoreProviderMetadata>>>,
    /// When an unknown `kid` last made us fetch the keys again.
    last_key_refresh: Mutex<Option<Instant>>,
}

impl OidcProvider {
    /// A provider configured with a client secret.
    pub(super) fn new(
        config: &OidcProviderConfig,
        redirect_uri: Url,
        http: ProviderHttpClient,
    ) -> anyhow::Result<Self> {
        Self::build(
            config.provider,
            config.display_name.clone(),
            &config.issuer,
            &config.client_id,
            ClientSecretSource::Fixed(ClientSecret::new(
                config.client_secret.expose_secret().to_owned(),
            )),
            config
                .scopes
                .iter()
                .filter(|scope| *scope != "openid")
                .map(|scope| Scope::new(scope.clone()))
                .collect(),
            redirect_uri,
            http,
        )
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one constructor behind two callers"
    )]
    pub(super) fn build(
        name: ProviderName,
        display_name: String,
        issuer: &Url,
        client_id: &str,
        secret: ClientSecretSource,
        scopes: Vec<Scope>,
        redirect_uri: Url,
        http: ProviderHttpClient,
    ) -> anyhow::Result<Self> {
        // Discovery compares issuers as strings: keep the configured spelling, minus the slash
        // `Url` adds to a bare host.
        let issuer = issuer.as_str();
        let issuer = if issuer.ends_with('/') && Url::parse(issuer)?.path() == "/" {
            issuer.trim_end_matches('/')
        } else {
            issuer
        };
        Ok(Self {
            name,
            display_name,
            issuer: IssuerUrl::new(issuer.to_owned())?,
            client_id: ClientId::new(client_id.to_owned()),
            apple: matches!(secret, ClientSecretSource::Apple(_)),
            secret,
            scopes,
            redirect_uri: RedirectUrl::from_url(redirect_uri),
            http,
            metadata: RwLock::new(None),
            last_key_refresh: Mutex::new(None),
        })
    }

    fn metadata(&self) -> Result<Arc<CoreProviderMetadata>, ProviderError> {
        self.metadata
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(ProviderError::NotReady(self.name))
    }

    fn unreachable(&self, cause: impl std::fmt::Display) -> ProviderError {
        ProviderError::Unreachable {
            provider: self.name,
            cause: cause.to_string(),
        }
    }

    fn client(&self, metadata: &CoreProviderMetadata) -> Result<DiscoveredClient, ProviderError> {
        // `client_secret_basic` is the default when the provider lists no method (OpenID
        // Connect Discovery §3); Apple and Kakao list `client_secret_post` only.
        let basic = metadata
            .token_endpoint_auth_methods_supported()
            .is_none_or(|methods| methods.contains(&CoreClientAuthMethod::ClientSecretBasic));
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            self.client_id.clone(),
            Some(self.secret.current()?),
        )
        .set_redirect_uri(self.redirect_uri.clone())
        .set_auth_type(if basic {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        }))
    }

    /// Fetches the key set again after a token named a `kid` we do not know, unless that
    /// happened less than [`KEY_REFRESH_INTERVAL`] ago. Returns whether new keys were fetched.
    async fn refresh_keys(&self) -> Result<bool, ProviderError> {
        {
            let mut last = self
                .last_key_refresh
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < KEY_REFRESH_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let metadata = self.metadata()?;
        let keys = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|error| self.unreachable(describe(&error)))?;
        let mut refreshed = (*metadata).clone();
        refreshed = refreshed.set_jwks(keys);
        *self
            .metadata
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(refreshed));
        tracing::info!(provider = %self.name, "fetched the provider's signing keys again for an unknown key id");
        Ok(true)
    }

    /// Verifies `id_token` with the cached keys, fetching them once more when it names a key we
    /// do not know.
    async fn verified_claims(
        &self,
        id_token: &CoreIdToken,
        nonce: NonceCheck<'_>,
    ) -> Result<CoreIdTokenClaims, ProviderError> {
        // Without keys nothing can be verified: that is the provider being out of reach, not
        // the token being bad.
        self.metadata()?;
        match self.check_claims(id_token, nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.refresh_keys().await? => self.check_claims(id_token, nonce),
            outcome => outcome,
        }
        .map_err(|error| refusal(self.name, &error))
    }

    fn check_claims(
        &self,
        id_token: &CoreIdToken,
        nonce: NonceCheck<'_>,
    ) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
        let metadata = self
            .metadata()
            .map_err(|error| ClaimsVerificationError::Other(error.to_string()))?;
        let client = self
            .client(&metadata)
            .map_err(|error| ClaimsVerificationError::Other(error.to_string()))?;
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs([
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            ])
            .set_issue_time_verifier_fn(|issued_at| {
                if issued_at > Utc::now() + CLOCK_SKEW {
                    Err("it was issued in the future".to_owned())
                } else {
                    Ok(())
                }
            });
        id_token
            .claims(&verifier, |claimed: Option<&Nonce>| {
                nonce.verify(claimed.map(Nonce::secret).map(String::as_str))
            })
            .cloned()
    }

    /// The profile in `claims`, completed from the user-info endpoint when they lack the
    /// e-mail address or the name.
    async fn profile(
        &self,
        claims: &CoreIdTokenClaims,
        access_token: Option<&AccessToken>,
    ) -> Result<Profile, ProviderError> {
        let mut profile = Profile {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|email| email.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str().to_owned()),
            picture: claims
                .picture()
                .and_then(|picture| picture.get(None))
                .map(|picture| picture.as_str().to_owned()),
        };
        let (Some(access_token), true) = (
            access_token,
            profile.email.is_none() || profile.name.is_none(),
        ) else {
            return Ok(profile);
        };
        let metadata = self.metadata()?;
        if metadata.userinfo_endpoint().is_none() {
            return Ok(profile);
        }
        let client = self.client(&metadata)?;
        let request = client
            .user_info(access_token.clone(), Some(claims.subject().clone()))
            .map_err(|error| self.unreachable(error))?;
        let info: CoreUserInfoClaims = request
            .request_async(&self.http)
            .await
            .map_err(|error| self.unreachable(format!("user-info endpoint: {error:?}")))?;
        if profile.email.is_none() {
            profile.email = info.email().map(|email| email.as_str().to_owned());
            profile.email_verified = info.email_verified().unwrap_or(false);
        }
        if profile.name.is_none() {
            profile.name = info
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str().to_owned());
        }
        if profile.picture.is_none() {
            profile.picture = info
                .picture()
                .and_then(|picture| picture.get(None))
                .map(|picture| picture.as_str().to_owned());
        }
        Ok(profile)
    }
}

impl IdentityProvider for OidcProvider {
    fn name(&self) -> ProviderName {
        self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn posts_callback_form(&self) -> bool {
        self.apple
    }

    fn is_ready(&self) -> bool {
        self.metadata
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn load(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
                .await
                .map_err(|error| self.unreachable(describe(&error)))?;
            *self
                .metadata
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(metadata));
            Ok(())
        })
    }

    fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<Url, ProviderError> {
        let metadata = self.metadata()?;
        let client = self.client(&metadata)?;
        let state = request.state.to_owned();
        let nonce = request.nonce.to_owned();
        let mut authorize = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(
                &PkceCodeVerifier::new(request.pkce_verifier.to_owned()),
            ))
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(
                request.redirect_uri.clone(),
            )));
        if self.apple {
            authorize = authorize.add_extra_param("response_mode", "form_post");
        }
        Ok(authorize.url().0)
    }

    fn exchange_code<'a>(
        &'a self,
        exchange: CodeExchange<'a>,
    ) -> BoxFuture<'a, Result<Profile, ProviderError>> {
        Box::pin(async move {
            let metadata = self.metadata()?;
            let client = self.client(&metadata)?;
            let mut request = client
                .exchange_code(AuthorizationCode::new(exchange.code.to_owned()))
                .map_err(|error| self.unreachable(error))?
                .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(
                    exchange.redirect_uri.clone(),
                )));
            if let Some(verifier) = exchange.pkce_verifier {
                request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
            }
            let response =
                request
                    .request_async(&self.http)
                    .await
                    .map_err(|error| match error {
                        RequestTokenError::ServerResponse(refusal) => {
                            ProviderError::Refused(format!(
                                "{} refused the authorization code: {}",
                                self.name,
                                refusal.error()
                            ))
                        }
                        other => self.unreachable(format!("token endpoint: {other:?}")),
                    })?;
            let id_token = response.id_token().ok_or_else(|| {
                self.unreachable("the token endpoint answered without an id_token")
            })?;
            let claims = self
                .verified_claims(id_token, NonceCheck::Raw(exchange.nonce))
                .await?;
            self.profile(&claims, Some(response.access_token())).await
        })
    }

    fn verify_id_token<'a>(
        &'a self,
        id_token: &'a str,
        nonce: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Profile, ProviderError>> {
        Box::pin(async move {
            let id_token: CoreIdToken = id_token.parse().map_err(|_| {
                ProviderError::Refused(format!("the {} id_token is not a JWT", self.name))
            })?;
            let check = NonceCheck::App {
                nonce,
                hashed: self.apple,
            };
            let claims = self.verified_claims(&id_token, check).await?;
            self.profile(&claims, None).await
        })
    }
}

/// What the `nonce` claim of an `id_token` must be.
#[derive(Debug, Clone, Copy)]
enum NonceCheck<'a> {
    /// The nonce itself, when one is given; none demanded otherwise.
    Raw(Option<&'a str>),
    /// An `id_token` an app obtained: the nonce the app made is required whenever the token
    /// carries one. Apple's tokens of apps carry its SHA-256 hex (`hashed`).
    App {
        /// The raw nonce the app made, if it says it made one.
        nonce: Option<&'a str>,
        /// Whether the token carries the SHA-256 hex of the nonce rather than the nonce.
        hashed: bool,
    },
}

impl NonceCheck<'_> {
    fn verify(self, claimed: Option<&str>) -> Result<(), String> {
        let expected = match self {
            Self::Raw(None) => return Ok(()),
            Self::Raw(Some(nonce)) => nonce.to_owned(),
            Self::App { nonce: None, .. } if claimed.is_none() => return Ok(()),
            Self::App { nonce: None, .. } => {
                return Err("the token carries a nonce, and none was given".to_owned());
            }
            Self::App {
                nonce: Some(nonce),
                hashed: true,
            } => format!("{:x}", Sha256::digest(nonce.as_bytes())),
            Self::App {
                nonce: Some(nonce),
                hashed: false,
            } => nonce.to_owned(),
        };
        match claimed {
            Some(claimed) if constant_time_eq(claimed.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err("it does not match".to_owned()),
            None => Err("the token carries none".to_owned()),
        }
    }
}

/// Compares two secrets without leaking where they first differ.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// A client-safe reason for refusing an `id_token`.
fn refusal(provider: ProviderName, error: &ClaimsVerificationError) -> ProviderError {
    let reason = match error {
        ClaimsVerificationError::Expired(_) => "it has expired".to_owned(),
        ClaimsVerificationError::InvalidAudience(_) => {
            "it was issued for another client".to_owned()
        }
        ClaimsVerificationError::InvalidIssuer(_) => "it was issued by another issuer".to_owned(),
        ClaimsVerificationError::InvalidNonce(why) => format!("its nonce is wrong: {why}"),
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => "it is signed with a key the provider does not publish".to_owned(),
        ClaimsVerificationError::SignatureVerification(_) => {
            "its signature does not verify".to_owned()
        }
        ClaimsVerificationError::Other(why) if why.contains("issued in the future") => {
            "it was issued in the future".to_owned()
        }
        _ => "it is not valid".to_owned(),
    };
    tracing::info!(%provider, error = %error, "refused an id_token");
    ProviderError::Refused(format!("the {provider} id_token was refused: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_nonce_must_match_when_given() {
        assert!(NonceCheck::Raw(Some("n-1")).verify(Some("n-1")).is_ok());
        assert!(NonceCheck::Raw(Some("n-1")).verify(Some("n-2")).is_err());
        assert!(NonceCheck::Raw(Some("n-1")).verify(None).is_err());
        assert!(NonceCheck::Raw(None).verify(Some("anything")).is_ok());
    }

    #[test]
    fn apple_tokens_of_apps_carry_the_sha256_of_the_nonce() {
        let hashed = format!("{:x}", Sha256::digest(b"raw-nonce"));
        assert!(
            NonceCheck::App {
                nonce: Some("raw-nonce"),
                hashed: true
            }
            .verify(Some(&hashed))
            .is_ok()
        );
        assert!(
            NonceCheck::App {
                nonce: Some("raw-nonce"),
                hashed: true
            }
            .verify(Some("raw-nonce"))
            .is_err()
        );
        let none = NonceCheck::App {
            nonce: None,
            hashed: true,
        };
        assert!(none.verify(Some(&hashed)).is_err());
        assert!(none.verify(None).is_ok());
    }

    #[test]
    fn tokens_of_apps_that_carry_a_nonce_demand_it() {
        let check = |nonce| NonceCheck::App {
            nonce,
            hashed: false,
        };
        assert!(check(Some("n-1")).verify(Some("n-1")).is_ok());
        assert!(check(Some("n-1")).verify(Some("n-2")).is_err());
        assert!(check(Some("n-1")).verify(None).is_err());
        assert!(check(None).verify(Some("n-1")).is_err());
        assert!(check(None).verify(None).is_ok());
    }
}
