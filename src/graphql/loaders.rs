//! DataLoaders: many lookups of one kind made during a request become one query.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use crate::db::Database;
use crate::db::ids::UserId;
use crate::db::models::{PostReadRow, UserRow};
use crate::domain::pagination::{Page, PageRequest};
use crate::domain::posts::{self, PostFields};
use crate::domain::users;
use crate::error::AppError;

/// Loads users by id, for the authors of posts read without them (those mutations return), so
/// many such authors cost one query, not one each.
pub(crate) struct UserLoader {
    database: Database,
}

impl UserLoader {
    pub(crate) fn new(database: Database) -> Self {
        Self { database }
    }
}

impl Loader<UserId> for UserLoader {
    type Value = UserRow;
    type Error = AppError;

    async fn load(&self, ids: &[UserId]) -> Result<HashMap<UserId, UserRow>, AppError> {
        let rows = users::find_many(&self.database, ids).await?;
        Ok(rows
            .into_iter()
            .map(|user| (user.id.clone(), user))
            .collect())
    }
}

/// One author's page of posts, as `User.posts(first, after)` asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AuthorPostsKey {
    /// Whose posts.
    pub(crate) author_id: UserId,
    /// Which page of them.
    pub(crate) page: PageRequest,
    /// What to read of each post; never the author, who is the user asked about.
    pub(crate) fields: PostFields,
}

/// Loads pages of posts per author, so `posts` under a list of users costs one query, not one
/// per user.
pub(crate) struct AuthorPostsLoader {
    database: Database,
}

impl AuthorPostsLoader {
    pub(crate) fn new(database: Database) -> Self {
        Self { database }
    }
}

impl Loader<AuthorPostsKey> for AuthorPostsLoader {
    type Value = Page<PostReadRow>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[AuthorPostsKey],
    ) -> Result<HashMap<AuthorPostsKey, Page<PostReadRow>>, AppError> {
        // Users listed together nearly always ask for the same page of the same fields: one query
        // per distinct page and fields.
        let mut authors_by_page: HashMap<(&PageRequest, PostFields), Vec<UserId>> = HashMap::new();
        for key in keys {
            authors_by_page
                .entry((&key.page, key.fields))
                .or_default()
                .push(key.author_id.clone());
        }
        let mut pages = HashMap::with_capacity(keys.len());
        for ((request, fields), author_ids) in authors_by_page {
            let by_author =
                posts::pages_by_authors(&self.database, &author_ids, request, fields).await?;
            pages.extend(by_author.into_iter().map(|(author_id, posts)| {
                let key = AuthorPostsKey {
                    author_id,
                    page: request.clone(),
                    fields,
                };
                (key, posts)
            }));
        }
        Ok(pages)
    }
}
