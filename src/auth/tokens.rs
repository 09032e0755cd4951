//! Access tokens: HS256-signed JWTs naming a user and the session they belong to.
//!
//! Verification pins the algorithm, checks issuer, audience and expiry, and requires every claim
//! FestAPI writes, so a token minted for another service, of another kind, or missing a claim is
//! refused. It is strict about time and identity: no leeway unless configured, `nbf` honoured,
//! no `iat` in the future, no lifetime longer than the server itself grants, and a UUID `jti`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::JwtConfig;
use crate::db::ids::{SessionId, UserId};
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
    /// The id of the session the token belongs to; a token without one is refused.
    pub sid: String,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, in seconds since the Unix epoch.
    pub exp: i64,
    /// The token's unique id.
    pub jti: String,
    /// Always [`TokenType::Access`].
    pub token_type: TokenType,
}

/// An access token that passed every check, with what its claims mean.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// What the token says.
    pub claims: AccessClaims,
    /// When it expires: `exp`, known by now to lie within the leeway and the access-token
    /// lifetime of the present.
    pub expires_at: DateTime<Utc>,
}

/// A freshly signed token with its claims.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The encoded JWT.
    pub token: String,
    /// What it says.
    pub claims: AccessClaims,
}

/// Signs and verifies access tokens with one key, and knows how long tokens of each kind last.
pub struct TokenService {
    /// The one algorithm tokens are signed with and verified against.
    algorithm: Algorithm,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// `access_ttl` in whole seconds: the longest `exp - iat` accepted.
    longest_lifetime: i64,
    /// The configured leeway in whole seconds.
    leeway: i64,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithm", &self.algorithm)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A service using the configured secret, issuer, audience, lifetimes and leeway.
    pub fn new(config: &JwtConfig) -> Self {
        let algorithm = Algorithm::HS256;
        let secret = config.secret.expose_secret().as_bytes();
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = config.leeway.as_secs();
        // Refuses an `nbf` in the future and an `nbf` that is not a number.
        validation.validate_nbf = true;
        // A token is expired from its `exp` second on (RFC 7519 §4.1.4); jsonwebtoken alone
        // would accept it during that second.
        validation.reject_tokens_expiring_in_less_than = 1;
        Self {
            algorithm,
            encoding_key: EncodingKey::from_secret(secret),
            decoding_key: DecodingKey::from_secret(secret),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
            longest_lifetime: whole_seconds(config.access_ttl),
            leeway: whole_seconds(config.leeway),
        }
    }

    /// How long a newly issued access token stays valid.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// How long a refresh token, and so a session nobody refreshes, stays valid.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Signs a new access token for user `user_id` in session `session_id`.
    pub fn issue_access_token(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
    ) -> Result<IssuedToken, AppError> {
        let issued_at = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            iat: issued_at,
            exp: issued_at + self.longest_lifetime,
            jti: Uuid::new_v4().to_string(),
            token_type: TokenType::Access,
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding_key)
            .map_err(AppError::internal)?;
        Ok(IssuedToken { token, claims })
    }

    /// The claims of `token` if it is a valid, current access token signed by this service.
    ///
    /// Whether its session is still live is not checked here: that needs the database (see
    /// [`crate::auth::authenticate`]).
    pub fn verify_access_token(&self, token: &str) -> Result<VerifiedToken, AppError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AppError::Unauthenticated(
                "the access token is too long".into(),
            ));
        }
        let claims =
            jsonwebtoken::decode::<AccessClaims>(token, &self.decoding_key, &self.validation)
                .map_err(|error| {
                    AppError::Unauthenticated(match error.kind() {
                        ErrorKind::ExpiredSignature => "the access token has expired".into(),
                        ErrorKind::ImmatureSignature => "the access token is not valid yet".into(),
                        _ => "the access token is invalid".into(),
                    })
                })?
                .claims;
        let expires_at = self.check_issue_time_and_id(&claims, Utc::now().timestamp())?;
        Ok(VerifiedToken { claims, expires_at })
    }

    /// What jsonwebtoken leaves to us: `iat` not in the future, a lifetime (`exp - iat`) no
    /// longer than we grant, and a UUID `jti`. Returns when the token expires.
    ///
    /// Together with jsonwebtoken's `exp` check these bound `exp` to
    /// `now - leeway ..= now + leeway + access_ttl`.
    fn check_issue_time_and_id(
        &self,
        claims: &AccessClaims,
        now: i64,
    ) -> Result<DateTime<Utc>, AppError> {
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(AppError::Unauthenticated(
                "the access token is not valid yet: it was issued in the future".into(),
            ));
        }
        let lifetime = claims.exp.saturating_sub(claims.iat);
        if lifetime <= 0 || lifetime > self.longest_lifetime {
            return Err(AppError::Unauthenticated(
                format!(
                    "the access token is invalid: its lifetime must be 1 to {} seconds",
                    self.longest_lifetime
                )
                .into(),
            ));
        }
        if !is_canonical_uuid(&claims.jti) {
            return Err(AppError::Unauthenticated(
                "the access token is invalid: its id (jti) is not a UUID".into(),
            ));
        }
        DateTime::from_timestamp(claims.exp, 0).ok_or_else(|| {
            AppError::Unauthenticated(
                "the access token is invalid: its expiry is out of range".into(),
            )
        })
    }
}

/// Whether `jti` is a UUID written the way [`TokenService`] writes one: lowercase, hyphenated,
/// so that each id has exactly one spelling.
fn is_canonical_uuid(jti: &str) -> bool {
    Uuid::try_parse(jti).is_ok_and(|id| id.hyphenated().to_string() == jti)
}

