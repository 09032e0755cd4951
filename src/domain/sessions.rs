//! Sessions: every sign-in starts one, refresh tokens keep it going, logout ends it.
//!
//! [`start_session`] is the one way a session starts, whatever signed the user in. It hands out
//! a short-lived access token naming the session and a refresh token. [`refresh`] exchanges a
//! refresh token for a new pair and retires the old one; presenting a retired one again means
//! two parties hold it, so the session ends (RFC 9700 §4.14). A session nobody refreshes
//! expires a refresh-token lifetime after its last refresh.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::auth::refresh_tokens::{self, RefreshToken, RefreshTokenHash};
use crate::auth::tokens::TokenService;
use crate::db::Database;
use crate::db::ids::{SessionId, UserId};
use crate::db::models::{NewSession, SessionRow, UserRow};
use crate::db::sessions::{self, Purged};
use crate::error::AppError;

/// The most sessions [`live`] lists: the newest.
pub const MAX_LISTED_SESSIONS: i32 = 100;
/// The longest `User-Agent` kept with a session, in characters; longer ones are cut.
pub const MAX_USER_AGENT_CHARS: usize = 512;

/// How and from where a user signs in.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignIn<'a> {
    /// The identity provider, or [`crate::domain::users::LOCAL_PROVIDER`] for accounts FestAPI
    /// itself vouches for.
    pub provider: &'a str,
    /// The identity the user signed in with, where identities are recorded.
    pub identity_id: Option<&'a str>,
    /// The `User-Agent` header of the request that signs in.
    pub user_agent: Option<&'a str>,
    /// The address of the client that signs in.
    pub ip: Option<IpAddr>,
}

/// A signed-in session, as the client receives it.
pub struct SignedIn {
    /// A JWT for `Authorization: Bearer`, valid for [`expires_in`](Self::expires_in).
    pub access_token: String,
    /// The opaque token that gets the next access token, once.
    pub refresh_token: String,
    /// How long the access token is valid.
    pub expires_in: Duration,
    /// The session both tokens belong to.
    pub session_id: SessionId,
    /// The signed-in user.
    pub user: UserRow,
}

/// Leaves the tokens out: they are secrets.
impl fmt::Debug for SignedIn {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SignedIn")
            .field("expires_in", &self.expires_in)
            .field("session_id", &self.session_id)
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

/// Starts a session for `user`, signed in as `sign_in` says, and hands out its first tokens.
pub async fn start_session(
    database: &Database,
    tokens: &TokenService,
    user: UserRow,
    sign_in: &SignIn<'_>,
) -> Result<SignedIn, AppError> {
    let id = new_session_id();
    let refresh_token = RefreshToken::generate()?;
    let user_agent = sign_in.user_agent.and_then(kept_user_agent);
    let session = NewSession {
        id: &id,
        user_id: &user.id,
        provider: sign_in.provider,
        identity_id: sign_in.identity_id,
        user_agent: user_agent.as_deref(),
        ip: sign_in.ip.map(ipnet::IpNet::from),
        expires_at: refresh_expiry(tokens)?,
    };
    let mut connection = database.connection().await?;
    sessions::insert(&mut connection, &session, &refresh_token.hash).await?;
    signed_in(tokens, id, user, refresh_token)
}

/// Exchanges refresh token `presented` for a new access token and a new refresh token, and
/// extends the session to a refresh-token lifetime from now. `presented` stops working.
///
/// UNAUTHENTICATED when `presented` is not the current refresh token of a live session. When it
/// is one that was exchanged before, the session ends as well, and every token of it with it.
pub async fn refresh(
    database: &Database,
    tokens: &TokenService,
    presented: &str,
) -> Result<SignedIn, AppError> {
    let presented = refresh_tokens::hash_presented(presented)?;
    let successor = RefreshToken::generate()?;
    let expires_at = refresh_expiry(tokens)?;
    let mut connection = database.connection().await?;
    let rotated =
        sessions::rotate_refresh_token(&mut connection, &presented, &successor.hash, expires_at)
            .await?;
    match rotated {
        Some((session, user)) => signed_in(tokens, session.id, user, successor),
        None => Err(refusal(&mut connection, &presented).await?),
    }
}

/// Why refresh token `presented` was not exchanged; ends its session when it was a rotated one.
async fn refusal(
    connection: &mut AsyncPgConnection,
    presented: &RefreshTokenHash,
) -> Result<AppError, AppError> {
    let Some(token) = sessions::find_refresh_token(connection, presented).await? else {
        return Ok(AppError::Unauthenticated(
            "the refresh token is invalid".into(),
        ));
    };
    if token.rotated_at.is_none() {
        return Ok(AppError::Unauthenticated(
            "the refresh token's session has ended or expired: sign in again".into(),
        ));
    }
    if sessions::end(connection, &token.session_id).await? {
        tracing::warn!(
            session_id = %token.session_id,
            "a refresh token was used again after it had been exchanged: ended its session"
        );
    }
    Ok(AppError::Unauthenticated(
        "the refresh token was already used, so its session has ended: sign in again".into(),
    ))
}

/// Ends session `session_id`, the one a request was sent with: its refresh token and every
/// access token of it stop working on every server instance. Ending an ended session is not an
/// error.
pub async fn logout(database: &Database, session_id: &SessionId) -> Result<(), AppError> {
    let mut connection = database.connection().await?;
    sessions::end(&mut connection, session_id).await?;
    Ok(())
}

/// Ends session `session_id` of `user_id`, as [`logout`] would from it. NOT_FOUND unless it is
/// a live session of theirs, whether it belongs to someone else, has ended or never existed:
/// nobody learns whether another user's session id exists.
pub async fn end(
    database: &Database,
    user_id: &UserId,
    session_id: &SessionId,
) -> Result<(), AppError> {
    let mut connection = database.connection().await?;
    if sessions::end_of_user(&mut connection, user_id, session_id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(
            format!(
                "you have no live session with the id {:?}",
                session_id.as_str()
            )
            .into(),
        ))
    }
}

