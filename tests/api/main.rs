//! End-to-end tests: real HTTP requests to the real router, backed by a real PostgreSQL database
//! per test. One binary, so the suite links once.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step fails the test, with the panic as its report"
)]

mod support;

mod accounts;
mod auth;
mod backup;
mod browser;
mod browser_sign_in;
mod cli;
mod conformance;
mod container;
mod database;
mod documents;
mod hardening;
mod http;
mod import;
mod input;
mod local_postgres;
mod metrics;
mod migrations;
mod pagination;
mod post_reads;
mod posts;
mod properties;
mod providers;
mod rate_limits;
mod readiness;
mod request_ids;
mod restart;
mod rollback;
mod schema;
mod seed;
mod sessions;
mod sign_in;
mod signing_keys;
mod tls;
mod users;
