//! Queries on `sessions` and `refresh_tokens`.
//!
//! A session is live while it has not ended and has not expired. Every check of that is made by
//! PostgreSQL's clock, in the statement that relies on it.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};

use crate::db::ids::{SessionId, UserId};
use crate::db::models::{NewSession, RefreshTokenRow, SessionRow, UserRow};
use crate::db::schema::{refresh_tokens, sessions, users};

/// Sessions that have neither ended nor expired.
#[diesel::dsl::auto_type]
fn live() -> _ {
    sessions::ended_at
        .is_null()
        .and(sessions::expires_at.gt(now))
}

/// Inserts `session` with its first refresh token, known by `refresh_token_hash`, in one
/// transaction; returns the session as stored.
pub async fn insert(
    connection: &mut AsyncPgConnection,
    session: &NewSession<'_>,
    refresh_token_hash: &[u8],
) -> QueryResult<SessionRow> {
    connection
        .transaction(async |connection| {
            let row = diesel::insert_into(sessions::table)
                .values(session)
                .returning(SessionRow::as_returning())
                .get_result(connection)
                .await?;
            diesel::insert_into(refresh_tokens::table)
                .values((
                    refresh_tokens::hash.eq(refresh_token_hash),
                    refresh_tokens::session_id.eq(&row.id),
                ))
                .execute(connection)
                .await?;
            Ok(row)
        })
        .await
}

/// The user `user_id` if session `session_id` is theirs and live, noting the session's use in
/// the same statement: one round trip authenticates a request. The note is kept to the minute
/// and written at most once a minute per session, so most requests write nothing.
pub async fn find_user_of_live_session(
    connection: &mut AsyncPgConnection,
    session_id: &SessionId,
    user_id: &UserId,
) -> QueryResult<Option<UserRow>> {
    UserOfLiveSession {
        session_id,
        user_id,
    }
    .get_result(connection)
    .await
    .optional()
}

/// The statement of [`find_user_of_live_session`].
///
/// A query type of its own rather than `sql_query`, which diesel never keeps prepared: this one
/// is prepared once per connection, so PostgreSQL does not parse and plan it for every request.
struct UserOfLiveSession<'a> {
    session_id: &'a SessionId,
    user_id: &'a UserId,
}

impl QueryId for UserOfLiveSession<'_> {
    type QueryId = UserOfLiveSession<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for UserOfLiveSession<'_> {
    type SqlType = users::SqlType;
}

impl QueryFragment<Pg> for UserOfLiveSession<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH noted AS (UPDATE sessions SET last_used_at = now() WHERE id = ");
        out.push_bind_param::<Text, _>(self.session_id)?;
        out.push_sql(" AND user_id = ");
        out.push_bind_param::<Text, _>(self.user_id)?;
        out.push_sql(
            " AND ended_at IS NULL AND expires_at > now() \
             AND last_used_at < now() - interval '1 minute') \
             SELECT users.* FROM users JOIN sessions ON sessions.user_id = users.id \
             WHERE sessions.id = ",
        );
        out.push_bind_param::<Text, _>(self.session_id)?;
        out.push_sql(" AND users.id = ");
        out.push_bind_param::<Text, _>(self.user_id)?;
        out.push_sql(" AND sessions.ended_at IS NULL AND sessions.expires_at > now()");
        Ok(())
    }
}

