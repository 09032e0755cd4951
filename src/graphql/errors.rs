//! Turns every error a request produces into one a client can act on: a message, and a stable
//! `extensions.code`.
//!
//! Resolvers return [`AppError`]; the code is read from it once the request has run, so no
//! resolver can forget one. Internal causes are logged with the request id and replaced by a generic
//! message, so neither SQL nor Rust error text can reach a client.

use async_graphql::parser::Pos;
use async_graphql::{Response, ServerError, Value};

use crate::error::{AppError, INTERNAL_MESSAGE};

/// `extensions.code` of a document that does not parse.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// `extensions.code` of a document that breaks the schema's rules or limits, names no operation
/// it has, or leaves a non-null variable without a value.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// `extensions.code` of an argument value async-graphql itself could not accept.
const BAD_USER_INPUT: &str = "BAD_USER_INPUT";

/// The outcome label of an error whose code is not one of [`KNOWN_CODES`].
pub(crate) const OTHER_ERROR: &str = "OTHER_ERROR";
/// Every code an error of this schema carries: the ones set here and each [`AppError`]'s.
const KNOWN_CODES: [&str; 10] = [
    PARSE_FAILED,
    VALIDATION_FAILED,
    BAD_USER_INPUT,
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "ACCOUNT_EXISTS",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_SERVER_ERROR",
];

/// `code` as a static string, for a metric label: one of [`KNOWN_CODES`], or [`OTHER_ERROR`].
pub(crate) fn known_code(code: &str) -> &'static str {
    KNOWN_CODES
        .into_iter()
        .find(|known| *known == code)
        .unwrap_or(OTHER_ERROR)
}

/// Whether `response` refuses its request before running any of it: the document did not parse
/// or validate, no operation could be chosen, or the variables could not be used. Such a
/// response has errors and no `data`.
pub fn was_refused(response: &Response) -> bool {
    response.errors.iter().any(|error| {
        error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .is_some_and(|code| {
                *code == Value::from(PARSE_FAILED) || *code == Value::from(VALIDATION_FAILED)
            })
    })
}

/// An error with `message` at `position` and `extensions.code` set to `code`.
pub(crate) fn coded_error(
    message: impl Into<String>,
    position: Option<Pos>,
    code: &str,
) -> ServerError {
    let mut error = ServerError::new(message, position);
    set(&mut error, "code", code);
    error
}

/// Sets `extensions.code` on every error of `response` that has none.
///
/// Errors of the document and its variables are coded where they are found; what is left
/// without a path comes from async-graphql choosing the operation after validation (an unknown
/// `operationName`, or none where the document has several), which
/// [`DocumentChecks`](crate::graphql::DocumentChecks) refuses first: the document cannot run.
/// Errors with a path come from running fields.
pub(crate) fn assign_codes(response: &mut Response, request_id: &str) {
    for error in &mut response.errors {
        if has_code(error) {
            continue;
        }
        if error.path.is_empty() && error.source.is_none() {
            set(error, "code", VALIDATION_FAILED);
        } else {
            classify(error, request_id);
        }
    }
}

/// Sets the code of an execution error, masking and logging internal ones.
fn classify(error: &mut ServerError, request_id: &str) {
    let Some(source) = error.source.clone() else {
        // async-graphql's own execution errors are argument values it could not coerce.
        set(error, "code", BAD_USER_INPUT);
        return;
    };
    let Some(app_error) = source.downcast_ref::<AppError>() else {
        tracing::error!(request_id, path = ?error.path, message = %error.message, "unexpected error type");
        mask(error, request_id);
        return;
    };
    app_error.log_cause(request_id);
    match app_error {
        AppError::InvalidInput { field, .. } => set(error, "field", field),
        AppError::AccountExists { provider } => set(error, "provider", provider),
        AppError::Internal(_) => set(error, "requestId", request_id),
        _ => {}
    }
    set(error, "code", app_error.code());
}

fn mask(error: &mut ServerError, request_id: &str) {
    error.message = INTERNAL_MESSAGE.to_owned();
    set(error, "code", "INTERNAL_SERVER_ERROR");
    set(error, "requestId", request_id);
}

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|extensions| extensions.get("code").is_some())
}

fn set(error: &mut ServerError, name: &str, value: &str) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set(name, value);
}

/// `error` with `code`, unless it already has a more specific one.
pub(crate) fn with_code(mut error: ServerError, code: &str) -> ServerError {
    if !has_code(&error) {
        set(&mut error, "code", code);
    }
    error
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_app_error_code_is_known() {
        let errors = [
            AppError::Unauthenticated("sign in".into()),
            AppError::Forbidden("not yours".into()),
            AppError::NotFound("none".into()),
            AppError::invalid_input("title", "blank"),
            AppError::AccountExists {
                provider: "google".into(),
            },
            AppError::rate_limited(Duration::from_secs(1)),
            AppError::unavailable(anyhow::anyhow!("down")),
            AppError::internal(anyhow::anyhow!("bug")),
        ];
        for error in errors {
            assert_eq!(known_code(error.code()), error.code());
        }
        assert_eq!(known_code("MADE_UP"), OTHER_ERROR);
    }
}
