//! Start-up and shutdown of the HTTP server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::auth::tokens::TokenService;
use crate::config::{Config, DatabaseConfig, DatabaseUrl};
use crate::db::discovery::{self, Discovered, Discovery};
use crate::db::local_postgres::{ClusterLease, Released};
use crate::db::migrations::NewerSchema;
use crate::db::sessions::Purged;
use crate::db::{self, Database, migrations};
use crate::domain::{sessions, sign_in};
use crate::http;
use crate::lifecycle::{Lifecycle, Phase};
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::state::AppState;

/// How often each instance deletes sessions that have ended or expired, and sign-in flows that
/// expired unfinished.
const PURGE_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// How often recorded latencies are folded into their histogram buckets between scrapes.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// How often each instance forgets clients and users whose rate-limit allowance is full again.
/// Allowances refill within a minute, so memory holds the clients of about the last two.
const RATE_LIMIT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// The configuration to run with, and the private PostgreSQL it uses, if any.
///
/// With no `DATABASE_URL` outside production, the local server on 127.0.0.1:5432 is used when it
/// answers, and otherwise a private cluster in `LOCAL_POSTGRES_DIR` (see [`discovery`]). Pass
/// the lease, when there is one, to [`release_local_postgres`] at exit.
pub async fn find_database(config: Config) -> anyhow::Result<(Config, Option<ClusterLease>)> {
    let Some(folder) = config.database.local_postgres_dir.clone() else {
        return Ok((config, None));
    };
    let database = DatabaseUrl::parse(config.database.url())
        .ok()
        .and_then(|url| url.postgres.get_dbname().map(str::to_owned))
        .context("DATABASE_URL names no database")?;
    let discovered = discovery::discover(&Discovery::local(folder)).await?;
    let url = discovered.url(&database);
    let database_config = config.database.with_url(url);
    let config = Config {
        database: database_config,
        ..config
    };
    match discovered {
        Discovered::Server(_) => Ok((config, None)),
        Discovered::Cluster(lease) => Ok((config, Some(lease))),
    }
}

/// Lets go of the private PostgreSQL, which stops when no other process uses it.
pub async fn release_local_postgres(lease: ClusterLease) {
    let folder = lease.cluster().folder().to_owned();
    match tokio::task::spawn_blocking(move || lease.release()).await {
        Ok(Ok(Released::Stopped)) => {
            tracing::info!(folder = %folder.display(), "stopped the local PostgreSQL");
        }
        Ok(Ok(Released::LeftRunning)) => tracing::info!(
            folder = %folder.display(),
            "left the local PostgreSQL running for the other festapi processes using it"
        ),
        Ok(Err(error)) => tracing::warn!(
            folder = %folder.display(),
            error = format!("{error:#}"),
            "could not stop the local PostgreSQL"
        ),
        Err(error) => tracing::warn!(%error, "the task stopping the local PostgreSQL failed"),
    }
}

/// Creates the database if it is missing and applies pending migrations.
///
/// Safe for several instances starting together: see [`migrations`].
pub async fn prepare_database(config: &DatabaseConfig) -> anyhow::Result<()> {
    prepare_database_in(config, &Lifecycle::default()).await
}

/// [`prepare_database`], entering [`Phase::Migrating`] once PostgreSQL answers.
///
/// A database with migrations this build does not know stops start-up, unless
/// `FESTAPI_ALLOW_NEWER_SCHEMA` says that schema works with this build.
async fn prepare_database_in(config: &DatabaseConfig, lifecycle: &Lifecycle) -> anyhow::Result<()> {
    db::create_database_if_missing(config.url()).await?;
    lifecycle.enter(Phase::Migrating);
    let newer = if config.allow_newer_schema {
        NewerSchema::Allow
    } else {
        NewerSchema::Refuse
    };
    let migrated = migrations::run_pending_with(config.url(), newer).await?;
    if !migrated.unknown.is_empty() {
        tracing::warn!(
            unknown = ?migrated.unknown,
            "the database has migrations this build does not know; serving anyway because \
             FESTAPI_ALLOW_NEWER_SCHEMA=true says the newer schema works with this build"
        );
    }
    if migrated.applied.is_empty() {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(applied = ?migrated.applied, "applied migrations");
    }
    Ok(())
}