/// Ends every live session of `user_id`; returns how many there were.
pub async fn end_all(database: &Database, user_id: &UserId) -> Result<usize, AppError> {
    let mut connection = database.connection().await?;
    Ok(sessions::end_all_of_user(&mut connection, user_id).await?)
}

/// The live sessions of `user_id`, newest first, at most [`MAX_LISTED_SESSIONS`].
pub async fn live(database: &Database, user_id: &UserId) -> Result<Vec<SessionRow>, AppError> {
    let mut connection = database.connection().await?;
    Ok(sessions::list_live(&mut connection, user_id, i64::from(MAX_LISTED_SESSIONS)).await?)
}

/// Deletes ended and expired sessions with their refresh tokens, and rotated refresh tokens
/// that have expired anyway.
pub async fn purge(database: &Database, tokens: &TokenService) -> Result<Purged, AppError> {
    let issued_before = Utc::now() - lifetime(tokens.refresh_ttl())?;
    let mut connection = database.connection().await?;
    Ok(sessions::purge(&mut connection, issued_before).await?)
}

/// A fresh session id: `session_` and a time-ordered UUID.
fn new_session_id() -> SessionId {
    SessionId::from_trusted(format!("session_{}", Uuid::now_v7().simple()))
}

/// When a session refreshed now expires.
fn refresh_expiry(tokens: &TokenService) -> Result<DateTime<Utc>, AppError> {
    Ok(Utc::now() + lifetime(tokens.refresh_ttl())?)
}

/// A configured lifetime as chrono counts time; configuration bounds it to a year.
fn lifetime(ttl: Duration) -> Result<TimeDelta, AppError> {
    TimeDelta::from_std(ttl).map_err(AppError::internal)
}

/// The tokens a client receives for session `session_id` of `user`.
fn signed_in(
    tokens: &TokenService,
    session_id: SessionId,
    user: UserRow,
    refresh_token: RefreshToken,
) -> Result<SignedIn, AppError> {
    let access = tokens.issue_access_token(&user.id, &session_id)?;
    Ok(SignedIn {
        access_token: access.token,
        refresh_token: refresh_token.token,
        expires_in: tokens.access_ttl(),
        session_id,
        user,
    })
}

/// The part of a `User-Agent` header worth keeping: control characters (NUL among them, which
/// PostgreSQL's text cannot hold) dropped, trimmed, at most [`MAX_USER_AGENT_CHARS`]
/// characters; `None` when nothing is left.
fn kept_user_agent(raw: &str) -> Option<String> {
    let printable: String = raw.chars().filter(|c| !c.is_control()).collect();
    let kept: String = printable
        .trim()
        .chars()
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    let kept = kept.trim_end();
    (!kept.is_empty()).then(|| kept.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_kept_printable_trimmed_and_bounded() {
        assert_eq!(
            kept_user_agent(" Mozilla/5.0 (X11)\0\n ").as_deref(),
            Some("Mozilla/5.0 (X11)")
        );
        assert_eq!(kept_user_agent(" \t\u{7}"), None);
        let long = "가".repeat(MAX_USER_AGENT_CHARS + 10);
        assert_eq!(
            kept_user_agent(&long).unwrap().chars().count(),
            MAX_USER_AGENT_CHARS
        );
    }

    #[test]
    fn session_ids_are_unique_and_prefixed() {
        let first = new_session_id();
        assert!(first.as_str().starts_with("session_"));
        assert_eq!(first.as_str().len(), "session_".len() + 32);
        assert_ne!(first, new_session_id());
    }
}
