//! Sign in with Apple: an OpenID Connect provider whose client secret is an ES256 JWT we sign
//! with the team's key, and which answers the browser with a form POST.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openidconnect::{ClientSecret, Scope};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use url::Url;

use super::oidc::{ClientSecretSource, OidcProvider};
use super::{ProviderError, ProviderHttpClient};
use crate::config::{AppleConfig, ProviderName};

/// The longest lifetime Apple accepts for a client secret: 15,777,000 s, about six months.
pub(super) const MAX_CLIENT_SECRET_LIFETIME: Duration = Duration::from_secs(15_777_000);
/// How long each client secret we sign stays valid.
const CLIENT_SECRET_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// A client secret with less than this left is replaced before use.
const RENEW_BEFORE: Duration = Duration::from_secs(24 * 60 * 60);

/// Builds the Apple provider.
pub(super) fn apple_provider(
    config: &AppleConfig,
    redirect_uri: Url,
    http: ProviderHttpClient,
) -> anyhow::Result<OidcProvider> {
    let secret = AppleClientSecret::new(config)?;
    OidcProvider::build(
        ProviderName::Apple,
        "Apple".to_owned(),
        &config.issuer,
        &config.client_id,
        ClientSecretSource::Apple(secret),
        vec![
            Scope::new("name".to_owned()),
            Scope::new("email".to_owned()),
        ],
        redirect_uri,
        http,
    )
}

/// The claims of Apple's client secret.
#[derive(Debug, Serialize)]
struct ClientSecretClaims<'a> {
    /// The team id.
    iss: &'a str,
    iat: i64,
    exp: i64,
    /// Apple's issuer.
    aud: &'a str,
    /// The Services ID.
    sub: &'a str,
}

/// Signs Apple client secrets and keeps the current one until it nears its expiry.
pub(super) struct AppleClientSecret {
    key: EncodingKey,
    key_id: String,
    team_id: String,
    client_id: String,
    audience: String,
    /// The current secret and when it expires (seconds since the epoch).
    current: Mutex<Option<(ClientSecret, i64)>>,
}

impl std::fmt::Debug for AppleClientSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AppleClientSecret")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl AppleClientSecret {
    fn new(config: &AppleConfig) -> anyhow::Result<Self> {
        let key = EncodingKey::from_ec_pem(config.private_key_pem.expose_secret().as_bytes())
            .map_err(|error| anyhow::anyhow!("AUTH_APPLE_PRIVATE_KEY_FILE: {error}"))?;
        Ok(Self {
            key,
            key_id: config.key_id.clone(),
            team_id: config.team_id.clone(),
            client_id: config.client_id.clone(),
            audience: config.issuer.as_str().trim_end_matches('/').to_owned(),
            current: Mutex::new(None),
        })
    }

    /// The secret to send now: the current one, or a new one when it expires within a day.
    pub(super) fn current(&self) -> Result<ClientSecret, ProviderError> {
        let now = Utc::now().timestamp();
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((secret, expires_at)) = current.as_ref()
            && *expires_at - now > seconds(RENEW_BEFORE)
        {
            return Ok(secret.clone());
        }
        let secret = self.sign(now, CLIENT_SECRET_LIFETIME)?;
        *current = Some((secret.clone(), now + seconds(CLIENT_SECRET_LIFETIME)));
        Ok(secret)
    }

    fn sign(&self, now: i64, lifetime: Duration) -> Result<ClientSecret, ProviderError> {
        let lifetime = lifetime.min(MAX_CLIENT_SECRET_LIFETIME);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = ClientSecretClaims {
            iss: &self.team_id,
            iat: now,
            exp: now + seconds(lifetime),
            aud: &self.audience,
            sub: &self.client_id,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(ClientSecret::new)
            .map_err(|error| ProviderError::Unreachable {
                provider: ProviderName::Apple,
                cause: format!("cannot sign the client secret: {error}"),
            })
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
