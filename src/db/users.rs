//! Queries on `users`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::ids::UserId;
use crate::db::models::{NewUser, UserChanges, UserRow};
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
