//! What a failed database call means: for the request that made it, and for start-up.
//!
//! Failures a retry may not meet (a lost connection, a statement cut at `statement_timeout`, a
//! lock not granted in time, a server shutting down or starting up, too many connections, a
//! serialization conflict, an exhausted pool) are [`AppError::Unavailable`]; text PostgreSQL
//! cannot store is the client's [`AppError::InvalidInput`]; anything else is
//! [`AppError::Internal`].
//!
//! The meaning is decided by PostgreSQL's SQLSTATE wherever the driver passes it on: tokio-postgres
//! does, at connect time and on the connections start-up opens itself. On pooled connections,
//! diesel-async keeps the SQLSTATE only for the few causes Diesel names in [`DatabaseErrorKind`],
//! and for the others passes on the primary message alone; for those the SQLSTATE is recovered
//! from the start of the message, which is stable across releases but translated when the
//! server's `lc_messages` is not English: there they fall back to `Internal`, as every
//! unrecognised failure does.

use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel_async::pooled_connection::PoolError as ConnectionError;
use diesel_async::pooled_connection::deadpool::PoolError;

use super::connector::ConnectError;
use crate::error::AppError;

/// What a recognised PostgreSQL failure says about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// The server cannot serve the statement now; the same request may succeed later.
    Transient,
    /// The request carried text the database's encoding cannot hold.
    Unstorable,
}

/// What the failure with SQLSTATE `code` means, if it is one we recognise.
fn cause_of_sqlstate(code: &str) -> Option<Cause> {
    match code {
        // Class 08, connection exception, and class 53, insufficient resources (53300: too many
        // connections).
        _ if code.starts_with("08") || code.starts_with("53") => Some(Cause::Transient),
        // Statement or lock timeout, or a cancel; an idle-in-transaction or idle-session timeout.
        "57014" | "55P03" | "25P03" | "57P05" => Some(Cause::Transient),
        // Shutdown by an administrator, crash of another backend, starting up or shutting down.
        "57P01" | "57P02" | "57P03" => Some(Cause::Transient),
        // Serialization failure and deadlock: the transaction may succeed when run again.
        "40001" | "40P01" => Some(Cause::Transient),
        // Bytes not valid in the encoding, and characters it has no room for (such as NUL).
        "22021" | "22P05" => Some(Cause::Unstorable),
        _ => None,
    }
}

/// The start of PostgreSQL's primary message for the failures whose SQLSTATE diesel-async drops,
/// and that SQLSTATE.
///
/// Refusals at connect time (53300 too many connections, 57P03 starting up or shutting down,
/// 08xxx) never reach a statement: they arrive as pool errors, all of which are transient.
const SQLSTATES_BY_MESSAGE: &[(&str, &str)] = &[
    ("57014", "canceling statement due to statement timeout"),
    ("57014", "canceling statement due to user request"),
    ("55P03", "canceling statement due to lock timeout"),
    ("55P03", "could not obtain lock on "),
    (
        "25P03",
        "terminating connection due to idle-in-transaction timeout",
    ),
    (
        "57P05",
        "terminating connection due to idle-session timeout",
    ),
    (
        "57P01",
        "terminating connection due to administrator command",
    ),
    (
        "57P02",
        "terminating connection because of crash of another server process",
    ),
    ("57P03", "the database system is "),
    ("53300", "sorry, too many clients already"),
    ("40001", "could not serialize access"),
    ("40P01", "deadlock detected"),
    ("22021", "invalid byte sequence for encoding"),
    ("22P05", "character with byte sequence "),
    ("22P05", "unsupported Unicode escape sequence"),
];

/// The SQLSTATE of a failure PostgreSQL reported with `message`, if we recognise the message.
fn sqlstate_of_message(message: &str) -> Option<&'static str> {
    SQLSTATES_BY_MESSAGE
        .iter()
        .find(|(_, start)| message.starts_with(start))
        .map(|&(sqlstate, _)| sqlstate)
}

/// What a failed statement means, if we recognise its failure.
fn cause_of_query_error(error: &QueryError) -> Option<Cause> {
    match error {
        // No SQLSTATE at all: the connection broke or closed before an answer came back.
        QueryError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => Some(Cause::Transient),
        QueryError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
            cause_of_sqlstate("40001")
        }
        QueryError::DatabaseError(_, information) => {
            sqlstate_of_message(information.message()).and_then(cause_of_sqlstate)
        }
        // A transaction whose COMMIT failed and whose ROLLBACK then failed too: the connection
        // went away in between, as the COMMIT's failure says.
        QueryError::RollbackErrorOnCommit { commit_error, .. } => {
            cause_of_query_error(commit_error)
        }
        // The connection was left mid-transaction by a request that was cut short, or lost while
        // a transaction was opened or closed; the pool replaces it.
        QueryError::BrokenTransactionManager => Some(Cause::Transient),
        _ => None,
    }
}

