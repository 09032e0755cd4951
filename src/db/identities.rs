//! Queries on `identities`: who signs in as which user.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::ids::UserId;
use crate::db::models::{CarriedOverIdentity, IdentityRow, NewIdentity, UserRow};
use crate::db::schema::{identities, users};

/// The identity `(provider, subject)` and its user.
pub async fn find_with_user(
    connection: &mut AsyncPgConnection,
    provider: &str,
    subject: &str,
) -> QueryResult<Option<(IdentityRow, UserRow)>> {
    identities::table
        .inner_join(users::table)
        .filter(identities::provider.eq(provider))
        .filter(identities::subject.eq(subject))
        .select((IdentityRow::as_select(), UserRow::as_select()))
        .first(connection)
        .await
        .optional()
}

/// The identities of user `user_id`, oldest first.
pub async fn of_user(
    connection: &mut AsyncPgConnection,
    user_id: &UserId,
) -> QueryResult<Vec<IdentityRow>> {
    identities::table
        .filter(identities::user_id.eq(user_id))
        .order((identities::created_at.asc(), identities::id.asc()))
        .select(IdentityRow::as_select())
        .load(connection)
        .await
}

/// The identities at `provider` whose subject is one of `subjects`, in no particular order.
pub async fn find_many(
    connection: &mut AsyncPgConnection,
    provider: &str,
    subjects: &[String],
) -> QueryResult<Vec<IdentityRow>> {
    identities::table
        .filter(identities::provider.eq(provider))
        .filter(identities::subject.eq_any(subjects))
        .select(IdentityRow::as_select())
        .load(connection)
        .await
}

/// Inserts `rows` in one statement, skipping those whose `(provider, subject)` is taken; returns
/// the rows inserted.
pub async fn insert_many_if_absent(
    connection: &mut AsyncPgConnection,
    rows: &[CarriedOverIdentity<'_>],
) -> QueryResult<usize> {
    diesel::insert_into(identities::table)
        .values(rows)
        .on_conflict((identities::provider, identities::subject))
        .do_nothing()
        .execute(connection)
        .await
}

/// Inserts `identity` unless `(provider, subject)` is taken; returns the rows inserted.
pub async fn insert_if_absent(
    connection: &mut AsyncPgConnection,
    identity: &NewIdentity<'_>,
) -> QueryResult<usize> {
    diesel::insert_into(identities::table)
        .values(identity)
        .on_conflict((identities::provider, identities::subject))
        .do_nothing()
        .execute(connection)
        .await
}

/// Records the address the provider gave at the latest sign-in.
pub async fn set_email(
    connection: &mut AsyncPgConnection,
    identity: &IdentityRow,
    email: Option<&str>,
) -> QueryResult<()> {
    diesel::update(identities::table.find(&identity.id))
        .set(identities::email.eq(email))
        .execute(connection)
        .await?;
    Ok(())
}
