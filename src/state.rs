//! What every request needs, built once at start-up and shared by all of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::providers::Providers;
use crate::auth::tokens::TokenService;
use crate::config::{AppEnv, AuthConfig, Config, CorsOrigins, GraphqlLimits, ProxyConfig};
use crate::db::Database;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;

/// Shared application state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The PostgreSQL connection pool.
    pub database: Database,
    /// Signs and verifies access tokens.
    pub tokens: Arc<TokenService>,
    /// The deployment kind, which decides whether GraphiQL and introspection are offered.
    pub env: AppEnv,
    /// The browser origins allowed to call the API.
    pub cors_origins: CorsOrigins,
    /// What one GraphQL request may ask of the server.
    pub graphql_limits: GraphqlLimits,
    /// How long one request may take before it is answered with 503.
    pub request_timeout: Duration,
    /// The request headers those origins may send.
    pub cors_allowed_headers: Vec<String>,
    /// How many requests each client and user have left; shared by every request.
    pub rate_limits: Arc<RateLimits>,
    /// The reverse proxies whose word on a client's address is taken.
    pub proxies: ProxyConfig,
    /// The identity providers people sign in with.
    pub providers: Arc<Providers>,
    /// Sign-in settings: public URL, allowed redirects, how long a sign-in may take.
    pub auth: Arc<AuthConfig>,
    /// Whether the instance is starting, serving or stopping; it starts waiting for the
    /// database.
    pub lifecycle: Arc<Lifecycle>,
    /// What the server counts for Prometheus; this application's own, not the process's.
    pub metrics: Arc<Metrics>,
    /// `METRICS_ADDR`: the separate address `/metrics` is served on, when not on the API's.
    pub metrics_addr: Option<SocketAddr>,
}

impl AppState {
    /// Builds the state for `config`. Opens no connection yet.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        crate::auth::providers::install_tls_crypto_provider();
        let metrics = Arc::new(Metrics::new()?);
        Ok(Self {
            database: Database::connect(&config.database)?.record_waits_in(metrics.pool_wait()),
            tokens: Arc::new(TokenService::new(&config.jwt)),
            env: config.env,
            cors_origins: config.cors_origins.clone(),
            graphql_limits: config.graphql,
            request_timeout: config.request_timeout,
            cors_allowed_headers: config.cors_allowed_headers.clone(),
            rate_limits: Arc::new(RateLimits::new(&config.rate_limits)),
            proxies: config.proxies.clone(),
            providers: Arc::new(Providers::new(&config.auth)?),
            auth: Arc::new(config.auth.clone()),
            lifecycle: Arc::new(Lifecycle::default()),
            metrics,
            metrics_addr: config.metrics_addr,
        })
    }
}
