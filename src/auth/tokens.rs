//! Access tokens: JWTs naming a user and the session they belong to, signed with HS256 or, with a
//! private key configured, RS256 or EdDSA under a key id (`kid`) whose public key is published.
//!
//! Verification pins the algorithm, checks issuer, audience and expiry, and requires every claim
//! FestAPI writes, so a token minted for another service, of another kind, or missing a claim is
//! refused. It is strict about time and identity: no leeway unless configured, `nbf` honoured,
//! no `iat` in the future, no lifetime longer than the server itself grants, and a UUID `jti`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{JwtConfig, SigningKey};
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

/// Signs access tokens with one key, verifies them against the keys it accepts, and knows how
/// long tokens of each kind last.
pub struct TokenService {
    /// The header of every token signed: its algorithm and, with a key pair, its `kid`.
    header: Header,
    encoding_key: EncodingKey,
    verification: Verification,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// `access_ttl` in whole seconds: the longest `exp - iat` accepted.
    longest_lifetime: i64,
    /// The configured leeway in whole seconds.
    leeway: i64,
}

/// The keys a token may be signed with, each with the one algorithm it is checked under.
enum Verification {
    /// HS256 with the shared secret; tokens need no `kid`.
    Secret(Box<VerificationKey>),
    /// Public keys by `kid`, and the JWK set that publishes them.
    Published {
        keys: Vec<(String, VerificationKey)>,
        jwks: String,
    },
}

struct VerificationKey {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithm", &self.header.alg)
            .field("key_id", &self.header.kid)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A service using the configured keys, issuer, audience, lifetimes and leeway.
    pub fn new(config: &JwtConfig) -> Self {
        let validation = |algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[&config.issuer]);
            validation.set_audience(&[&config.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.leeway = config.leeway.as_secs();
            // Refuses an `nbf` in the future and an `nbf` that is not a number.
            validation.validate_nbf = true;
            // A token is expired from its `exp` second on (RFC 7519 §4.1.4); jsonwebtoken
            // alone would accept it during that second.
            validation.reject_tokens_expiring_in_less_than = 1;
            validation
        };
        let (header, encoding_key, verification) = match &config.signing {
            SigningKey::Secret { secret, .. } => {
                let secret = secret.expose_secret().as_bytes();
                (
                    Header::new(Algorithm::HS256),
                    EncodingKey::from_secret(secret),
                    Verification::Secret(Box::new(VerificationKey {
                        key: DecodingKey::from_secret(secret),
                        validation: validation(Algorithm::HS256),
                    })),
                )
            }
            SigningKey::KeyPair(pair) => {
                let mut header = Header::new(pair.algorithm);
                header.kid = Some(pair.key_id.clone());
                let jwks = JwkSet {
                    keys: pair.public_keys.iter().map(|key| key.jwk.clone()).collect(),
                };
                let keys = pair
                    .public_keys
                    .iter()
                    .map(|public| {
                        let key = VerificationKey {
                            key: public.key.clone(),
                            validation: validation(public.algorithm),
                        };
                        (public.key_id.clone(), key)
                    })
                    .collect();
                (
                    header,
                    pair.private_key.clone(),
                    Verification::Published {
                        keys,
                        // Serializing plain strings cannot fail.
                        jwks: serde_json::to_string(&jwks).unwrap_or_default(),
                    },
                )
            }
        };
        Self {
            header,
            encoding_key,
            verification,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
            longest_lifetime: whole_seconds(config.access_ttl),
            leeway: whole_seconds(config.leeway),
        }
    }

    /// The public keys tokens are checked against, as a JWK set (RFC 7517) for other services;
    /// `None` when tokens are signed with a shared secret.
    pub fn jwks(&self) -> Option<&str> {
        match &self.verification {
            Verification::Secret(_) => None,
            Verification::Published { jwks, .. } => Some(jwks),
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
        let token = jsonwebtoken::encode(&self.header, &claims, &self.encoding_key)
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
        let key = self.verification_key(token)?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.key, &key.validation)
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

    /// The key `token` must be signed with: the secret, or the public key its `kid` names.
    fn verification_key(&self, token: &str) -> Result<&VerificationKey, AppError> {
        let keys = match &self.verification {
            Verification::Secret(key) => return Ok(key),
            Verification::Published { keys, .. } => keys,
        };
        let invalid = |why: &str| {
            AppError::Unauthenticated(format!("the access token is invalid: {why}").into())
        };
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("its header cannot be read"))?;
        let key_id = header.kid.ok_or_else(|| invalid("it names no key (kid)"))?;
        keys.iter()
            .find(|(known, _)| *known == key_id)
            .map(|(_, key)| key)
            .ok_or_else(|| invalid("it names a key (kid) this server does not accept"))
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
            signing: SigningKey::Secret {
                secret: SecretString::from(secret),
                is_development: false,
            },
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
