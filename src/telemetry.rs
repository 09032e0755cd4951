//! Logging: human-readable lines on a developer machine, JSON lines in production.

use tracing_subscriber::EnvFilter;

use crate::config::AppEnv;

/// The log filter when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "festapi=info,tower_http=info,warn";

/// Installs the global log subscriber. `RUST_LOG` overrides the default filter.
pub fn init(env: AppEnv) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if env.is_production() {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
    // A subscriber installed earlier (by a test harness, say) keeps working.
    drop(installed);
}
