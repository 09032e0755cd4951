//! Statements of commands that write many rows at once (`festapi seed`): counting what the
//! content tables hold, emptying them, lifting the per-request time limits for one transaction,
//! and refreshing the planner's statistics afterwards.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

/// How many users and posts the database holds, counted at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct ContentRows {
    /// Rows of `users`.
    #[diesel(sql_type = BigInt)]
    pub users: i64,
    /// Rows of `posts`.
    #[diesel(sql_type = BigInt)]
    pub posts: i64,
}

/// Counts the users and posts.
pub async fn count_content(connection: &mut AsyncPgConnection) -> diesel::QueryResult<ContentRows> {
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM posts) AS posts",
    )
    .get_result(connection)
    .await
}

/// Deletes every user and everything that hangs off one: posts, identities, sessions and their
/// refresh tokens (the tables whose foreign keys lead to `users`).
pub async fn delete_all_content(connection: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("TRUNCATE users CASCADE")
        .execute(connection)
        .await
        .map(drop)
}

/// Lifts the statement, lock and idle-transaction timeouts that pooled connections carry, until
/// the current transaction ends: they bound requests, while one bulk statement or a wait for a
/// table lock may rightly take longer.
pub async fn lift_time_limits_for_transaction(
    connection: &mut AsyncPgConnection,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "SELECT set_config('statement_timeout', '0', true), \
                set_config('lock_timeout', '0', true), \
                set_config('idle_in_transaction_session_timeout', '0', true)",
    )
    .execute(connection)
    .await
    .map(drop)
}

/// Refreshes the planner's statistics of the content tables, so that queries right after a bulk
/// write are planned for the rows now there rather than for empty tables.
pub async fn analyze_content(connection: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("ANALYZE users, identities, posts")
        .execute(connection)
        .await
        .map(drop)
}
