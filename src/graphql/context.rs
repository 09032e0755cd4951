//! What resolvers know about the request they serve.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Guard};

use crate::auth::Session;
use crate::error::AppError;
use crate::state::AppState;

/// Per-request data: who is asking, and the id that ties logs to the response.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The signed-in session, or `None` for an anonymous request.
    pub session: Option<Session>,
    /// The request id, also sent back in the `x-request-id` header.
    pub request_id: String,
}

/// Typed access to the state and request data resolvers need.
pub(crate) trait ContextExt {
    /// The shared application state.
    fn app(&self) -> Result<&AppState, AppError>;
    /// The request's context.
    fn request(&self) -> Result<&RequestContext, AppError>;
    /// The request's DataLoader of `L`.
    fn loader<L: Send + Sync + 'static>(&self) -> Result<&DataLoader<L>, AppError>;
    /// The signed-in session; UNAUTHENTICATED for anonymous requests. Fields that only need a
    /// signed-in caller use the [`SignedIn`] guard instead.
    fn session(&self) -> Result<&Session, AppError> {
        self.request()?.session.as_ref().ok_or_else(|| {
            AppError::Unauthenticated(
                "sign in first: send `Authorization: Bearer <access token>`".into(),
            )
        })
    }
}

impl ContextExt for Context<'_> {
    fn app(&self) -> Result<&AppState, AppError> {
        self.data::<AppState>()
            .map_err(|error| AppError::internal(anyhow::anyhow!(error.message)))
    }

    fn request(&self) -> Result<&RequestContext, AppError> {
        self.data::<RequestContext>()
            .map_err(|error| AppError::internal(anyhow::anyhow!(error.message)))
    }

    fn loader<L: Send + Sync + 'static>(&self) -> Result<&DataLoader<L>, AppError> {
        self.data::<DataLoader<L>>()
            .map_err(|error| AppError::internal(anyhow::anyhow!(error.message)))
    }
}

/// Admits signed-in callers only (`#[graphql(guard = "SignedIn")]`): for fields that need a
/// signed-in caller but nothing about them. Resolvers that use the session get it, with the same
/// check, from [`ContextExt::session`].
pub(crate) struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        ctx.session()?;
        Ok(())
    }
}
