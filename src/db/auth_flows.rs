//! Queries on `auth_flows`: browser sign-ins between leaving for the provider and coming back.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::ids::FlowStateHash;
use crate::db::models::AuthFlowRow;
use crate::db::schema::auth_flows;

/// Stores a started flow.
pub async fn insert(connection: &mut AsyncPgConnection, flow: &AuthFlowRow) -> QueryResult<()> {
    diesel::insert_into(auth_flows::table)
        .values(flow)
        .execute(connection)
        .await?;
    Ok(())
}

/// Takes the flow of `state_hash` started by the browser whose binding cookie hashes to
/// `binding_hash`: deleted in the same statement, so it can be taken once only.
pub async fn take(
    connection: &mut AsyncPgConnection,
    state_hash: &FlowStateHash,
    binding_hash: &str,
) -> QueryResult<Option<AuthFlowRow>> {
    diesel::delete(
        auth_flows::table
            .filter(auth_flows::state_hash.eq(state_hash))
            .filter(auth_flows::binding_hash.eq(binding_hash)),
    )
    .returning(AuthFlowRow::as_returning())
    .get_result(connection)
    .await
    .optional()
}

/// Whether a flow of `state_hash` is waiting, whoever started it.
pub async fn exists(
    connection: &mut AsyncPgConnection,
    state_hash: &FlowStateHash,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        auth_flows::table.filter(auth_flows::state_hash.eq(state_hash)),
    ))
    .get_result(connection)
    .await
}

/// Forgets flows that expired; returns how many.
pub async fn purge_expired(connection: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(auth_flows::table.filter(auth_flows::expires_at.lt(diesel::dsl::now)))
        .execute(connection)
        .await
}