/// Whether trying again later may get past `error`, a failure to reach, create or migrate the
/// database at start-up: PostgreSQL not (yet) listening, unreachable, starting up, shutting
/// down or out of connections. A wrong password, a role PostgreSQL does not let in, a database
/// that does not exist and cannot be created, a bad connection string or a failing migration is
/// not.
pub(super) fn retrying_may_help(error: &anyhow::Error) -> bool {
    error.chain().any(cause_may_pass)
}

/// Whether `cause`, one link of an error's chain, may be gone when tried again.
fn cause_may_pass(cause: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(refused) = cause.downcast_ref::<ConnectError>() {
        // Its message already tells the driver's error; the driver's error is its cause.
        let driver_error: &(dyn std::error::Error + 'static) = refused.driver_error();
        std::iter::successors(Some(driver_error), |error| error.source()).any(cause_may_pass)
    } else if let Some(error) = cause.downcast_ref::<tokio_postgres::Error>() {
        error.is_closed()
            || error
                .code()
                .is_some_and(|code| cause_of_sqlstate(code.code()) == Some(Cause::Transient))
    } else if let Some(error) = cause.downcast_ref::<QueryError>() {
        cause_of_query_error(error) == Some(Cause::Transient)
    } else if let Some(error) = cause.downcast_ref::<std::io::Error>() {
        // Connection refused or reset, a name that does not resolve (yet), a connect
        // timeout; but not a TLS handshake refused (a certificate not trusted, a host name
        // it does not name), which TLS libraries report as invalid data.
        !matches!(
            error.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
        )
    } else {
        false
    }
}

impl From<QueryError> for AppError {
    fn from(error: QueryError) -> Self {
        let cause = cause_of_query_error(&error);
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
    fn every_recognised_message_has_the_meaning_of_its_sqlstate() {
        for &(sqlstate, start) in SQLSTATES_BY_MESSAGE {
            let error = AppError::from(reported(&format!("{start}, with details")));
            let expected = match cause_of_sqlstate(sqlstate) {
                Some(Cause::Transient) => "SERVICE_UNAVAILABLE",
                Some(Cause::Unstorable) => "BAD_USER_INPUT",
                None => panic!("{sqlstate} has no meaning"),
            };
            assert_eq!(error.code(), expected, "{sqlstate}: {start}");
        }
    }

    #[test]
    fn outages_and_timeouts_are_transient_by_sqlstate() {
        for sqlstate in [
            "08000", "08003", "08006", "08001", "08004", "53300", "53000", "57P01", "57P02",
            "57P03", "57014", "55P03", "40001", "40P01",
        ] {
            assert_eq!(
                cause_of_sqlstate(sqlstate),
                Some(Cause::Transient),
                "{sqlstate}"
            );
        }
        // Authentication, a missing database, missing privileges, a missing table.
        for sqlstate in ["28P01", "28000", "3D000", "42501", "42P01", "23505"] {
            assert_eq!(cause_of_sqlstate(sqlstate), None, "{sqlstate}");
        }
    }

    #[test]
    fn a_commit_lost_with_its_connection_is_unavailable() {
        let error = AppError::from(QueryError::RollbackErrorOnCommit {
            rollback_error: Box::new(QueryError::BrokenTransactionManager),
            commit_error: Box::new(QueryError::DatabaseError(
                DatabaseErrorKind::ClosedConnection,
                Box::new("connection closed".to_owned()),
            )),
        });
        assert!(matches!(error, AppError::Unavailable(_)), "{error:?}");
        assert!(matches!(
            AppError::from(QueryError::BrokenTransactionManager),
            AppError::Unavailable(_)
        ));
    }

    #[test]
    fn io_failures_and_closed_connections_are_worth_retrying_at_start_up() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = anyhow::Error::new(refused).context("connecting to database \"festapi\"");
        assert!(retrying_may_help(&error));
        let closed = QueryError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand,
            Box::new("connection closed".to_owned()),
        );
        assert!(retrying_may_help(
            &anyhow::Error::new(closed).context("applying migrations")
        ));
        let starting = reported("the database system is starting up");
        assert!(retrying_may_help(&anyhow::Error::new(starting)));
    }

    #[tokio::test]
    async fn a_connection_refused_through_the_connector_is_worth_retrying() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let connector =
            super::super::connector::Connector::new(&format!("postgres://app@{silent}/festapi"))
                .unwrap();
        let Err(refused) = connector.connect().await else {
            panic!("nothing listens on {silent}");
        };
        assert!(
            refused.to_string().contains("Connection refused"),
            "{refused}"
        );
        assert!(retrying_may_help(
            &anyhow::Error::new(refused).context("opening the migration connection")
        ));
    }

    #[test]
    fn failing_migrations_and_other_errors_are_not_retried_at_start_up() {
        let failing = reported("relation \"posts\" already exists");
        assert!(!retrying_may_help(
            &anyhow::Error::new(failing).context("applying migrations")
        ));
        assert!(!retrying_may_help(&anyhow::anyhow!(
            "DATABASE_URL names no database"
        )));
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
