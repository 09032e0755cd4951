//! Access tokens: HS256-signed JWTs naming a user.
//!
//! Verification pins the algorithm, checks issuer, audience and expiry, and requires every claim
//! FestAPI writes, so a token minted for another service, of another kind, or missing a claim is
//! refused.

use std::fmt;
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::JwtConfig;
use crate::error::AppError;

/// The longest token accepted; ours are a few hundred bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Which kind of token a JWT is, so one kind can never be used as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Sent as `Authorization: Bearer` on API requests.
    Access,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: who signed the token.
    pub iss: String,
    /// Audience: who the token is for.
    pub aud: String,
    /// Subject: the user's id.
    pub sub: String,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, in seconds since the Unix epoch.
    pub exp: i64,
    /// The token's unique id, which logout revokes.
    pub jti: String,
    /// Always [`TokenType::Access`].
    pub token_type: TokenType,
}

/// A freshly signed token with its claims.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The encoded JWT.
    pub token: String,
    /// What it says.
    pub claims: AccessClaims,
}

/// Signs and verifies access tokens with one secret.
pub struct TokenService {
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: Duration,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A service using the configured secret, issuer, audience and lifetime.
    pub fn new(config: &JwtConfig) -> Self {
        let secret = config.secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            encoding_key: EncodingKey::from_secret(secret),
            decoding_key: DecodingKey::from_secret(secret),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: config.access_ttl,
        }
    }

    /// How long a newly issued access token stays valid.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Signs a new access token for user `user_id`.
    pub fn issue_access_token(&self, user_id: &str) -> Result<IssuedToken, AppError> {
        let issued_at = Utc::now().timestamp();
        let lifetime = i64::try_from(self.access_ttl.as_secs()).map_err(AppError::internal)?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            iat: issued_at,
            exp: issued_at + lifetime,
            jti: Uuid::new_v4().to_string(),
            token_type: TokenType::Access,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding_key)
                .map_err(AppError::internal)?;
        Ok(IssuedToken { token, claims })
    }

    /// The claims of `token` if it is a valid, unexpired access token signed by this service.
    ///
    /// Revocation is not checked here: that needs the database (see [`crate::auth::authenticate`]).
    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims, AppError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AppError::Unauthenticated(
                "the access token is too long".into(),
            ));
        }
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &self.decoding_key, &self.validation)
                .map_err(|error| {
                    AppError::Unauthenticated(match error.kind() {
                        ErrorKind::ExpiredSignature => "the access token has expired".into(),
                        _ => "the access token is invalid".into(),
                    })
                })?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn config(secret: &str) -> JwtConfig {
        JwtConfig {
            secret: SecretString::from(secret),
            uses_development_secret: false,
            issuer: "festapi".into(),
            audience: "festapi".into(),
            access_ttl: Duration::from_secs(900),
        }
    }

    fn service() -> TokenService {
        TokenService::new(&config("an-hs256-test-secret-of-32-bytes!!"))
    }

    #[test]
    fn issued_tokens_verify() {
        let tokens = service();
        let issued = tokens.issue_access_token("google_1").unwrap();
        let claims = tokens.verify_access_token(&issued.token).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(claims.token_type, TokenType::Access);
    }

    #[test]
    fn each_token_has_its_own_id() {
        let tokens = service();
        let first = tokens.issue_access_token("google_1").unwrap();
        let second = tokens.issue_access_token("google_1").unwrap();
        assert_ne!(first.claims.jti, second.claims.jti);
    }

    #[test]
    fn tokens_signed_with_another_secret_are_invalid() {
        let other = TokenService::new(&config("another-hs256-secret-of-32-bytes!!"));
        let token = other.issue_access_token("google_1").unwrap().token;
        let error = service().verify_access_token(&token).unwrap_err();
        assert_eq!(error.to_string(), "the access token is invalid");
    }
}
