//! The `User` type, user queries and `updateMe`.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};

use crate::db::ids::UserId;
use crate::db::models::UserRow;
use crate::domain::ids::ParseId as _;
use crate::domain::pagination::PageRequest;
use crate::domain::posts::{PostFields, PostView};
use crate::domain::users::{self, Patch};
use crate::error::AppError;
use crate::graphql::context::{ContextExt as _, SignedIn};
use crate::graphql::limits::list_cost;
use crate::graphql::loaders::{AuthorPostsKey, AuthorPostsLoader};
use crate::graphql::pagination::connection;
use crate::graphql::posts::{Post, fields_of_connection};

/// Someone who signed in at least once, and whether the one asking may see their e-mail.
pub(super) struct User(pub UserRow, pub EmailAccess);

/// Whether a [`User`]'s e-mail address is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EmailAccess {
    /// As the request's session decides: to signed-in callers only.
    SignedInCallers,
    /// Always: the user is the one who just signed in with this response.
    Themselves,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self(row, EmailAccess::SignedInCallers)
    }
}

/// Someone who signed in at least once.
#[Object]
impl User {
    /// The user's id, e.g. `google_123456789`.
    async fn id(&self) -> ID {
        ID::from(self.0.id.as_str())
    }

    /// The user's e-mail address; null unless you are signed in, and for users whose provider
    /// shared none.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>, AppError> {
        let visible = match self.1 {
            EmailAccess::Themselves => true,
            EmailAccess::SignedInCallers => ctx.request()?.session.is_some(),
        };
        Ok(self.0.email.as_deref().filter(|_| visible))
    }

    /// The display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// An http or https URL of the user's picture.
    async fn picture(&self) -> Option<&str> {
        self.0.picture.as_deref()
    }

    /// Whether the identity provider vouched for the e-mail address; false without one.
    async fn verified_email(&self) -> bool {
        self.0.verified_email
    }

    /// The identity provider the user signed in with, e.g. `google`.
    async fn provider(&self) -> &str {
        &self.0.provider
    }

    /// When the user first signed in.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the profile last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The user's posts, newest first.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many posts, 0 to 100; 20 when omitted.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, Post>, AppError> {
        let request = PageRequest::new(first, after.as_deref())?;
        let after_given = request.after.is_some();
        let fields = fields_of_connection(&ctx.look_ahead());
        let key = AuthorPostsKey {
            author_id: self.0.id.clone(),
            page: request,
            fields: PostFields {
                author: false,
                ..fields
            },
        };
        let page = ctx
            .loader::<AuthorPostsLoader>()?
            .load_one(key)
            .await?
            .unwrap_or_default();
        // Every post's author is this user: no query. Shown as any author is, whatever this
        // user's own `EmailAccess`.
        let page = page.map(|post| PostView {
            post,
            author: fields.author.then(|| self.0.clone()),
        });
        Ok(connection(page, after_given))
    }
}

/// Queries about users.
#[derive(Default)]
pub(super) struct UserQuery;

#[Object]
impl UserQuery {
    /// The signed-in user; null, with an UNAUTHENTICATED error, for anonymous requests, so that
    /// the other fields of the query still answer.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>, AppError> {
        Ok(Some(User::from(ctx.session()?.user.clone())))
    }

    /// The user with this id or e-mail address (give exactly one); null when there is none.
    #[graphql(guard = "SignedIn")]
    async fn user(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        #[graphql(desc = "Matched regardless of case.")] email: Option<String>,
    ) -> Result<Option<User>, AppError> {
        let database = &ctx.app()?.database;
        let user = match (id, email) {
            (Some(id), None) => users::find(database, &UserId::parse("id", &id)?).await?,
            (None, Some(email)) => users::find_by_email(database, &email).await?,
            (None, None) | (Some(_), Some(_)) => {
                return Err(AppError::invalid_input(
                    "id",
                    "give exactly one of `id` and `email`",
                ));
            }
        };
        Ok(user.map(User::from))
    }

    /// Every user, newest first.
    #[graphql(guard = "SignedIn", complexity = "list_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many users, 0 to 100; 20 when omitted.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, User>, AppError> {
        let request = PageRequest::new(first, after.as_deref())?;
        let page = users::page(&ctx.app()?.database, &request).await?;
        Ok(connection(page, request.after.is_some()))
    }
}

/// Changes to the signed-in user's profile; omitted fields stay as they are.
#[derive(InputObject)]
pub(super) struct UpdateMeInput {
    /// A display name of 1 to 100 characters, trimmed.
    pub name: Option<String>,
    /// An http or https URL, or null to remove the picture.
    pub picture: MaybeUndefined<String>,
}

/// Mutations of user profiles.
#[derive(Default)]
pub(super) struct UserMutation;

#[Object]
impl UserMutation {
    /// Changes the signed-in user's profile.
    async fn update_me(&self, ctx: &Context<'_>, input: UpdateMeInput) -> Result<User, AppError> {
        let session = ctx.session()?;
        let picture = match &input.picture {
            MaybeUndefined::Undefined => Patch::Keep,
            MaybeUndefined::Null => Patch::Clear,
            MaybeUndefined::Value(url) => Patch::Set(url.as_str()),
        };
        let user = users::update_profile(
            &ctx.app()?.database,
            &session.user.id,
            input.name.as_deref(),
            picture,
        )
        .await?;
        Ok(User::from(user))
    }
}
