//! Signing out.

use async_graphql::{Context, Object};

use crate::auth;
use crate::error::AppError;
use crate::graphql::context::ContextExt as _;

/// Mutations of the signed-in session.
#[derive(Default)]
pub(super) struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Revokes the access token this request was sent with, on every server instance.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool, AppError> {
        auth::logout(&ctx.app()?.database, ctx.session()?).await?;
        Ok(true)
    }
}
