//! Queries on `users`.

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::ids::UserId;
use crate::db::models::{CarriedOverUser, NewUser, UserChanges, UserRow};
use crate::db::pagination::{KeysetSlice, before_keyset};
use crate::db::schema::users;

diesel::define_sql_function! {
    /// PostgreSQL's `lower(text)`, which the case-insensitive e-mail index is built on.
    fn lower(
        text: diesel::sql_types::Nullable<diesel::sql_types::Text>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// The user with this id.
pub async fn find(connection: &mut AsyncPgConnection, id: &UserId) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(connection)
        .await
        .optional()
}

/// The user with this e-mail address, ignoring case.
pub async fn find_by_email(
    connection: &mut AsyncPgConnection,
    email: &str,
) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(lower(users::email).eq(lower(email)))
        .select(UserRow::as_select())
        .first(connection)
        .await
        .optional()
}

/// The users among `ids` that exist, in no particular order.
pub async fn find_many(
    connection: &mut AsyncPgConnection,
    ids: &[UserId],
) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(connection)
        .await
}

/// The users whose e-mail address is one of `emails`, compared as PostgreSQL's `lower` sees them
/// (the unique index's view), in no particular order.
pub async fn find_by_emails_ignoring_case(
    connection: &mut AsyncPgConnection,
    emails: &[String],
) -> QueryResult<Vec<UserRow>> {
    diesel::sql_query(
        "SELECT * FROM users WHERE lower(email) IN (SELECT lower(address) FROM unnest($1) AS address)",
    )
    .bind::<Array<Text>, _>(emails)
    .load(connection)
    .await
}

/// The users of `provider` whose id there is one of `provider_ids`, in no particular order.
pub async fn find_by_provider_ids(
    connection: &mut AsyncPgConnection,
    provider: &str,
    provider_ids: &[String],
) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::provider.eq(provider))
        .filter(users::provider_id.eq_any(provider_ids))
        .select(UserRow::as_select())
        .load(connection)
        .await
}

/// Inserts `rows` in one statement; any row whose id, e-mail or provider identity is taken fails
/// the statement. Bind parameters limit a statement to about 7,000 rows.
pub async fn insert_many(
    connection: &mut AsyncPgConnection,
    rows: &[CarriedOverUser<'_>],
) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(rows)
        .execute(connection)
        .await
}

/// Writes `rows` in one statement, replacing every column of those whose id exists;
/// `updated_at` then becomes the time of the change, as for any update.
pub async fn overwrite_many(
    connection: &mut AsyncPgConnection,
    rows: &[CarriedOverUser<'_>],
) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(rows)
        .on_conflict(users::id)
        .do_update()
        .set((
            users::email.eq(excluded(users::email)),
            users::name.eq(excluded(users::name)),
            users::picture.eq(excluded(users::picture)),
            users::verified_email.eq(excluded(users::verified_email)),
            users::provider.eq(excluded(users::provider)),
            users::provider_id.eq(excluded(users::provider_id)),
            users::created_at.eq(excluded(users::created_at)),
        ))
        .execute(connection)
        .await
}

/// The `slice` of users, newest first.
pub async fn list(
    connection: &mut AsyncPgConnection,
    slice: &KeysetSlice,
) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .select(UserRow::as_select())
        .order((users::created_at.desc(), users::id.desc()))
        .limit(slice.limit)
        .into_boxed();
    if let Some(after) = &slice.after {
        query = query.filter(before_keyset(users::created_at, users::id, after));
    }
    query.load(connection).await
}

/// Inserts `user` unless its id, e-mail or provider identity is taken; returns the rows inserted.
pub async fn insert_if_absent(
    connection: &mut AsyncPgConnection,
    user: &NewUser<'_>,
) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(user)
        .on_conflict_do_nothing()
        .execute(connection)
        .await
}

/// Applies `changes` to the user `id` and returns the updated row, or `None` when absent.
pub async fn update(
    connection: &mut AsyncPgConnection,
    id: &UserId,
    changes: &UserChanges,
) -> QueryResult<Option<UserRow>> {
    diesel::update(users::table.find(id))
        .set(changes)
        .returning(UserRow::as_returning())
        .get_result(connection)
        .await
        .optional()
}