/// A configured duration in whole seconds; config bounds it far below `i64::MAX`.
fn whole_seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
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
            refresh_ttl: Duration::from_secs(1_209_600),
            leeway: Duration::ZERO,
        }
    }

    /// Claims issued at `iat`, valid for `lifetime` seconds.
    fn claims(iat: i64, lifetime: i64, jti: &str) -> AccessClaims {
        AccessClaims {
            iss: "festapi".into(),
            aud: "festapi".into(),
            sub: "google_1".into(),
            sid: "session_1".into(),
            iat,
            exp: iat + lifetime,
            jti: jti.into(),
            token_type: TokenType::Access,
        }
    }

    fn user() -> UserId {
        UserId::from_trusted("google_1")
    }

    fn session() -> SessionId {
        SessionId::from_trusted("session_1")
    }

    const NOW: i64 = 1_800_000_000;
    const JTI: &str = "0b7f3d5e-2a4c-4e8f-9a1b-3c5d7e9f1a2b";

    fn service() -> TokenService {
        TokenService::new(&config("an-hs256-test-secret-of-32-bytes!!"))
    }

    #[test]
    fn issued_tokens_verify() {
        let tokens = service();
        let issued = tokens.issue_access_token(&user(), &session()).unwrap();
        let verified = tokens.verify_access_token(&issued.token).unwrap();
        assert_eq!(verified.claims, issued.claims);
        assert_eq!(verified.claims.exp - verified.claims.iat, 900);
        assert_eq!(verified.claims.token_type, TokenType::Access);
        assert_eq!(verified.claims.sid, "session_1");
        assert_eq!(verified.expires_at.timestamp(), issued.claims.exp);
        assert!(is_canonical_uuid(&issued.claims.jti));
    }

    #[test]
    fn issue_time_may_not_pass_now_plus_leeway() {
        let strict = service();
        assert!(
            strict
                .check_issue_time_and_id(&claims(NOW, 900, JTI), NOW)
                .is_ok()
        );
        let error = strict
            .check_issue_time_and_id(&claims(NOW + 1, 900, JTI), NOW)
            .unwrap_err();
        assert!(
            error.to_string().contains("issued in the future"),
            "{error}"
        );

        let lenient = TokenService::new(&JwtConfig {
            leeway: Duration::from_secs(30),
            ..config("an-hs256-test-secret-of-32-bytes!!")
        });
        assert!(
            lenient
                .check_issue_time_and_id(&claims(NOW + 30, 900, JTI), NOW)
                .is_ok()
        );
        assert!(
            lenient
                .check_issue_time_and_id(&claims(NOW + 31, 900, JTI), NOW)
                .is_err()
        );
    }

    #[test]
    fn lifetime_may_not_exceed_the_configured_one() {
        let tokens = service();
        let expires_at = tokens
            .check_issue_time_and_id(&claims(NOW, 900, JTI), NOW)
            .unwrap();
        assert_eq!(expires_at.timestamp(), NOW + 900);
        for lifetime in [901, 0, -1, i64::MAX - NOW] {
            let error = tokens
                .check_issue_time_and_id(&claims(NOW, lifetime, JTI), NOW)
                .unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("lifetime must be 1 to 900 seconds"),
                "{lifetime}: {error}"
            );
        }
        let from_the_distant_past = AccessClaims {
            iat: i64::MIN,
            ..claims(NOW, 900, JTI)
        };
        assert!(
            tokens
                .check_issue_time_and_id(&from_the_distant_past, NOW)
                .is_err()
        );
    }

    #[test]
    fn token_id_must_be_a_lowercase_hyphenated_uuid() {
        let tokens = service();
        for jti in [
            "",
            "not-a-uuid",
            "0B7F3D5E-2A4C-4E8F-9A1B-3C5D7E9F1A2B",
            "0b7f3d5e2a4c4e8f9a1b3c5d7e9f1a2b",
            "{0b7f3d5e-2a4c-4e8f-9a1b-3c5d7e9f1a2b}",
            "urn:uuid:0b7f3d5e-2a4c-4e8f-9a1b-3c5d7e9f1a2b",
        ] {
            let error = tokens
                .check_issue_time_and_id(&claims(NOW, 900, jti), NOW)
                .unwrap_err();
            assert!(error.to_string().contains("jti"), "{jti:?}: {error}");
        }
    }

    #[test]
    fn each_token_has_its_own_id() {
        let tokens = service();
        let first = tokens.issue_access_token(&user(), &session()).unwrap();
        let second = tokens.issue_access_token(&user(), &session()).unwrap();
        assert_ne!(first.claims.jti, second.claims.jti);
    }

    #[test]
    fn tokens_signed_with_another_secret_are_invalid() {
        let other = TokenService::new(&config("another-hs256-secret-of-32-bytes!!"));
        let token = other.issue_access_token(&user(), &session()).unwrap().token;
        let error = service().verify_access_token(&token).unwrap_err();
        assert_eq!(error.to_string(), "the access token is invalid");
    }

    #[test]
    fn tokens_without_a_session_are_invalid() {
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": "festapi",
            "aud": "festapi",
            "sub": "google_1",
            "iat": now,
            "exp": now + 900,
            "jti": JTI,
            "token_type": "access",
        });
        let key = EncodingKey::from_secret(b"an-hs256-test-secret-of-32-bytes!!");
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        let error = service().verify_access_token(&token).unwrap_err();
        assert_eq!(error.to_string(), "the access token is invalid");
    }
}
