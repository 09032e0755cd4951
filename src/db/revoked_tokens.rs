//! Queries on `token_blacklist`, the access tokens revoked before they expired.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::ids::TokenId;
use crate::db::schema::token_blacklist;

/// Records that the token with id `jti`, valid until `expires_at`, is revoked. Revoking a token
/// twice is not an error.
pub async fn revoke(
    connection: &mut AsyncPgConnection,
    jti: &TokenId,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(token_blacklist::table)
        .values((
            token_blacklist::jti.eq(jti),
            token_blacklist::expires_at.eq(expires_at),
        ))
        .on_conflict_do_nothing()
        .execute(connection)
        .await?;
    Ok(())
}

/// Forgets revocations of tokens that have expired anyway; returns how many were removed.
pub async fn purge_expired(connection: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(token_blacklist::table.filter(token_blacklist::expires_at.lt(diesel::dsl::now)))
        .execute(connection)
        .await
}