/// Exchanges the refresh token known by `presented` for its successor, known by `successor`,
/// if `presented` is the current token of a live session: marks it rotated, stores the
/// successor, and extends the session to `expires_at`, in one transaction. Returns the session
/// and its user, or `None` when `presented` is not such a token.
///
/// Of two exchanges of one token, however close, exactly one succeeds: the second waits for the
/// first's row lock and then finds the token rotated.
pub async fn rotate_refresh_token(
    connection: &mut AsyncPgConnection,
    presented: &[u8],
    successor: &[u8],
    expires_at: DateTime<Utc>,
) -> QueryResult<Option<(SessionRow, UserRow)>> {
    connection
        .transaction(async |connection| {
            let live_sessions = sessions::table.filter(live()).select(sessions::id);
            let rotated = diesel::update(
                refresh_tokens::table
                    .find(presented)
                    .filter(refresh_tokens::rotated_at.is_null())
                    .filter(refresh_tokens::session_id.eq_any(live_sessions)),
            )
            .set(refresh_tokens::rotated_at.eq(now))
            .returning(refresh_tokens::session_id)
            .get_result::<SessionId>(connection)
            .await
            .optional()?;
            let Some(session_id) = rotated else {
                return Ok(None);
            };
            diesel::insert_into(refresh_tokens::table)
                .values((
                    refresh_tokens::hash.eq(successor),
                    refresh_tokens::session_id.eq(&session_id),
                ))
                .execute(connection)
                .await?;
            let session = diesel::update(sessions::table.find(&session_id))
                .set((
                    sessions::last_used_at.eq(now),
                    sessions::expires_at.eq(expires_at),
                ))
                .returning(SessionRow::as_returning())
                .get_result(connection)
                .await?;
            let user = users::table
                .find(&session.user_id)
                .select(UserRow::as_select())
                .get_result(connection)
                .await?;
            Ok(Some((session, user)))
        })
        .await
}

/// The refresh token known by `hash`, current or rotated, if its session still exists.
pub async fn find_refresh_token(
    connection: &mut AsyncPgConnection,
    hash: &[u8],
) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .find(hash)
        .select(RefreshTokenRow::as_select())
        .get_result(connection)
        .await
        .optional()
}

/// Ends session `id` unless it has ended already; returns whether this call ended it.
pub async fn end(connection: &mut AsyncPgConnection, id: &SessionId) -> QueryResult<bool> {
    let ended = diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now))
    .execute(connection)
    .await?;
    Ok(ended > 0)
}

/// Ends session `id` if it is a live session of `user_id`; returns whether it was one.
pub async fn end_of_user(
    connection: &mut AsyncPgConnection,
    user_id: &UserId,
    id: &SessionId,
) -> QueryResult<bool> {
    let ended = diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::user_id.eq(user_id))
            .filter(live()),
    )
    .set(sessions::ended_at.eq(now))
    .execute(connection)
    .await?;
    Ok(ended > 0)
}

/// Ends every live session of `user_id`; returns how many there were.
pub async fn end_all_of_user(
    connection: &mut AsyncPgConnection,
    user_id: &UserId,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(live()),
    )
    .set(sessions::ended_at.eq(now))
    .execute(connection)
    .await
}

/// The live sessions of `user_id`, newest first, at most `limit` of them.
pub async fn list_live(
    connection: &mut AsyncPgConnection,
    user_id: &UserId,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(live())
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .limit(limit)
        .select(SessionRow::as_select())
        .load(connection)
        .await
}

/// What [`purge`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Sessions that had ended or expired, with all their refresh tokens.
    pub sessions: usize,
    /// Rotated refresh tokens of live sessions that had expired anyway.
    pub refresh_tokens: usize,
}

/// Deletes sessions that can no longer be used, with their refresh tokens, and the rotated
/// refresh tokens of live sessions handed out before `issued_before`, which would be refused
/// as expired even were they current.
///
/// Access tokens of a deleted session are refused as those of an ended one are: no row, no
/// session.
pub async fn purge(
    connection: &mut AsyncPgConnection,
    issued_before: DateTime<Utc>,
) -> QueryResult<Purged> {
    let sessions = diesel::delete(
        sessions::table.filter(
            sessions::ended_at
                .is_not_null()
                .or(sessions::expires_at.le(now)),
        ),
    )
    .execute(connection)
    .await?;
    let refresh_tokens = diesel::delete(
        refresh_tokens::table
            .filter(refresh_tokens::rotated_at.is_not_null())
            .filter(refresh_tokens::created_at.lt(issued_before)),
    )
    .execute(connection)
    .await?;
    Ok(Purged {
        sessions,
        refresh_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_check_is_kept_prepared() {
        let session_id = SessionId::from_trusted("session");
        let user_id = UserId::from_trusted("festapi_1");
        let query = UserOfLiveSession {
            session_id: &session_id,
            user_id: &user_id,
        };
        const { assert!(UserOfLiveSession::HAS_STATIC_QUERY_ID) };
        assert!(query.is_safe_to_cache_prepared(&Pg).unwrap());
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(sql.contains("sessions.id = $3 AND users.id = $4"), "{sql}");
    }
}
