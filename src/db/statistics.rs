//! Counts for the metrics: sessions by state and migrations applied, in one statement.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

/// What the database holds, counted at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct Statistics {
    /// Sessions neither ended nor expired.
    #[diesel(sql_type = BigInt)]
    pub live_sessions: i64,
    /// Sessions ended (by logout, `endSession`, `logoutAll` or refresh-token reuse), kept with
    /// their refresh tokens until the hourly purge so that their tokens stay refused.
    #[diesel(sql_type = BigInt)]
    pub revoked_sessions: i64,
    /// Sessions expired and not yet purged.
    #[diesel(sql_type = BigInt)]
    pub expired_sessions: i64,
    /// Migrations recorded as applied.
    #[diesel(sql_type = BigInt)]
    pub migrations_applied: i64,
}

/// Counts sessions and applied migrations: one pass over `sessions`, which the hourly purge
/// keeps to the live ones and an hour's worth of ended ones.
pub async fn read(connection: &mut AsyncPgConnection) -> diesel::QueryResult<Statistics> {
    diesel::sql_query(
        "SELECT \
           count(*) FILTER (WHERE ended_at IS NULL AND expires_at > now()) AS live_sessions, \
           count(*) FILTER (WHERE ended_at IS NOT NULL) AS revoked_sessions, \
           count(*) FILTER (WHERE ended_at IS NULL AND expires_at <= now()) AS expired_sessions, \
           (SELECT count(*) FROM __diesel_schema_migrations) AS migrations_applied \
         FROM sessions",
    )
    .get_result(connection)
    .await
}
