//! DataLoaders: many lookups of one kind made during a request become one query.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use crate::db::Database;
use crate::db::models::UserRow;
use crate::domain::users;
use crate::error::AppError;

/// Loads users by id, so the authors of a page of posts cost one query, not one each.
pub(crate) struct UserLoader {
    database: Database,
}

impl UserLoader {
    pub(crate) fn new(database: Database) -> Self {
        Self { database }
    }
}

impl Loader<String> for UserLoader {
    type Value = UserRow;
    type Error = AppError;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, UserRow>, AppError> {
        let rows = users::find_many(&self.database, ids).await?;
        Ok(rows
            .into_iter()
            .map(|user| (user.id.clone(), user))
            .collect())
    }
}
