//! Queries on `posts`.

use diesel::dsl::exists;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::before_cursor;
use crate::db::models::{NewPost, PostChanges, PostRow};
use crate::db::schema::posts;
use crate::domain::pagination::{Page, PageRequest};

/// The post with this id.
pub async fn find(connection: &mut AsyncPgConnection, id: &str) -> QueryResult<Option<PostRow>> {
    posts::table
        .find(id)
        .select(PostRow::as_select())
        .first(connection)
        .await
        .optional()
}

/// Whether a post with this id exists.
pub async fn exists_with_id(connection: &mut AsyncPgConnection, id: &str) -> QueryResult<bool> {
    diesel::select(exists(posts::table.find(id)))
        .get_result(connection)
        .await
}

/// One page of posts, newest first, optionally only those of one author.
pub async fn page(
    connection: &mut AsyncPgConnection,
    author_id: Option<&str>,
    request: &PageRequest,
) -> QueryResult<Page<PostRow>> {
    let mut query = posts::table
        .select(PostRow::as_select())
        .order((posts::created_at.desc(), posts::id.desc()))
        .limit(request.fetch_limit())
        .into_boxed();
    if let Some(author_id) = author_id {
        query = query.filter(posts::author_id.eq(author_id));
    }
    if let Some(after) = &request.after {
        query = query.filter(before_cursor(posts::created_at, posts::id, after));
    }
    let rows = query.load(connection).await?;
    Ok(request.page_from(rows))
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

/// Applies `changes` to post `id` if `author_id` wrote it; `None` when no such post of theirs.
pub async fn update_by_author(
    connection: &mut AsyncPgConnection,
    id: &str,
    author_id: &str,
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
    id: &str,
    author_id: &str,
) -> QueryResult<bool> {
    let deleted = diesel::delete(posts::table.find(id).filter(posts::author_id.eq(author_id)))
        .execute(connection)
        .await?;
    Ok(deleted > 0)
}
