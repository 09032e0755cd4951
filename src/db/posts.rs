//! Queries on `posts`.

use diesel::dsl::exists;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Text, Untyped};
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::ids::{PostId, UserId};
use crate::db::models::{CarriedOverPost, NewPost, PostChanges, PostRow};
use crate::db::pagination::{BeforeKeyset, KeysetSlice, before_keyset};
use crate::db::schema::posts;

/// The post with this id.
pub async fn find(connection: &mut AsyncPgConnection, id: &PostId) -> QueryResult<Option<PostRow>> {
    posts::table
        .find(id)
        .select(PostRow::as_select())
        .first(connection)
        .await
        .optional()
}

/// Whether a post with this id exists.
pub async fn exists_with_id(connection: &mut AsyncPgConnection, id: &PostId) -> QueryResult<bool> {
    diesel::select(exists(posts::table.find(id)))
        .get_result(connection)
        .await
}

/// The `slice` of posts, newest first, optionally only those of one author.
pub async fn list(
    connection: &mut AsyncPgConnection,
    author_id: Option<&UserId>,
    slice: &KeysetSlice,
) -> QueryResult<Vec<PostRow>> {
    let mut query = posts::table
        .select(PostRow::as_select())
        .order((posts::created_at.desc(), posts::id.desc()))
        .limit(slice.limit)
        .into_boxed();
    if let Some(author_id) = author_id {
        query = query.filter(posts::author_id.eq(author_id));
    }
    if let Some(after) = &slice.after {
        query = query.filter(before_keyset(posts::created_at, posts::id, after));
    }
    query.load(connection).await
}

/// The `slice` of each author's posts, newest first, in one round trip; the rows of all authors
/// together, in no particular order of authors.
pub async fn list_per_author(
    connection: &mut AsyncPgConnection,
    author_ids: &[UserId],
    slice: &KeysetSlice,
) -> QueryResult<Vec<PostRow>> {
    let query = EachAuthorsPosts {
        author_ids,
        after: slice
            .after
            .as_ref()
            .map(|after| before_keyset(posts::created_at, posts::id, after)),
        limit: slice.limit,
    };
    query.load(connection).await
}

/// The statement of [`list_per_author`]: a lateral join, which the query builder cannot
/// express, around the keyset condition every list shares.
struct EachAuthorsPosts<'a> {
    author_ids: &'a [UserId],
    after: Option<BeforeKeyset<posts::created_at, posts::id>>,
    limit: i64,
}

impl QueryFragment<Pg> for EachAuthorsPosts<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT page.* FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(self.author_ids)?;
        out.push_sql(
            ") AS authors(id) CROSS JOIN LATERAL (SELECT * FROM posts \
             WHERE posts.author_id = authors.id",
        );
        if let Some(after) = &self.after {
            out.push_sql(" AND ");
            after.walk_ast(out.reborrow())?;
        }
        out.push_sql(" ORDER BY posts.created_at DESC, posts.id DESC LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(") AS page");
        Ok(())
    }
}

impl Query for EachAuthorsPosts<'_> {
    type SqlType = Untyped;
}

/// Prepared and cached by its SQL text, which takes one of two forms.
impl QueryId for EachAuthorsPosts<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Inserts a post and returns it as stored.
pub async fn insert(
    connection: &mut AsyncPgConnection,
    post: &NewPost<'_>,
) -> QueryResult<PostRow> {
    diesel::insert_into(posts::table)
        .values(post)
        .returning(PostRow::as_returning())
        .get_result(connection)
        .await
}

/// The posts among `ids` that exist, in no particular order.
pub async fn find_many(
    connection: &mut AsyncPgConnection,
    ids: &[PostId],
) -> QueryResult<Vec<PostRow>> {
    posts::table
        .filter(posts::id.eq_any(ids))
        .select(PostRow::as_select())
        .load(connection)
        .await
}

/// Inserts `rows` in one statement; a taken id or a missing author fails the statement. Bind
/// parameters limit a statement to about 10,000 rows.
pub async fn insert_many(
    connection: &mut AsyncPgConnection,
    rows: &[CarriedOverPost<'_>],
) -> QueryResult<usize> {
    diesel::insert_into(posts::table)
        .values(rows)
        .execute(connection)
        .await
}

/// Writes `rows` in one statement, replacing every column of those whose id exists;
/// `updated_at` then becomes the time of the change, as for any update.
pub async fn overwrite_many(
    connection: &mut AsyncPgConnection,
    rows: &[CarriedOverPost<'_>],
) -> QueryResult<usize> {
    diesel::insert_into(posts::table)
        .values(rows)
        .on_conflict(posts::id)
        .do_update()
        .set((
            posts::title.eq(excluded(posts::title)),
            posts::content.eq(excluded(posts::content)),
            posts::author_id.eq(excluded(posts::author_id)),
            posts::created_at.eq(excluded(posts::created_at)),
        ))
        .execute(connection)
        .await
}

/// Applies `changes` to post `id` if `author_id` wrote it; `None` when no such post of theirs.
pub async fn update_by_author(
    connection: &mut AsyncPgConnection,
    id: &PostId,
    author_id: &UserId,
    changes: &PostChanges,
) -> QueryResult<Option<PostRow>> {
    diesel::update(posts::table.find(id).filter(posts::author_id.eq(author_id)))
        .set(changes)
        .returning(PostRow::as_returning())
        .get_result(connection)
        .await
        .optional()
}

/// Deletes post `id` if `author_id` wrote it; returns whether a post was deleted.
pub async fn delete_by_author(
    connection: &mut AsyncPgConnection,
    id: &PostId,
    author_id: &UserId,
) -> QueryResult<bool> {
    let deleted = diesel::delete(posts::table.find(id).filter(posts::author_id.eq(author_id)))
        .execute(connection)
        .await?;
    Ok(deleted > 0)
}
