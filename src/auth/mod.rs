//! Who is making a request: access tokens, refresh tokens, the session a token opens, and the
//! identity providers people sign in with.
//!
//! A request is anonymous when it carries no token. A token that is malformed, forged or
//! expired, or whose session has ended or expired, is refused, never treated as anonymous.
//! Sessions live in PostgreSQL, so a session ended through one server instance is refused by
//! all of them at once.

pub mod providers;
pub mod refresh_tokens;
pub mod tokens;

use crate::db::ids::{SessionId, UserId};
use crate::db::models::UserRow;
use crate::db::{Database, sessions};
use crate::error::AppError;
use tokens::{AccessClaims, TokenService, VerifiedToken};

/// A signed-in user, the session they are signed in to, and the token that says so.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user, as loaded when the request began.
    pub user: UserRow,
    /// The session the access token belongs to, live when the request began.
    pub session_id: SessionId,
    /// The verified claims of the request's access token.
    pub claims: AccessClaims,
}

/// Opens the session a bearer token stands for: verifies the token, then, in one round trip,
/// checks that its session is live and loads its user.
pub async fn authenticate(
    database: &Database,
    tokens: &TokenService,
    bearer_token: &str,
) -> Result<Session, AppError> {
    let VerifiedToken { claims, .. } = tokens.verify_access_token(bearer_token)?;
    // The signature vouches for both ids: this server wrote them.
    let user_id = UserId::from_trusted(claims.sub.as_str());
    let session_id = SessionId::from_trusted(claims.sid.as_str());
    let mut connection = database.connection().await?;
    let user = sessions::find_user_of_live_session(&mut connection, &session_id, &user_id)
        .await?
        .ok_or_else(|| {
            AppError::Unauthenticated(
                "the access token's session has ended or expired: sign in again".into(),
            )
        })?;
    Ok(Session {
        user,
        session_id,
        claims,
    })
}
