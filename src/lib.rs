//! FestAPI: a GraphQL API for users and posts, kept in PostgreSQL.
//!
//! Requests flow one way, each layer knowing only the one below it:
//!
//! - [`http`]: the axum router, its layers and the GraphQL-over-HTTP handler;
//! - [`graphql`]: the async-graphql schema, its resolvers, loaders and error codes;
//! - [`auth`]: access and refresh tokens, and request authentication against live sessions;
//! - [`domain`]: the rules (validation, "only the author", pagination, sessions);
//! - [`db`]: the connection pool, embedded migrations, rows and queries.
//!
//! [`config`] reads the settings once at start-up, [`state`] bundles what every request needs,
//! [`rate_limit`] counts requests per client and user, [`metrics`] counts what the server does
//! for Prometheus, [`progress`] shows how far long commands have got, [`error`] holds the one
//! error type requests answer with, [`lifecycle`] tracks whether the instance is starting,
//! serving or stopping, and [`server`] wires it all together. [`backup`] dumps and restores the
//! database for operators.

pub mod auth;
pub mod backup;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod progress;
pub mod rate_limit;
pub mod server;
pub mod state;
pub mod telemetry;

pub use config::Config;
pub use error::AppError;
pub use state::AppState;
