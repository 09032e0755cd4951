//! Queries on `posts`.

use std::collections::HashMap;

use diesel::dsl::exists;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::before_cursor;
use crate::db::ids::{PostId, UserId};
use crate::db::models::{NewPost, PostChanges, PostRow};
use crate::db::schema::posts;
use crate::domain::pagination::{Page, PageRequest};

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

/// One page of posts, newest first, optionally only those of one author.
pub async fn page(
    connection: &mut AsyncPgConnection,
    author_id: Option<&UserId>,
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

/// The first page of posts of each of `author_ids`, newest first, in one round trip.
///
/// The query builder cannot express a lateral join, hence the SQL text; every value is bound.
pub async fn pages_by_authors(
    connection: &mut AsyncPgConnection,
    author_ids: &[UserId],
    request: &PageRequest,
) -> QueryResult<HashMap<UserId, Page<PostRow>>> {
    const FIRST_PAGES: &str = "SELECT page.* FROM unnest($1::text[]) AS authors(id) \
        CROSS JOIN LATERAL (SELECT * FROM posts WHERE posts.author_id = authors.id \
        ORDER BY posts.created_at DESC, posts.id DESC LIMIT $2) AS page";
    const LATER_PAGES: &str = "SELECT page.* FROM unnest($1::text[]) AS authors(id) \
        CROSS JOIN LATERAL (SELECT * FROM posts WHERE posts.author_id = authors.id \
        AND posts.created_at <= $3 AND (posts.created_at < $3 OR posts.id < $4) \
        ORDER BY posts.created_at DESC, posts.id DESC LIMIT $2) AS page";

    let rows: Vec<PostRow> = match &request.after {
        None => {
            diesel::sql_query(FIRST_PAGES)
                .bind::<Array<Text>, _>(author_ids)
                .bind::<BigInt, _>(request.fetch_limit())
                .load(connection)
                .await?
        }
        Some(after) => {
            diesel::sql_query(LATER_PAGES)
                .bind::<Array<Text>, _>(author_ids)
                .bind::<BigInt, _>(request.fetch_limit())
                .bind::<Timestamptz, _>(after.created_at)
                .bind::<Text, _>(&after.id)
                .load(connection)
                .await?
        }
    };

    let mut rows_by_author: HashMap<UserId, Vec<PostRow>> = author_ids
        .iter()
        .map(|id| (id.clone(), Vec::new()))
        .collect();
    for row in rows {
        if let Some(author_rows) = rows_by_author.get_mut(&row.author_id) {
            author_rows.push(row);
        }
    }
    Ok(rows_by_author
        .into_iter()
        .map(|(author_id, rows)| (author_id, request.page_from(rows)))
        .collect())
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
