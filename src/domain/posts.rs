//! Posts: what a valid post is, that only its author may change or delete it, and reads that
//! fetch only what their reader asks for ([`PostFields`]): a post's content only when asked, its
//! author in the same statement when asked.

use std::collections::HashMap;

use uuid::Uuid;

use crate::db::ids::{PostId, UserId};
use crate::db::models::{NewPost, PostChanges, PostReadRow, PostRow, UserRow};
use crate::db::pagination::{Keyed, Keyset};
use crate::db::posts::Content;
use crate::db::{Database, posts};
use crate::domain::pagination::{Page, PageRequest};
use crate::domain::validation::trimmed_text;
use crate::error::AppError;

/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest content, in characters.
pub const MAX_CONTENT_CHARS: usize = 10_000;

/// A title as stored: trimmed, 1 to [`MAX_TITLE_CHARS`] characters.
pub fn valid_title(raw: &str) -> Result<String, AppError> {
    trimmed_text("title", raw, MAX_TITLE_CHARS)
}

/// A content as stored: trimmed, 1 to [`MAX_CONTENT_CHARS`] characters.
pub fn valid_content(raw: &str) -> Result<String, AppError> {
    trimmed_text("content", raw, MAX_CONTENT_CHARS)
}

/// A fresh post id: `post_` and a time-ordered UUID (74 random bits per millisecond).
pub fn new_post_id() -> PostId {
    PostId::from_trusted(format!("post_{}", Uuid::now_v7().simple()))
}

/// What a reader of posts needs beyond the columns every read returns (id, title, author id,
/// timestamps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PostFields {
    /// The content, the one column that can be large.
    pub content: bool,
    /// The author's user row.
    pub author: bool,
}

impl PostFields {
    /// Whether the read selects the content column.
    fn content_column(self) -> Content {
        if self.content {
            Content::Included
        } else {
            Content::Omitted
        }
    }
}

/// A post as read: the content when [`PostFields::content`] asked for it, the author when
/// [`PostFields::author`] did and the read could join it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostView {
    /// The post's columns.
    pub post: PostReadRow,
    /// Its author, when read with it.
    pub author: Option<UserRow>,
}

impl PostView {
    /// `post`, with no author read.
    fn alone(post: PostReadRow) -> Self {
        Self { post, author: None }
    }

    /// `post` with its `author`.
    fn with_author((post, author): (PostReadRow, UserRow)) -> Self {
        Self {
            post,
            author: Some(author),
        }
    }
}

impl Keyed for PostView {
    fn keyset(&self) -> Keyset {
        self.post.keyset()
    }
}

/// The post with this id, if any, read as `fields` asks, in one statement.
pub async fn find(
    database: &Database,
    id: &PostId,
    fields: PostFields,
) -> Result<Option<PostView>, AppError> {
    let mut connection = database.connection().await?;
    Ok(if fields.author {
        posts::find_with_author(&mut connection, id, fields.content_column())
            .await?
            .map(PostView::with_author)
    } else {
        posts::find(&mut connection, id, fields.content_column())
            .await?
            .map(PostView::alone)
    })
}

/// One page of posts, newest first, optionally only those of `author_id`, read as `fields`
/// asks, in one statement.
pub async fn page(
    database: &Database,
    author_id: Option<&UserId>,
    request: &PageRequest,
    fields: PostFields,
) -> Result<Page<PostView>, AppError> {
    let mut connection = database.connection().await?;
    let slice = request.slice();
    let rows = if fields.author {
        posts::list_with_authors(&mut connection, author_id, &slice, fields.content_column())
            .await?
            .into_iter()
            .map(PostView::with_author)
            .collect()
    } else {
        posts::list(&mut connection, author_id, &slice, fields.content_column())
            .await?
            .into_iter()
            .map(PostView::alone)
            .collect()
    };
    Ok(request.page_from(rows))
}

/// The page `request` of posts of each of `author_ids`, newest first, in one query.
///
/// The authors are not read: whoever names them by id has them already. Only
/// [`PostFields::content`] of `fields` counts.
pub async fn pages_by_authors(
    database: &Database,
    author_ids: &[UserId],
    request: &PageRequest,
    fields: PostFields,
) -> Result<HashMap<UserId, Page<PostReadRow>>, AppError> {
    let mut connection = database.connection().await?;
    let rows = posts::list_per_author(
        &mut connection,
        author_ids,
        &request.slice(),
        fields.content_column(),
    )
    .await?;
    let mut rows_by_author: HashMap<UserId, Vec<PostReadRow>> = author_ids
        .iter()
        .map(|id| (id.clone(), Vec::new()))
        .collect();
    // The rows of each author arrive newest first.
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

/// Publishes a post by `author_id`.
pub async fn create(
    database: &Database,
    author_id: &UserId,
    title: &str,
    content: &str,
) -> Result<PostRow, AppError> {
    let title = valid_title(title)?;
    let content = valid_content(content)?;
    let id = new_post_id();
    let mut connection = database.connection().await?;
    let post = NewPost {
        id: &id,
        title: &title,
        content: &content,
        author_id,
    };
    Ok(posts::insert(&mut connection, &post).await?)
}

/// Changes the title and/or content of post `id`, which `editor_id` must have written.
pub async fn update(
    database: &Database,
    editor_id: &UserId,
    id: &PostId,
    title: Option<&str>,
    content: Option<&str>,
) -> Result<PostRow, AppError> {
    if title.is_none() && content.is_none() {
        return Err(AppError::invalid_input(
            "input",
            "give at least one of title and content",
        ));
    }
    let changes = PostChanges {
        title: title.map(valid_title).transpose()?,
        content: content.map(valid_content).transpose()?,
    };
    let mut connection = database.connection().await?;
    match posts::update_by_author(&mut connection, id, editor_id, &changes).await? {
        Some(post) => Ok(post),
        None => Err(not_found_or_forbidden(&mut connection, id, "edit").await?),
    }
}

/// Deletes post `id`, which `editor_id` must have written; returns the id.
pub async fn delete(
    database: &Database,
    editor_id: &UserId,
    id: &PostId,
) -> Result<PostId, AppError> {
    let mut connection = database.connection().await?;
    if posts::delete_by_author(&mut connection, id, editor_id).await? {
        Ok(id.clone())
    } else {
        Err(not_found_or_forbidden(&mut connection, id, "delete").await?)
    }
}

/// Why a change restricted to the author touched no row: the post is missing, or not theirs.
async fn not_found_or_forbidden(
    connection: &mut diesel_async::AsyncPgConnection,
    id: &PostId,
    action: &str,
) -> Result<AppError, AppError> {
    Ok(if posts::exists_with_id(connection, id).await? {
        AppError::Forbidden(format!("only the author of a post may {action} it").into())
    } else {
        AppError::NotFound(format!("no post has the id {:?}", id.as_str()).into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_limited_to_200_characters() {
        assert_eq!(valid_title(&"a".repeat(200)).unwrap().len(), 200);
        assert!(valid_title(&"a".repeat(201)).is_err());
        // 200 three-byte characters are 600 bytes and still a valid title.
        assert!(valid_title(&"가".repeat(200)).is_ok());
        assert!(valid_title(&"가".repeat(201)).is_err());
    }

    #[test]
    fn post_ids_are_unique_and_prefixed() {
        let first = new_post_id();
        let second = new_post_id();
        assert!(first.as_str().starts_with("post_"));
        assert_eq!(first.as_str().len(), "post_".len() + 32);
        assert_ne!(first, second);
    }
}
