//! Logging: human-readable lines on a developer machine, JSON lines in production.

use tracing_subscriber::EnvFilter;

use crate::config::{AppEnv, ConfigError};

/// The log filter when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "festapi=info,tower_http=info,warn";

/// Installs the global log subscriber, filtered by `RUST_LOG` when it is set.
pub fn init(env: AppEnv) -> Result<(), ConfigError> {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty());
    let filter =
        EnvFilter::try_new(directives.as_deref().unwrap_or(DEFAULT_FILTER)).map_err(|error| {
            ConfigError {
                variable: "RUST_LOG",
                problem: format!("{error}; expected directives such as {DEFAULT_FILTER}"),
            }
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if env.is_production() {
        builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    // A subscriber installed earlier (by a test harness, say) stays in place.
    installed.ok();
    Ok(())
}
