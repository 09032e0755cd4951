//! Logging: human-readable lines on a developer machine, JSON lines in production, colours only
//! on a terminal.

use std::io::IsTerminal as _;

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
        .with_ansi(colours_wanted())
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

/// Whether log lines may carry ANSI colours: only when standard error is a terminal, and never
/// with `NO_COLOR` set (<https://no-color.org>).
fn colours_wanted() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Reports the error that stops the process, in the form of its logs: a JSON line in
/// production, so log pipelines parse it like any other, and `error: …` elsewhere.
///
/// It works before logging is set up, when the configuration itself is what failed, so it
/// decides by `APP_ENV` alone.
pub fn report_fatal(error: &anyhow::Error) {
    let message = format!("{error:#}");
    let production = std::env::var("APP_ENV")
        .ok()
        .and_then(|value| value.trim().parse::<AppEnv>().ok())
        .is_some_and(AppEnv::is_production);
    if production {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "ERROR",
            "message": message,
            "target": "festapi",
        });
        eprintln!("{line}");
    } else {
        eprintln!("error: {message}");
    }
}