/// Listens at once, prepares the database (waiting for PostgreSQL as long as
/// `DATABASE_CONNECT_TIMEOUT_SECONDS` allows), then serves HTTP until SIGINT or SIGTERM.
///
/// `/healthz` answers from the start, `/readyz` only once the database is prepared. On SIGTERM
/// the instance reports itself not ready at once, goes on serving for `SHUTDOWN_GRACE_SECONDS`
/// while load balancers take it out, then stops accepting connections and gives requests in
/// flight `SHUTDOWN_TIMEOUT_SECONDS` to finish.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    if config.jwt.signing.is_development_secret() {
        tracing::warn!(
            "JWT_SECRET is not set: tokens are signed with the public development secret; \
             never expose this instance"
        );
    }
    let state = AppState::new(&config)?;
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("FESTAPI_ADDR: cannot listen on {}", config.addr))?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("METRICS_ADDR: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    // The bound addresses, which name the port the system chose for a port 0.
    let bound = |listener: &TcpListener| listener.local_addr().ok().map(tracing::field::display);
    tracing::info!(
        addr = bound(&listener),
        env = %config.env,
        metrics_addr = metrics_listener.as_ref().and_then(bound),
        "FestAPI is listening; GraphQL at /graphql once the database is ready, metrics at /metrics"
    );
    // Stopped when this function returns, whichever way.
    let mut background = JoinSet::new();
    background.spawn(keep_metrics_up(Arc::clone(&state.metrics)));
    // The metrics listener stops with the process: scrapes need no draining.
    if let Some(listener) = metrics_listener {
        let state = state.clone();
        background.spawn(async move {
            if let Err(error) = http::serve_metrics(listener, state, std::future::pending()).await {
                tracing::error!(%error, "serving metrics failed");
            }
        });
    }
    let stop_listening = Arc::new(Notify::new());
    let stopped_listening = Arc::clone(&stop_listening);
    let mut server = tokio::spawn(http::serve(listener, state.clone(), async move {
        stopped_listening.notified().await;
    }));
    let signal = shutdown_signal();
    tokio::pin!(signal);

    let lifecycle = Arc::clone(&state.lifecycle);
    let prepared = tokio::select! {
        prepared = db::startup::retry_until_reachable(config.database.connect_timeout, || {
            lifecycle.enter(Phase::WaitingForDatabase);
            prepare_database_in(&config.database, &lifecycle)
        }) => prepared,
        () = &mut signal => {
            tracing::info!("stopped before the database was ready");
            return stop(server, &stop_listening, config.shutdown_timeout).await;
        }
    };
    if let Err(error) = prepared {
        stop_listening.notify_one();
        return Err(error);
    }

    // Sign-in with a provider that could not be reached answers 503 until a retry reaches it.
    let providers = state.providers.start().await;
    background.spawn(purge_sessions(
        state.database.clone(),
        Arc::clone(&state.tokens),
    ));
    background.spawn(forget_refilled_rate_limits(Arc::clone(&state.rate_limits)));
    state.lifecycle.enter(Phase::Serving);
    tracing::info!("FestAPI is ready");
    let served = tokio::select! {
        served = &mut server => served.context("the HTTP server failed")?.context("serving HTTP"),
        () = &mut signal => {
            state.lifecycle.enter(Phase::Stopping);
            if !config.shutdown_grace.is_zero() {
                tracing::info!(
                    grace_s = config.shutdown_grace.as_secs(),
                    "not ready any more; serving on for SHUTDOWN_GRACE_SECONDS while load \
                     balancers stop sending requests"
                );
                tokio::time::sleep(config.shutdown_grace).await;
            }
            stop(server, &stop_listening, config.shutdown_timeout).await
        }
    };
    background.abort_all();
    providers.abort();
    tracing::info!("FestAPI stopped");
    served
}

/// Stops accepting connections and waits for requests in flight, for at most `timeout`; then the
/// process stops regardless.
async fn stop(
    mut server: JoinHandle<std::io::Result<()>>,
    stop_listening: &Notify,
    timeout: Duration,
) -> anyhow::Result<()> {
    tracing::info!("no longer accepting connections: finishing requests in flight");
    stop_listening.notify_one();
    match tokio::time::timeout(timeout, &mut server).await {
        Ok(served) => served
            .context("the HTTP server failed")?
            .context("serving HTTP"),
        Err(_) => {
            tracing::warn!(
                timeout_s = timeout.as_secs(),
                "requests still in flight at the end of SHUTDOWN_TIMEOUT_SECONDS; stopping anyway"
            );
            server.abort();
            Ok(())
        }
    }
}

async fn purge_sessions(database: Database, tokens: Arc<TokenService>) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        interval.tick().await;
        match sessions::purge(&database, &tokens).await {
            Ok(purged) if purged == Purged::default() => {}
            Ok(purged) => tracing::info!(
                sessions = purged.sessions,
                refresh_tokens = purged.refresh_tokens,
                "purged ended and expired sessions and refresh tokens"
            ),
            Err(error) => {
                let error = anyhow::Error::from(error);
                tracing::warn!(error = format!("{error:#}"), "purging sessions failed");
            }
        }
        match sign_in::purge_expired_flows(&database).await {
            Ok(0) => {}
            Ok(flows) => tracing::info!(flows, "purged expired sign-in flows"),
            Err(error) => {
                let error = anyhow::Error::from(error);
                tracing::warn!(error = format!("{error:#}"), "purging sign-in flows failed");
            }
        }
    }
}

async fn forget_refilled_rate_limits(rate_limits: Arc<RateLimits>) {
    let mut interval = tokio::time::interval(RATE_LIMIT_CLEANUP_INTERVAL);
    loop {
        interval.tick().await;
        rate_limits.forget_refilled();
        tracing::debug!(
            remembered = rate_limits.remembered_keys(),
            "forgot clients and users whose rate-limit allowance is full again"
        );
    }
}

/// Folds recorded latencies into their histogram buckets now and then, so that memory stays
/// bounded however rarely Prometheus scrapes.
async fn keep_metrics_up(metrics: Arc<Metrics>) {
    let mut interval = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
    loop {
        interval.tick().await;
        metrics.run_upkeep();
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (`docker stop`), letting in-flight requests finish.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
