//! What resolvers know about the request they serve.

use std::net::IpAddr;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Guard};

use crate::auth::Session;
use crate::domain::sessions::MAX_USER_AGENT_CHARS;
use crate::domain::sign_in::Client;
use crate::error::AppError;
use crate::state::AppState;

/// Per-request data: who is asking, from where, and the id that ties logs to the response.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The signed-in session, or `None` for an anonymous request.
    pub session: Option<Session>,
    /// The request id, also sent back in the `x-request-id` header.
    pub request_id: String,
    /// The request's `User-Agent`, cut to a bounded length; kept with the sessions it starts.
    pub user_agent: Option<String>,
    /// The client's address, as the rate limits see it; kept with the sessions it starts.
    pub client_ip: IpAddr,
}

impl RequestContext {
    /// The context of a request from `client_ip` that sent `user_agent`, of which at most
    /// [`MAX_USER_AGENT_CHARS`] characters are kept: sessions keep no more.
    pub fn new(
        session: Option<Session>,
        request_id: String,
        user_agent: Option<&[u8]>,
        client_ip: IpAddr,
    ) -> Self {
        let user_agent = user_agent.map(|raw| {
            String::from_utf8_lossy(raw)
                .chars()
                .take(MAX_USER_AGENT_CHARS)
                .collect()
        });
        Self {
            session,
            request_id,
            user_agent,
            client_ip,
        }
    }

    /// The client this request comes from, as sign-in records it.
    pub(crate) fn client(&self) -> Client<'_> {
        Client {
            user_agent: self.user_agent.as_deref(),
            ip: Some(self.client_ip),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cut_to_the_bound() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let long = "가".repeat(MAX_USER_AGENT_CHARS + 1);
        let context = RequestContext::new(None, String::new(), Some(long.as_bytes()), ip);
        assert_eq!(
            context.user_agent.map(|agent| agent.chars().count()),
            Some(MAX_USER_AGENT_CHARS)
        );
        let context = RequestContext::new(None, String::new(), Some(b"curl/8\xff"), ip);
        assert_eq!(context.user_agent.as_deref(), Some("curl/8\u{fffd}"));
        let context = RequestContext::new(None, String::new(), None, ip);
        assert_eq!(context.user_agent, None);
    }
}
