//! Who is making a request: access tokens, the session they open, and the identity providers
//! people sign in with.
//!
//! A request is anonymous when it carries no token. A token that is malformed, forged, expired
//! or revoked is refused, never treated as anonymous. Revocations live in PostgreSQL, so a token
//! revoked through one server instance is refused by all of them at once.

pub mod providers;
pub mod tokens;

use chrono::{DateTime, Utc};

use crate::db::ids::{TokenId, UserId};
use crate::db::models::UserRow;
use crate::db::{Database, revoked_tokens, users};
use crate::error::AppError;
use tokens::{AccessClaims, TokenService, VerifiedToken};

/// A signed-in user and the token they signed in with.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user, as loaded when the request began.
    pub user: UserRow,
    /// The verified claims of the request's access token.
    pub claims: AccessClaims,
    /// When that token expires, and with it any revocation of it.
    pub expires_at: DateTime<Utc>,
}

/// Opens the session a bearer token stands for: verifies it, then loads its user in the same
/// round trip that checks the token has not been revoked.
pub async fn authenticate(
    database: &Database,
    tokens: &TokenService,
    bearer_token: &str,
) -> Result<Session, AppError> {
    let VerifiedToken { claims, expires_at } = tokens.verify_access_token(bearer_token)?;
    let mut connection = database.connection().await?;
    // The signature vouches for both ids: this server wrote them.
    let user_id = UserId::from_trusted(claims.sub.as_str());
    let token_id = TokenId::from_trusted(claims.jti.as_str());
    let user = users::find_unless_revoked(&mut connection, &user_id, &token_id)
        .await?
        .ok_or_else(|| {
            AppError::Unauthenticated(
                "the access token has been revoked or its user no longer exists".into(),
            )
        })?;
    Ok(Session {
        user,
        claims,
        expires_at,
    })
}

/// Revokes the session's access token on every server instance.
pub async fn logout(database: &Database, session: &Session) -> Result<(), AppError> {
    let mut connection = database.connection().await?;
    let token_id = TokenId::from_trusted(session.claims.jti.as_str());
    revoked_tokens::revoke(&mut connection, &token_id, session.expires_at).await?;
    Ok(())
}
