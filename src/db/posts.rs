//! Queries on `posts`.
//!
//! Reads select only what their caller asks for: `content`, the one column that can be large
//! (up to 10,000 characters), only when asked ([`Content`]), and the author's row only when asked,
//! joined in the same statement (the `*_with_author*` functions). `posts.author_id` is `NOT NULL`
//! and references `users` with `ON DELETE CASCADE`, so the inner join finds every post's author,
//! and one statement sees the post and its author in one snapshot.
//!
//! Each choice is a different statement text rather than one text with the choice bound as a
//! parameter (`CASE WHEN $1 THEN content END`): a join cannot be switched on and off by a
//! parameter anyway, and the choices multiply to a handful of fixed texts per read, each
//! prepared once per connection and cached by its text like any other. A left-out column then
//! appears nowhere in the statement, so what a request read is plain in the SQL a trace shows,
//! and PostgreSQL neither reads nor checks it.

use diesel::dsl::exists;
use diesel::expression::is_aggregate;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Untyped};
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::ids::{PostId, UserId};
use crate::db::models::{CarriedOverPost, NewPost, PostChanges, PostReadRow, PostRow, UserRow};
use crate::db::pagination::{BeforeKeyset, KeysetSlice, before_keyset};
use crate::db::schema::{posts, users};

/// Whether a read of posts returns their `content`; in a select list, the column or `NULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// The content is read.
    Included,
    /// `NULL` is read in its place: [`PostReadRow::content`] is `None`.
    Omitted,
}

impl Expression for Content {
    type SqlType = Nullable<Text>;
}

impl QueryFragment<Pg> for Content {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match self {
            Self::Included => posts::content.walk_ast(out.reborrow()),
            Self::Omitted => {
                out.push_sql("NULL");
                Ok(())
            }
        }
    }
}

/// Prepared and cached by its SQL text, which takes one of two forms.
impl QueryId for Content {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<QuerySource> AppearsOnTable<QuerySource> for Content where
    posts::content: AppearsOnTable<QuerySource>
{
}

impl<QuerySource> SelectableExpression<QuerySource> for Content where
    posts::content: SelectableExpression<QuerySource>
{
}

impl ValidGrouping<()> for Content {
    type IsAggregate = is_aggregate::No;
}

/// The select list of a [`PostReadRow`].
type ReadColumns = (
    posts::id,
    posts::title,
    Content,
    posts::author_id,
    posts::created_at,
    posts::updated_at,
);

/// The select list of a [`PostReadRow`] with `content` as asked.
fn read_columns(content: Content) -> ReadColumns {
    (
        posts::id,
        posts::title,
        content,
        posts::author_id,
        posts::created_at,
        posts::updated_at,
    )
}

/// The post with this id.
pub async fn find(
    connection: &mut AsyncPgConnection,
    id: &PostId,
    content: Content,
) -> QueryResult<Option<PostReadRow>> {
    posts::table
        .find(id)
        .select(read_columns(content))
        .first(connection)
        .await
        .optional()
}

/// The post with this id and its author, in one statement.
pub async fn find_with_author(
    connection: &mut AsyncPgConnection,
    id: &PostId,
    content: Content,
) -> QueryResult<Option<(PostReadRow, UserRow)>> {
    posts::table
        .inner_join(users::table)
        .filter(posts::id.eq(id))
        .select((read_columns(content), UserRow::as_select()))
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
    content: Content,
) -> QueryResult<Vec<PostReadRow>> {
    let mut query = posts::table
        .select(read_columns(content))
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

/// [`list`], each post with its author, in one statement.
pub async fn list_with_authors(
    connection: &mut AsyncPgConnection,
    author_id: Option<&UserId>,
    slice: &KeysetSlice,
    content: Content,
) -> QueryResult<Vec<(PostReadRow, UserRow)>> {
    let mut query = posts::table
        .inner_join(users::table)
        .select((read_columns(content), UserRow::as_select()))
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
    content: Content,
) -> QueryResult<Vec<PostReadRow>> {
    let query = EachAuthorsPosts {
        author_ids,
        content,
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
    content: Content,
    after: Option<BeforeKeyset<posts::created_at, posts::id>>,
    limit: i64,
}

impl QueryFragment<Pg> for EachAuthorsPosts<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT page.* FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(self.author_ids)?;
        out.push_sql(
            ") AS authors(id) CROSS JOIN LATERAL \
             (SELECT posts.id, posts.title, ",
        );
        self.content.walk_ast(out.reborrow())?;
        out.push_sql(
            " AS content, posts.author_id, posts.created_at, posts.updated_at \
             FROM posts WHERE posts.author_id = authors.id",
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

/// Prepared and cached by its SQL text, which takes one of four forms.
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

#[cfg(test)]
mod tests {
    use diesel::debug_query;

    use super::*;

    #[test]
    fn omitted_content_is_nowhere_in_the_statement() {
        let text = |content| {
            let by_id = posts::table.find("post_a").select(read_columns(content));
            let per_author = EachAuthorsPosts {
                author_ids: &[],
                content,
                after: None,
                limit: 1,
            };
            [
                debug_query::<Pg, _>(&by_id).to_string(),
                debug_query::<Pg, _>(&per_author).to_string(),
            ]
        };
        for sql in text(Content::Omitted) {
            assert!(!sql.contains("\"content\""), "{sql}");
            assert!(!sql.contains("posts.content"), "{sql}");
        }
        for sql in text(Content::Included) {
            assert!(sql.contains("\"posts\".\"content\""), "{sql}");
        }
    }
}
