//! The `Post` type, post queries and the mutations of posts.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::db::ids::{PostId, UserId};
use crate::db::models::PostRow;
use crate::domain::ids::ParseId as _;
use crate::domain::pagination::PageRequest;
use crate::domain::posts;
use crate::error::AppError;
use crate::graphql::context::ContextExt as _;
use crate::graphql::limits::list_cost;
use crate::graphql::loaders::UserLoader;
use crate::graphql::pagination::connection;
use crate::graphql::users::User;

/// A post written by a user.
pub(super) struct Post(pub PostRow);

impl From<PostRow> for Post {
    fn from(row: PostRow) -> Self {
        Self(row)
    }
}

/// A post written by a user.
#[Object]
impl Post {
    /// The post's opaque id.
    async fn id(&self) -> ID {
        ID::from(self.0.id.as_str())
    }

    /// The title, 1 to 200 characters.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// The body, 1 to 10,000 characters.
    async fn content(&self) -> &str {
        &self.0.content
    }

    /// Who wrote the post.
    async fn author(&self, ctx: &Context<'_>) -> Result<User, AppError> {
        let author = ctx
            .loader::<UserLoader>()?
            .load_one(self.0.author_id.clone())
            .await?;
        author.map(User::from).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "post {} names missing author {}",
                self.0.id,
                self.0.author_id
            ))
        })
    }

    /// When the post was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the post last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Queries about posts.
#[derive(Default)]
pub(super) struct PostQuery;

#[Object]
impl PostQuery {
    /// The post with this id; null when there is none.
    async fn post(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Post>, AppError> {
        let id = PostId::parse("id", &id)?;
        Ok(posts::find(&ctx.app()?.database, &id).await?.map(Post))
    }

    /// Every post, or one author's, newest first.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many posts, 0 to 100; 20 when omitted.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only this user's posts.")] author_id: Option<ID>,
    ) -> Result<Connection<String, Post>, AppError> {
        let author_id = author_id
            .map(|id| UserId::parse("authorId", &id))
            .transpose()?;
        let request = PageRequest::new(first, after.as_deref())?;
        let page = posts::page(&ctx.app()?.database, author_id.as_ref(), &request).await?;
        Ok(connection(page, request.after.is_some()))
    }

    /// The signed-in user's posts, newest first.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn my_posts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many posts, 0 to 100; 20 when omitted.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, Post>, AppError> {
        let session = ctx.session()?;
        let request = PageRequest::new(first, after.as_deref())?;
        let page = posts::page(&ctx.app()?.database, Some(&session.user.id), &request).await?;
        Ok(connection(page, request.after.is_some()))
    }
}

/// A new post.
#[derive(InputObject)]
pub(super) struct CreatePostInput {
    /// 1 to 200 characters once trimmed.
    pub title: String,
    /// 1 to 10,000 characters once trimmed.
    pub content: String,
}

/// Changes to a post; give at least one field.
#[derive(InputObject)]
pub(super) struct UpdatePostInput {
    /// A new title, 1 to 200 characters once trimmed.
    pub title: Option<String>,
    /// A new body, 1 to 10,000 characters once trimmed.
    pub content: Option<String>,
}

/// Mutations of posts.
#[derive(Default)]
pub(super) struct PostMutation;

#[Object]
impl PostMutation {
    /// Publishes a post by the signed-in user.
    async fn create_post(
        &self,
        ctx: &Context<'_>,
        input: CreatePostInput,
    ) -> Result<Post, AppError> {
        let session = ctx.session()?;
        let post = posts::create(
            &ctx.app()?.database,
            &session.user.id,
            &input.title,
            &input.content,
        )
        .await?;
        Ok(Post(post))
    }

    /// Changes a post of the signed-in user.
    async fn update_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePostInput,
    ) -> Result<Post, AppError> {
        let id = PostId::parse("id", &id)?;
        let session = ctx.session()?;
        let post = posts::update(
            &ctx.app()?.database,
            &session.user.id,
            &id,
            input.title.as_deref(),
            input.content.as_deref(),
        )
        .await?;
        Ok(Post(post))
    }

    /// Deletes a post of the signed-in user; returns its id.
    async fn delete_post(&self, ctx: &Context<'_>, id: ID) -> Result<ID, AppError> {
        let id = PostId::parse("id", &id)?;
        let session = ctx.session()?;
        let deleted = posts::delete(&ctx.app()?.database, &session.user.id, &id).await?;
        Ok(ID::from(deleted.as_str()))
    }
}
