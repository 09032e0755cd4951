//! The one error type requests answer with.
//!
//! [`AppError`]'s `Display` is always safe to show a client: internal causes travel inside the
//! [`AppError::Internal`] variant, are logged with the request id and never rendered. Each variant
//! has a stable machine-readable [`code`](AppError::code) that reaches GraphQL clients as
//! `extensions.code`. What a database failure means for a request is decided in
//! [`crate::db`], which knows PostgreSQL's errors.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::users::LOCAL_PROVIDER;

/// Something a request could not do, described for the client.
///
/// Cloning is cheap and keeps the cause whole: a DataLoader hands one failed batch to every
/// resolver waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// A new identity's e-mail address belongs to an existing account, which must be signed in
    /// to first and the identity linked to it explicitly: accounts are never joined by e-mail.
    #[error("{}", account_exists_message(provider))]
    AccountExists {
        /// A provider the existing account signs in with.
        provider: String,
    },
    /// The client has used up its request allowance for now.
    #[error("too many requests: retry in {retry_after_seconds} s")]
    RateLimited {
        /// How long the client should wait, in whole seconds and at least one.
        retry_after_seconds: u64,
    },
    /// The database is out of reach, busy, or cut a statement short; retrying may succeed.
    #[error("the service is temporarily unavailable; please retry shortly")]
    Unavailable(#[source] Arc<anyhow::Error>),
    /// Anything else: a bug or an unexpected failure. The cause is logged, never shown.
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] Arc<anyhow::Error>),
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
            Self::AccountExists { .. } => "ACCOUNT_EXISTS",
            Self::RateLimited { .. } => "RATE_LIMITED",
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
            | Self::InvalidInput { .. }
            | Self::AccountExists { .. }
            | Self::RateLimited { .. } => {}
        }
    }

    /// A validation failure on `field`.
    pub fn invalid_input(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidInput {
            field,
            message: message.into(),
        }
    }

    /// The client may send its next request after `wait`, rounded up to a whole second: a
    /// `Retry-After` of 0 would invite an immediate retry that is refused again.
    pub fn rate_limited(wait: Duration) -> Self {
        let whole_seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self::RateLimited {
            retry_after_seconds: whole_seconds.max(1),
        }
    }

    /// An unexpected failure, with its cause kept for the logs.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(Arc::new(cause.into()))
    }

    /// A failure that retrying later may not meet, with its cause kept for the logs.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable(Arc::new(cause.into()))
    }
}

/// What a person refused with ACCOUNT_EXISTS does next: sign in to the existing account with
/// `provider` and link the new one. An account made by `festapi token issue` has no provider a
/// person can sign in with, so an operator issues them a token first.
fn account_exists_message(provider: &str) -> String {
    if provider == LOCAL_PROVIDER {
        "an account with this e-mail address already exists, made by an operator with `festapi \
         token issue`: ask an operator to issue you a token with `festapi token issue --email \
         <your address>`, sign in with it, then attach this provider with `linkProvider`"
            .to_owned()
    } else {
        format!(
            "an account with this e-mail address already exists: sign in with {provider}, then \
             attach this provider with `linkProvider`"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_has_its_code() {
        assert_eq!(
            AppError::Unauthenticated("sign in".into()).code(),
            "UNAUTHENTICATED"
        );
    }

    #[test]
    fn forbidden_has_its_code() {
        assert_eq!(AppError::Forbidden("not yours".into()).code(), "FORBIDDEN");
    }

    #[test]
    fn not_found_has_its_code() {
        assert_eq!(AppError::NotFound("no post".into()).code(), "NOT_FOUND");
    }

    #[test]
    fn invalid_input_has_its_code_and_names_the_field() {
        let error = AppError::invalid_input("title", "title must not be empty");
        assert_eq!(error.code(), "BAD_USER_INPUT");
        assert!(matches!(
            error,
            AppError::InvalidInput { field: "title", .. }
        ));
        assert_eq!(error.to_string(), "title must not be empty");
    }

    #[test]
    fn account_exists_has_its_code_and_names_the_provider_to_use() {
        let error = AppError::AccountExists {
            provider: "google".into(),
        };
        assert_eq!(error.code(), "ACCOUNT_EXISTS");
        assert!(error.to_string().contains("sign in with google"), "{error}");
    }

    #[test]
    fn account_exists_for_an_operators_account_says_how_to_get_in() {
        let error = AppError::AccountExists {
            provider: LOCAL_PROVIDER.into(),
        };
        let message = error.to_string();
        assert!(message.contains("festapi token issue --email"), "{message}");
        assert!(message.contains("`linkProvider`"), "{message}");
    }

    #[test]
    fn unavailable_has_its_code_and_hides_its_cause() {
        let error = AppError::unavailable(anyhow::anyhow!("pool timed out at 10.0.0.7"));
        assert_eq!(error.code(), "SERVICE_UNAVAILABLE");
        assert!(!error.to_string().contains("10.0.0.7"));
    }

    #[test]
    fn internal_has_its_code_and_hides_its_cause() {
        let error = AppError::internal(anyhow::anyhow!("relation \"posts\" does not exist"));
        assert_eq!(error.code(), "INTERNAL_SERVER_ERROR");
        assert_eq!(error.to_string(), INTERNAL_MESSAGE);
    }

    #[test]
    fn clones_share_the_whole_cause() {
        let error = AppError::internal(
            anyhow::anyhow!("connection reset").context("database query failed"),
        );
        let AppError::Internal(cause) = error.clone() else {
            panic!("a clone changed the variant");
        };
        assert_eq!(
            format!("{cause:#}"),
            "database query failed: connection reset"
        );
        assert_eq!(cause.chain().count(), 2);
    }

    #[test]
    fn rate_limited_has_its_code_and_waits_at_least_a_whole_second() {
        let waits = [
            (Duration::ZERO, 1),
            (Duration::from_millis(1), 1),
            (Duration::from_secs(1), 1),
            (Duration::from_millis(1_001), 2),
            (Duration::from_secs(30), 30),
        ];
        for (wait, seconds) in waits {
            let error = AppError::rate_limited(wait);
            assert_eq!(error.code(), "RATE_LIMITED");
            assert_eq!(
                error.to_string(),
                format!("too many requests: retry in {seconds} s")
            );
            assert!(matches!(
                error.clone(),
                AppError::RateLimited { retry_after_seconds } if retry_after_seconds == seconds
            ));
        }
    }
}
