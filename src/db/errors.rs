//! What a failed database call means for the request that made it.
//!
//! Failures a retry may not meet (a lost connection, a statement cut at `statement_timeout`, a
//! lock not granted in time, a server shutting down, a serialization conflict, an exhausted pool)
//! are [`AppError::Unavailable`]; text PostgreSQL cannot store is the client's
//! [`AppError::InvalidInput`]; anything else is [`AppError::Internal`].
//!
//! diesel-async keeps PostgreSQL's SQLSTATE only for the few causes Diesel names in
//! [`DatabaseErrorKind`]; for the others it passes on the primary message alone. Those causes are
//! therefore recognised by the start of PostgreSQL's message, which is stable across releases
//! but translated when the server's `lc_messages` is not English: there they fall back to
//! `Internal`, as every unrecognised failure does.

use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel_async::pooled_connection::PoolError as ConnectionError;
use diesel_async::pooled_connection::deadpool::PoolError;

use crate::error::AppError;

/// What a recognised PostgreSQL failure says about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// The server cannot serve the statement now; the same request may succeed later.
    Transient,
    /// The request carried text the database's encoding cannot hold.
    Unstorable,
}

/// PostgreSQL's SQLSTATE, the start of its primary message, and what that failure means.
///
/// Refusals at connect time (53300 too many connections, 57P03 starting up or shutting down)
/// never reach a statement: they arrive as pool errors, all of which are transient.
const RECOGNISED_FAILURES: &[(&str, &str, Cause)] = &[
    (
        "57014",
        "canceling statement due to statement timeout",
        Cause::Transient,
    ),
    (
        "57014",
        "canceling statement due to user request",
        Cause::Transient,
    ),
    (
        "55P03",
        "canceling statement due to lock timeout",
        Cause::Transient,
    ),
    ("55P03", "could not obtain lock on ", Cause::Transient),
    (
        "25P03",
        "terminating connection due to idle-in-transaction timeout",
        Cause::Transient,
    ),
    (
        "57P05",
        "terminating connection due to idle-session timeout",
        Cause::Transient,
    ),
    (
        "57P01",
        "terminating connection due to administrator command",
        Cause::Transient,
    ),
    (
        "57P02",
        "terminating connection because of crash of another server process",
        Cause::Transient,
    ),
    ("40001", "could not serialize access", Cause::Transient),
    ("40P01", "deadlock detected", Cause::Transient),
    (
        "22021",
        "invalid byte sequence for encoding",
        Cause::Unstorable,
    ),
    ("22P05", "character with byte sequence ", Cause::Unstorable),
    (
        "22P05",
        "unsupported Unicode escape sequence",
        Cause::Unstorable,
    ),
];

/// The meaning of a failure PostgreSQL reported with `message`, if it is one we recognise.
fn cause_of(message: &str) -> Option<Cause> {
    RECOGNISED_FAILURES
        .iter()
        .find(|(_, start, _)| message.starts_with(start))
        .map(|&(_, _, cause)| cause)
}

impl From<QueryError> for AppError {
    fn from(error: QueryError) -> Self {
        let cause = match &error {
            // No SQLSTATE at all: the connection broke or closed before an answer came back.
            QueryError::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::SerializationFailure,
                _,
            ) => Some(Cause::Transient),
            QueryError::DatabaseError(_, information) => cause_of(information.message()),
            _ => None,
        };
        let error = anyhow::Error::new(error).context("database query failed");
        match cause {
            Some(Cause::Transient) => AppError::unavailable(error),
            Some(Cause::Unstorable) => {
                tracing::warn!(cause = format!("{error:#}"), "refused unstorable text");
                AppError::invalid_input(
                    "input",
                    "the input holds characters that cannot be stored, such as NUL (U+0000)",
                )
            }
            None => AppError::internal(error),
        }
    }
}

