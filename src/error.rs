//! The one error type requests answer with.
//!
//! [`AppError`]'s `Display` is always safe to show a client: internal causes travel inside the
//! [`AppError::Internal`] variant, are logged with the request id and never rendered. Each variant
//! has a stable machine-readable [`code`](AppError::code) that reaches GraphQL clients as
//! `extensions.code`.

use std::borrow::Cow;

/// Something a request could not do, described for the client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request needs a signed-in user, or carried a token that cannot be used.
    #[error("{0}")]
    Unauthenticated(Cow<'static, str>),
    /// The signed-in user may not do this.
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// The thing the request names does not exist.
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// An argument broke a validation rule.
    #[error("{message}")]
    InvalidInput {
        /// The input field at fault, as the client spelled it (`title`, `first`, ...).
        field: &'static str,
        /// What is wrong with it.
        message: Cow<'static, str>,
    },
    /// The database is out of reach or has no connection free in time; retrying may succeed.
    #[error("the service is temporarily unavailable; please retry shortly")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug or an unexpected failure. The cause is logged, never shown.
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

/// What clients are told of an internal failure.
pub const INTERNAL_MESSAGE: &str = "internal server error";

impl AppError {
    /// The stable code clients branch on (`extensions.code` in GraphQL responses).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::InvalidInput { .. } => "BAD_USER_INPUT",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// Logs the cause of an internal or availability failure, tagged with the request id;
    /// errors about the request itself are the client's business and are not logged.
    pub fn log_cause(&self, request_id: &str) {
        match self {
            Self::Internal(cause) => {
                tracing::error!(request_id, cause = format!("{cause:#}"), "request failed");
            }
            Self::Unavailable(cause) => {
                tracing::warn!(
                    request_id,
                    cause = format!("{cause:#}"),
                    "service unavailable"
                );
            }
            Self::Unauthenticated(_)
            | Self::Forbidden(_)
            | Self::NotFound(_)
            | Self::InvalidInput { .. } => {}
        }
    }

    /// A validation failure on `field`.
    pub fn invalid_input(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidInput {
            field,
            message: message.into(),
        }
    }

    /// An unexpected failure, with its cause kept for the logs.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }
}

/// Errors are shared when a DataLoader hands one failed batch to every waiting resolver. A copied
/// internal cause keeps its message chain for the logs, not its type.
impl Clone for AppError {
    fn clone(&self) -> Self {
        match self {
            Self::Unauthenticated(message) => Self::Unauthenticated(message.clone()),
            Self::Forbidden(message) => Self::Forbidden(message.clone()),
            Self::NotFound(message) => Self::NotFound(message.clone()),
            Self::InvalidInput { field, message } => Self::InvalidInput {
                field,
                message: message.clone(),
            },
            Self::Unavailable(cause) => Self::Unavailable(anyhow::anyhow!("{cause:#}")),
            Self::Internal(cause) => Self::Internal(anyhow::anyhow!("{cause:#}")),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database query failed"))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(anyhow::Error::new(error).context("no database connection available"))
    }
}
