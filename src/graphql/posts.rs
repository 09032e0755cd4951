//! The `Post` type, post queries and the mutations of posts.
//!
//! Post queries look ahead at their selection ([`Context::look_ahead`]) and read only what it
//! asks for, as [`PostFields`]: the content only when selected, the author joined in the same
//! statement when selected. A field selected under an alias or through a fragment counts as
//! selected; one that `@skip` or `@include` leaves out is gone from the document before any
//! resolver looks ahead, so it is not read.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Lookahead, Object};
use chrono::{DateTime, Utc};

use crate::db::ids::{PostId, UserId};
use crate::db::models::{PostReadRow, PostRow, UserRow};
use crate::domain::ids::ParseId as _;
use crate::domain::pagination::PageRequest;
use crate::domain::posts::{self, PostFields, PostView};
use crate::error::AppError;
use crate::graphql::context::ContextExt as _;
use crate::graphql::limits::list_cost;
use crate::graphql::loaders::UserLoader;
use crate::graphql::pagination::connection;
use crate::graphql::users::User;

/// What a selection of `Post` fields needs read.
fn fields_of_post(post: &Lookahead<'_>) -> PostFields {
    PostFields {
        content: post.field("content").exists(),
        author: post.field("author").exists(),
    }
}

/// What a selection of a `PostConnection` needs read of its posts: what its edges' nodes and
/// its nodes select.
pub(super) fn fields_of_connection(connection: &Lookahead<'_>) -> PostFields {
    let edge_nodes = fields_of_post(&connection.field("edges").field("node"));
    let nodes = fields_of_post(&connection.field("nodes"));
    PostFields {
        content: edge_nodes.content || nodes.content,
        author: edge_nodes.author || nodes.author,
    }
}

/// A post written by a user, and its author when read with it.
pub(super) struct Post {
    /// The post's columns, the content only if the selection asked for it.
    row: PostReadRow,
    /// The author, when read with the post; otherwise the [`UserLoader`] fetches them.
    author: Option<UserRow>,
}

impl From<PostView> for Post {
    fn from(view: PostView) -> Self {
        Self {
            row: view.post,
            author: view.author,
        }
    }
}

impl From<PostRow> for Post {
    fn from(row: PostRow) -> Self {
        Self {
            row: row.into(),
            author: None,
        }
    }
}

/// A post written by a user.
#[Object]
impl Post {
    /// The post's opaque id.
    async fn id(&self) -> ID {
        ID::from(self.row.id.as_str())
    }

    /// The title, 1 to 200 characters.
    async fn title(&self) -> &str {
        &self.row.title
    }

    /// The body, 1 to 10,000 characters.
    async fn content(&self) -> Result<&str, AppError> {
        // Every read looks ahead at `content`; a post read without it is a resolver that forgot
        // to.
        self.row.content.as_deref().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "post {} was read without the content its selection asks for",
                self.row.id
            ))
        })
    }

    /// Who wrote the post.
    async fn author(&self, ctx: &Context<'_>) -> Result<User, AppError> {
        if let Some(author) = &self.author {
            return Ok(User::from(author.clone()));
        }
        let author = ctx
            .loader::<UserLoader>()?
            .load_one(self.row.author_id.clone())
            .await?;
        author.map(User::from).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "post {} names missing author {}",
                self.row.id,
                self.row.author_id
            ))
        })
    }

    /// When the post was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// When the post last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
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
        let fields = fields_of_post(&ctx.look_ahead());
        let post = posts::find(&ctx.app()?.database, &id, fields).await?;
        Ok(post.map(Post::from))
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
        let fields = fields_of_connection(&ctx.look_ahead());
        let page = posts::page(&ctx.app()?.database, author_id.as_ref(), &request, fields).await?;
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
        let fields = fields_of_connection(&ctx.look_ahead());
        // The author of every post is the signed-in user, loaded with the session: no join. A
        // query changes nothing, so that row is as fresh as a join's.
        let without_author = PostFields {
            author: false,
            ..fields
        };
        let user = &session.user;
        let page = posts::page(
            &ctx.app()?.database,
            Some(&user.id),
            &request,
            without_author,
        )
        .await?
        .map(|view| PostView {
            author: fields.author.then(|| user.clone()),
            ..view
        });
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
        Ok(Post::from(post))
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
        Ok(Post::from(post))
    }

    /// Deletes a post of the signed-in user; returns its id.
    async fn delete_post(&self, ctx: &Context<'_>, id: ID) -> Result<ID, AppError> {
        let id = PostId::parse("id", &id)?;
        let session = ctx.session()?;
        let deleted = posts::delete(&ctx.app()?.database, &session.user.id, &id).await?;
        Ok(ID::from(deleted.as_str()))
    }
}