impl From<PoolError> for AppError {
    fn from(error: PoolError) -> Self {
        match error {
            // A pool built without a runtime for its timeouts, or a failing hook of our own, is a
            // bug, not an outage.
            PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => AppError::internal(
                anyhow::Error::new(error).context("the connection pool is misconfigured"),
            ),
            // A failed checkout query means the connection went bad: same as a failed statement.
            PoolError::Backend(ConnectionError::QueryError(query_error)) => query_error.into(),
            PoolError::Timeout(_)
            | PoolError::Backend(ConnectionError::ConnectionError(_))
            | PoolError::Closed => AppError::unavailable(
                anyhow::Error::new(error).context("no database connection available"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use deadpool::managed::TimeoutType;

    use super::*;

    /// A failure as diesel-async reports one that carries an SQLSTATE it does not name.
    fn reported(message: &str) -> QueryError {
        QueryError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()))
    }

    #[test]
    fn every_recognised_failure_has_its_meaning() {
        for &(sqlstate, start, cause) in RECOGNISED_FAILURES {
            let error = AppError::from(reported(&format!("{start}, with details")));
            let expected = match cause {
                Cause::Transient => "SERVICE_UNAVAILABLE",
                Cause::Unstorable => "BAD_USER_INPUT",
            };
            assert_eq!(error.code(), expected, "{sqlstate}: {start}");
        }
    }

    #[test]
    fn statement_timeouts_are_unavailable() {
        let error = AppError::from(reported("canceling statement due to statement timeout"));
        assert!(matches!(error, AppError::Unavailable(_)), "{error:?}");
    }

    #[test]
    fn lock_timeouts_are_unavailable() {
        let error = AppError::from(reported("canceling statement due to lock timeout"));
        assert!(matches!(error, AppError::Unavailable(_)), "{error:?}");
    }

    #[test]
    fn terminated_connections_are_unavailable() {
        let error = AppError::from(reported(
            "terminating connection due to administrator command",
        ));
        assert!(matches!(error, AppError::Unavailable(_)), "{error:?}");
    }

    #[test]
    fn lost_connections_are_unavailable() {
        for kind in [
            DatabaseErrorKind::ClosedConnection,
            DatabaseErrorKind::UnableToSendCommand,
        ] {
            let error = AppError::from(QueryError::DatabaseError(
                kind,
                Box::new("connection closed".to_owned()),
            ));
            assert!(matches!(error, AppError::Unavailable(_)), "{kind:?}");
        }
    }

    #[test]
    fn serialization_failures_are_unavailable() {
        let error = AppError::from(QueryError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new("could not serialize access due to concurrent update".to_owned()),
        ));
        assert!(matches!(error, AppError::Unavailable(_)), "{error:?}");
    }

    #[test]
    fn unstorable_text_is_bad_input() {
        let error = AppError::from(reported(
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        ));
        assert!(
            matches!(error, AppError::InvalidInput { field: "input", .. }),
            "{error:?}"
        );
    }

    #[test]
    fn other_failures_are_internal_and_keep_their_cause() {
        for error in [
            reported("relation \"posts\" does not exist"),
            QueryError::DatabaseError(
                DatabaseErrorKind::CheckViolation,
                Box::new("new row violates check constraint".to_owned()),
            ),
            QueryError::NotFound,
        ] {
            let AppError::Internal(cause) = AppError::from(error) else {
                panic!("expected an internal error");
            };
            assert!(format!("{cause:#}").starts_with("database query failed: "));
        }
    }

    #[test]
    fn pool_timeouts_and_refused_connections_are_unavailable() {
        let refused = ConnectionError::ConnectionError(diesel::ConnectionError::BadConnection(
            "sorry, too many clients already".to_owned(),
        ));
        for error in [
            PoolError::Timeout(TimeoutType::Wait),
            PoolError::Timeout(TimeoutType::Create),
            PoolError::Backend(refused),
            PoolError::Closed,
        ] {
            assert!(matches!(AppError::from(error), AppError::Unavailable(_)));
        }
    }

    #[test]
    fn a_pool_without_a_runtime_is_internal() {
        assert!(matches!(
            AppError::from(PoolError::NoRuntimeSpecified),
            AppError::Internal(_)
        ));
    }
}
