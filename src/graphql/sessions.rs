//! Sessions: refreshing tokens, listing and ending sessions, and signing out.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::db::ids::SessionId;
use crate::db::models::SessionRow;
use crate::domain::ids::ParseId as _;
use crate::domain::sessions::{self, MAX_LISTED_SESSIONS, SignedIn};
use crate::error::AppError;
use crate::graphql::context::ContextExt as _;
use crate::graphql::limits::list_cost;
use crate::graphql::users::{EmailAccess, User};

/// The tokens of a signed-in session, and who is signed in.
#[derive(SimpleObject)]
pub(super) struct AuthPayload {
    /// A short-lived JWT: send it as `Authorization: Bearer <accessToken>`.
    access_token: String,
    /// An opaque token for `refreshToken`, which exchanges it, once, for new tokens. Keep it
    /// secret and never send it as a Bearer token.
    refresh_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: i32,
    /// The signed-in user.
    user: User,
}

impl From<SignedIn> for AuthPayload {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            access_token: signed_in.access_token,
            refresh_token: signed_in.refresh_token,
            token_type: "Bearer".to_owned(),
            expires_in: i32::try_from(signed_in.expires_in.as_secs()).unwrap_or(i32::MAX),
            user: User(signed_in.user, EmailAccess::Themselves),
        }
    }
}

/// A live session of the signed-in user: one sign-in, on one device or app.
pub(super) struct Session {
    row: SessionRow,
    current: bool,
}

/// A live session of the signed-in user: one sign-in, on one device or app.
#[Object]
impl Session {
    /// The session's id, for `endSession`.
    async fn id(&self) -> ID {
        ID::from(self.row.id.as_str())
    }

    /// When the user signed in.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// When the session was last used to sign in, refresh or make a request, to the minute.
    async fn last_used_at(&self) -> DateTime<Utc> {
        self.row.last_used_at
    }

    /// The `User-Agent` of the request that signed in, if it sent one.
    async fn user_agent(&self) -> Option<&str> {
        self.row.user_agent.as_deref()
    }

    /// Whether this request was sent with a token of this session.
    async fn current(&self) -> bool {
        self.current
    }
}

/// Queries about sessions.
#[derive(Default)]
pub(super) struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The signed-in user's live sessions, newest first (at most 100). Ended and expired ones
    /// are not listed.
    #[graphql(complexity = "list_cost(Some(MAX_LISTED_SESSIONS), child_complexity)")]
    async fn my_sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>, AppError> {
        let session = ctx.session()?;
        let rows = sessions::live(&ctx.app()?.database, &session.user.id).await?;
        Ok(rows
            .into_iter()
            .map(|row| Session {
                current: row.id == session.session_id,
                row,
            })
            .collect())
    }
}

/// Mutations of sessions.
#[derive(Default)]
pub(super) struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Exchanges a refresh token for a new access token and a new refresh token; the one sent
    /// stops working. Sending a refresh token that was already exchanged ends its session, on
    /// the assumption that someone else holds it. Send no `Authorization` header with this, or
    /// a valid one: an expired access token fails the whole request.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token of the last sign-in or refresh.")]
        refresh_token: String,
    ) -> Result<AuthPayload, AppError> {
        let app = ctx.app()?;
        let signed_in = sessions::refresh(&app.database, &app.tokens, &refresh_token).await?;
        Ok(signed_in.into())
    }

    /// Ends the session this request was sent with: its refresh token and every access token of
    /// it stop working on every server instance. Other sessions are unaffected.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool, AppError> {
        let session = ctx.session()?;
        sessions::logout(&ctx.app()?.database, &session.session_id).await?;
        Ok(true)
    }

    /// Ends every live session of the signed-in user, this one included; returns how many.
    async fn logout_all(&self, ctx: &Context<'_>) -> Result<i32, AppError> {
        let session = ctx.session()?;
        let ended = sessions::end_all(&ctx.app()?.database, &session.user.id).await?;
        Ok(i32::try_from(ended).unwrap_or(i32::MAX))
    }

    /// Ends one live session of the signed-in user, as `logout` would from it. NOT_FOUND when
    /// no live session of theirs has this id, including another user's.
    async fn end_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool, AppError> {
        let session = ctx.session()?;
        let id = SessionId::parse("id", &id)?;
        sessions::end(&ctx.app()?.database, &session.user.id, &id).await?;
        Ok(true)
    }
}
