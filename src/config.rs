//! Typed settings, read once from the environment at start-up.
//!
//! Every variable has a default that works on a developer machine with a local PostgreSQL, except
//! `JWT_SECRET` in production. A value that cannot be used stops start-up with a [`ConfigError`]
//! naming the variable and what is wrong with it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

mod auth;
mod database_url;
mod jwt;
mod secrets;

pub use auth::{
    APPLE_ISSUER, AppleConfig, AuthConfig, DEFAULT_FLOW_TTL_SECONDS, DEFAULT_OIDC_SCOPES,
    GOOGLE_ISSUER, KAKAO_ISSUER, NAVER_AUTHORIZE_URL, NAVER_TOKEN_URL, NAVER_USERINFO_URL,
    NaverConfig, OidcProviderConfig, ProviderName, is_loopback,
};
pub use database_url::{
    CertificateCheck, DatabaseUrl, SslMode, TlsSettings, TrustedRoots, read_root_certificates,
    with_causes,
};
pub use jwt::{
    KeyPair, MAX_KEY_ID_CHARS, MIN_JWT_SECRET_BYTES, MIN_RSA_KEY_BITS, PublicKey, SigningKey,
};
pub use secrets::FILE_SETTINGS;

/// The default `DATABASE_URL`: the local PostgreSQL server, database `festapi`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/festapi";
/// The default `LOCAL_POSTGRES_DIR`, relative to the working directory.
pub const DEFAULT_LOCAL_POSTGRES_DIR: &str = ".festapi/postgres";
/// The default `FESTAPI_ADDR`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
/// The most clock skew `JWT_LEEWAY_SECONDS` may allow for.
pub const MAX_JWT_LEEWAY_SECONDS: u64 = 30;

/// The default `REFRESH_TOKEN_TTL_SECONDS`: 14 days.
pub const DEFAULT_REFRESH_TOKEN_TTL_SECONDS: u64 = 14 * 24 * 60 * 60;

/// The default `DATABASE_CONNECT_TIMEOUT_SECONDS`.
pub const DEFAULT_DATABASE_CONNECT_TIMEOUT_SECONDS: u64 = 60;
/// The most seconds `DATABASE_CONNECT_TIMEOUT_SECONDS`, `SHUTDOWN_GRACE_SECONDS` and
/// `SHUTDOWN_TIMEOUT_SECONDS` may be: an hour.
pub const MAX_SHUTDOWN_OR_START_SECONDS: u64 = 3_600;

/// The highest `RATE_LIMIT_*` value: far above what one instance can serve.
pub const MAX_RATE_LIMIT_PER_MINUTE: u32 = 100_000_000;

/// A start-up setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with its value, in words an operator can act on.
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// Which kind of deployment this is (`APP_ENV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// A developer machine: GraphiQL, introspection and a built-in signing secret.
    Development,
    /// A real deployment: a `JWT_SECRET` is required, GraphiQL and introspection are off.
    Production,
    /// The test suite.
    Test,
}

impl AppEnv {
    /// Whether this is a production deployment.
    pub fn is_production(self) -> bool {
        self == Self::Production
    }
}

impl FromStr for AppEnv {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "development" => Ok(Self::Development),
            "production" => Ok(Self::Production),
            "test" => Ok(Self::Test),
            other => Err(format!(
                "expected one of development, production, test; got {other:?}"
            )),
        }
    }
}

impl fmt::Display for AppEnv {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Development => "development",
            Self::Production => "production",
            Self::Test => "test",
        })
    }
}

/// Everything the server needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_ENV`.
    pub env: AppEnv,
    /// `FESTAPI_ADDR`: where the HTTP server listens.
    pub addr: SocketAddr,
    /// The PostgreSQL connection settings.
    pub database: DatabaseConfig,
    /// The access- and refresh-token settings.
    pub jwt: JwtConfig,
    /// `CORS_ALLOWED_ORIGINS`: which browser origins may call the API.
    pub cors_origins: CorsOrigins,
    /// What one GraphQL request may ask of the server.
    pub graphql: GraphqlLimits,
    /// `REQUEST_TIMEOUT_MS`: how long one request may take before it is answered with 503.
    pub request_timeout: Duration,
    /// `SHUTDOWN_GRACE_SECONDS`: how long the server goes on serving after SIGTERM, reporting
    /// itself not ready, so that load balancers stop sending it requests before it stops
    /// accepting them.
    pub shutdown_grace: Duration,
    /// `SHUTDOWN_TIMEOUT_SECONDS`: how long requests in flight may run on once the server stops
    /// accepting them.
    pub shutdown_timeout: Duration,
    /// `CORS_ALLOWED_HEADERS`: which request headers those origins may send, lowercase.
    pub cors_allowed_headers: Vec<String>,
    /// How many requests a client may send.
    pub rate_limits: RateLimitConfig,
    /// Which reverse proxies may say who the client is.
    pub proxies: ProxyConfig,
    /// Sign-in through identity providers.
    pub auth: AuthConfig,
    /// `METRICS_ADDR`: a separate address to serve `/metrics` on; unset, it is served on
    /// `FESTAPI_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: where traces are
    /// exported over OTLP/HTTP; no export when neither is set.
    pub otlp_traces_endpoint: Option<url::Url>,
}

/// Bounds on what one GraphQL request may ask of the server, checked before it runs, and on the
/// documents the server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphqlLimits {
    /// `GRAPHQL_MAX_TOKENS`: the most lexical tokens a document may hold.
    pub max_tokens: usize,
    /// `GRAPHQL_MAX_NESTING`: the deepest nesting of brackets, braces and parentheses in a
    /// document, and of arrays and objects in its variables.
    pub max_nesting: usize,
    /// `GRAPHQL_MAX_COST`: the highest cost a query may have, where a list costs its selection
    /// times the number of items it asks for.
    pub max_cost: usize,
    /// `GRAPHQL_MAX_RESPONSE_BYTES`: the largest response body sent; a larger one is replaced by
    /// an error.
    pub max_response_bytes: usize,
    /// `GRAPHQL_DOCUMENT_CACHE_BYTES`: how much document text the instance keeps parsed (and
    /// knows by hash, for automatic persisted queries); 0 keeps none.
    pub document_cache_bytes: usize,
}

impl Default for GraphqlLimits {
    fn default() -> Self {
        Self {
            max_tokens: 2_000,
            max_nesting: 64,
            max_cost: 5_000,
            max_response_bytes: 5_000_000,
            document_cache_bytes: 1_000_000,
        }
    }
}

/// The default `CORS_ALLOWED_HEADERS`: the token and the JSON body, the request id, W3C trace
/// context and baggage, Sentry's trace header, and the headers Apollo Client sends.
pub const DEFAULT_CORS_ALLOWED_HEADERS: [&str; 11] = [
    "authorization",
    "content-type",
    "x-request-id",
    "traceparent",
    "tracestate",
    "baggage",
    "sentry-trace",
    "apollographql-client-name",
    "apollographql-client-version",
    "apollo-require-preflight",
    "x-apollo-operation-name",
];

/// Requests allowed per minute (`RATE_LIMIT_*`); 0 turns a limit off. A client may spend a
/// minute's allowance at once, which then refills evenly over the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `RATE_LIMIT_PER_IP_PER_MINUTE`: GraphQL requests from one client address.
    pub per_ip_per_minute: u32,
    /// `RATE_LIMIT_PER_USER_PER_MINUTE`: GraphQL requests from one signed-in user, from any
    /// address.
    pub per_user_per_minute: u32,
    /// `RATE_LIMIT_MUTATIONS_PER_MINUTE`: mutations from one client address, and from one user.
    pub mutations_per_minute: u32,
}

/// The reverse proxies in front of the server, whose word on the client's address is taken.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyConfig {
    /// `TRUSTED_PROXIES`: the networks the proxies connect from; none by default.
    pub trusted: Vec<IpNet>,
    /// `TRUSTED_PROXY_HEADER`: the header those proxies write the client's address into.
    pub header: ForwardedHeader,
}

impl ProxyConfig {
    /// Whether `address` is one of the trusted proxies.
    pub fn trusts(&self, address: IpAddr) -> bool {
        self.trusted
            .iter()
            .any(|network| network.contains(&address))
    }
}

/// A header in which proxies pass on the address they received a request from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`, the de facto standard.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.eq_ignore_ascii_case("x-forwarded-for") {
            Ok(Self::XForwardedFor)
        } else if value.eq_ignore_ascii_case("forwarded") {
            Ok(Self::Forwarded)
        } else {
            Err(
                "expected x-forwarded-for or forwarded, the header the proxies in \
                 TRUSTED_PROXIES write"
                    .to_owned(),
            )
        }
    }
}

/// The web origins browsers may call the API from (CORS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CorsOrigins {
    /// No cross-origin browser calls (the default); apps and servers are unaffected.
    #[default]
    None,
    /// Any origin (`*`). Tokens travel in a header, never in cookies, so no credentials are allowed.
    Any,
    /// Exactly these origins, e.g. `https://app.example.com`.
    List(Vec<String>),
}

/// How to reach PostgreSQL and how to share connections to it.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`, already checked to parse as a PostgreSQL connection string.
    pub url: SecretString,
    /// Outside production with no `DATABASE_URL`: `LOCAL_POSTGRES_DIR`, the folder of the
    /// private cluster used when no server answers on 127.0.0.1:5432.
    pub local_postgres_dir: Option<PathBuf>,
    /// `DATABASE_POOL_SIZE`: the most connections one server instance opens.
    pub pool_size: usize,
    /// `DATABASE_POOL_TIMEOUT_MS`: how long a request waits for a free connection.
    pub pool_timeout: Duration,
    /// `DATABASE_STATEMENT_TIMEOUT_MS`: the longest one SQL statement may run.
    pub statement_timeout: Duration,
    /// `DATABASE_CONNECT_TIMEOUT_SECONDS`: how long `serve` keeps trying to reach PostgreSQL at
    /// start-up before it gives up; 0 tries once.
    pub connect_timeout: Duration,
    /// `FESTAPI_ALLOW_NEWER_SCHEMA`: serve and migrate a database that has migrations this build
    /// does not know (a release rolled back, its schema not), because the operator knows that
    /// schema works with this build.
    pub allow_newer_schema: bool,
}

/// How access tokens are signed and checked, and how long tokens last.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `JWT_SECRET` or `JWT_PRIVATE_KEY_FILE`, with the keys tokens are checked against.
    pub signing: SigningKey,
    /// `JWT_ISSUER`: the `iss` claim written and required.
    pub issuer: String,
    /// `JWT_AUDIENCE`: the `aud` claim written and required.
    pub audience: String,
    /// `JWT_ACCESS_TTL_SECONDS`: how long an access token stays valid.
    pub access_ttl: Duration,
    /// `REFRESH_TOKEN_TTL_SECONDS`: how long a refresh token stays valid, and with it a session
    /// that nobody refreshes.
    pub refresh_ttl: Duration,
    /// `JWT_LEEWAY_SECONDS`: how far the clocks of issuer and server may disagree when `exp`,
    /// `nbf` and `iat` are checked.
    pub leeway: Duration,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which returns a variable's value when it is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let from_files = secrets::from_files(&lookup)?;
        let read = |name: &str| {
            from_files
                .get(name)
                .cloned()
                .or_else(|| lookup(name))
                .filter(|value| !value.trim().is_empty())
        };

        let env = parse_or("APP_ENV", read("APP_ENV"), AppEnv::Development)?;
        let addr = listen_address(read("FESTAPI_ADDR"))?;

        let given_url = read("DATABASE_URL");
        let local_postgres_dir = (given_url.is_none() && !env.is_production()).then(|| {
            PathBuf::from(
                read("LOCAL_POSTGRES_DIR").unwrap_or_else(|| DEFAULT_LOCAL_POSTGRES_DIR.to_owned()),
            )
        });
        let url = given_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        check_database_url(&url)?;
        let database = DatabaseConfig {
            url: SecretString::from(url),
            local_postgres_dir,
            pool_size: parse_in_range(
                "DATABASE_POOL_SIZE",
                read("DATABASE_POOL_SIZE"),
                default_pool_size(),
                1..=1000,
            )?,
            pool_timeout: milliseconds(
                "DATABASE_POOL_TIMEOUT_MS",
                read("DATABASE_POOL_TIMEOUT_MS"),
                3_000,
            )?,
            statement_timeout: milliseconds(
                "DATABASE_STATEMENT_TIMEOUT_MS",
                read("DATABASE_STATEMENT_TIMEOUT_MS"),
                5_000,
            )?,
            connect_timeout: Duration::from_secs(parse_in_range(
                "DATABASE_CONNECT_TIMEOUT_SECONDS",
                read("DATABASE_CONNECT_TIMEOUT_SECONDS"),
                DEFAULT_DATABASE_CONNECT_TIMEOUT_SECONDS,
                0..=MAX_SHUTDOWN_OR_START_SECONDS,
            )?),
            allow_newer_schema: boolean(
                "FESTAPI_ALLOW_NEWER_SCHEMA",
                read("FESTAPI_ALLOW_NEWER_SCHEMA"),
                false,
            )?,
        };

        let access_ttl = parse_in_range(
            "JWT_ACCESS_TTL_SECONDS",
            read("JWT_ACCESS_TTL_SECONDS"),
            15 * 60,
            60..=24 * 60 * 60,
        )?;
        let jwt = JwtConfig {
            signing: jwt::signing_key(env, &read)?,
            issuer: read("JWT_ISSUER").unwrap_or_else(|| "festapi".to_owned()),
            audience: read("JWT_AUDIENCE").unwrap_or_else(|| "festapi".to_owned()),
            access_ttl: Duration::from_secs(access_ttl),
            refresh_ttl: refresh_token_ttl(read("REFRESH_TOKEN_TTL_SECONDS"), access_ttl)?,
            leeway: Duration::from_secs(parse_in_range(
                "JWT_LEEWAY_SECONDS",
                read("JWT_LEEWAY_SECONDS"),
                0,
                0..=MAX_JWT_LEEWAY_SECONDS,
            )?),
        };

        let defaults = GraphqlLimits::default();
        let graphql = GraphqlLimits {
            max_tokens: parse_in_range(
                "GRAPHQL_MAX_TOKENS",
                read("GRAPHQL_MAX_TOKENS"),
                defaults.max_tokens,
                100..=100_000,
            )?,
            max_nesting: parse_in_range(
                "GRAPHQL_MAX_NESTING",
                read("GRAPHQL_MAX_NESTING"),
                defaults.max_nesting,
                8..=128,
            )?,
            max_cost: parse_in_range(
                "GRAPHQL_MAX_COST",
                read("GRAPHQL_MAX_COST"),
                defaults.max_cost,
                1..=10_000_000,
            )?,
            max_response_bytes: parse_in_range(
                "GRAPHQL_MAX_RESPONSE_BYTES",
                read("GRAPHQL_MAX_RESPONSE_BYTES"),
                defaults.max_response_bytes,
                1_000..=1_000_000_000,
            )?,
            document_cache_bytes: parse_in_range(
                "GRAPHQL_DOCUMENT_CACHE_BYTES",
                read("GRAPHQL_DOCUMENT_CACHE_BYTES"),
                defaults.document_cache_bytes,
                0..=1_000_000_000,
            )?,
        };

        let per_minute = |variable: &'static str, default: u32| {
            parse_in_range(
                variable,
                read(variable),
                default,
                0..=MAX_RATE_LIMIT_PER_MINUTE,
            )
        };
        let rate_limits = RateLimitConfig {
            per_ip_per_minute: per_minute("RATE_LIMIT_PER_IP_PER_MINUTE", 600)?,
            per_user_per_minute: per_minute("RATE_LIMIT_PER_USER_PER_MINUTE", 300)?,
            mutations_per_minute: per_minute("RATE_LIMIT_MUTATIONS_PER_MINUTE", 60)?,
        };
        let proxies = ProxyConfig {
            trusted: trusted_proxies(read("TRUSTED_PROXIES"))?,
            header: parse_or(
                "TRUSTED_PROXY_HEADER",
                read("TRUSTED_PROXY_HEADER"),
                ForwardedHeader::default(),
            )?,
        };

        Ok(Self {
            env,
            addr,
            database,
            jwt,
            cors_origins: cors_origins(read("CORS_ALLOWED_ORIGINS"))?,
            graphql,
            request_timeout: milliseconds(
                "REQUEST_TIMEOUT_MS",
                read("REQUEST_TIMEOUT_MS"),
                10_000,
            )?,
            shutdown_grace: Duration::from_secs(parse_in_range(
                "SHUTDOWN_GRACE_SECONDS",
                read("SHUTDOWN_GRACE_SECONDS"),
                default_shutdown_grace_seconds(env),
                0..=MAX_SHUTDOWN_OR_START_SECONDS,
            )?),
            shutdown_timeout: Duration::from_secs(parse_in_range(
                "SHUTDOWN_TIMEOUT_SECONDS",
                read("SHUTDOWN_TIMEOUT_SECONDS"),
                20,
                0..=MAX_SHUTDOWN_OR_START_SECONDS,
            )?),
            cors_allowed_headers: cors_allowed_headers(read("CORS_ALLOWED_HEADERS"))?,
            rate_limits,
            proxies,
            auth: auth::auth_config(&read)?,
            metrics_addr: metrics_addr(read("METRICS_ADDR"), addr)?,
            otlp_traces_endpoint: otlp_traces_endpoint(&read)?,
        })
    }
}

/// The default `SHUTDOWN_GRACE_SECONDS`: long enough in production for load balancers to see
/// `/readyz` fail (a few probe periods); none elsewhere, so Ctrl-C stops a developer's server at
/// once.
fn default_shutdown_grace_seconds(env: AppEnv) -> u64 {
    if env.is_production() { 5 } else { 0 }
}

/// `METRICS_ADDR`: an address and port other than `FESTAPI_ADDR`'s.
fn metrics_addr(
    value: Option<String>,
    api_addr: SocketAddr,
) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let addr: SocketAddr = value.trim().parse().map_err(|_| {
        ConfigError::new(
            "METRICS_ADDR",
            format!("expected an address and port such as 127.0.0.1:9100; got {value:?}"),
        )
    })?;
    if addr == api_addr && addr.port() != 0 {
        return Err(ConfigError::new(
            "METRICS_ADDR",
            format!("{addr} is FESTAPI_ADDR too: leave METRICS_ADDR unset to serve /metrics there"),
        ));
    }
    Ok(Some(addr))
}

/// Reads `FESTAPI_ADDR` alone, exactly as [`Config::from_env`] does, for a command that needs
/// only the address the server listens on.
pub fn listen_address_from_env() -> Result<SocketAddr, ConfigError> {
    listen_address(
        std::env::var("FESTAPI_ADDR")
            .ok()
            .filter(|value| !value.trim().is_empty()),
    )
}

fn listen_address(value: Option<String>) -> Result<SocketAddr, ConfigError> {
    parse_or(
        "FESTAPI_ADDR",
        value,
        SocketAddr::from(([127, 0, 0, 1], 8000)),
    )
}

/// Two connections per logical core, the deadpool default, and never fewer than four.
fn default_pool_size() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |cores| cores.get() * 2)
        .max(4)
}

fn parse_or<T>(variable: &'static str, value: Option<String>, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match value {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|error| ConfigError::new(variable, format!("{error} (got {value:?})"))),
    }
}

/// A yes-or-no setting: `true` or `false` (any case; `1` and `0` too), `default` when unset.
fn boolean(
    variable: &'static str,
    value: Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::new(
            variable,
            format!("expected true or false (got {value:?})"),
        )),
    }
}

fn parse_in_range<T>(
    variable: &'static str,
    value: Option<String>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(value) = value else {
        return Ok(default);
    };
    let problem = || {
        format!(
            "expected a whole number from {} to {}, got {value:?}",
            range.start(),
            range.end()
        )
    };
    let number: T = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(variable, problem()))?;
    if range.contains(&number) {
        Ok(number)
    } else {
        Err(ConfigError::new(variable, problem()))
    }
}

fn milliseconds(
    variable: &'static str,
    value: Option<String>,
    default: u64,
) -> Result<Duration, ConfigError> {
    parse_in_range(variable, value, default, 1..=600_000).map(Duration::from_millis)
}

fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let problem = |detail: &str| {
        ConfigError::new(
            "DATABASE_URL",
            format!("{detail}; expected a URL such as {DEFAULT_DATABASE_URL}"),
        )
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(problem("not a postgres:// URL"));
    }
    let parsed =
        DatabaseUrl::parse(url).map_err(|error| ConfigError::new("DATABASE_URL", error))?;
    if parsed.postgres.get_dbname().is_none_or(str::is_empty) {
        return Err(problem("names no database"));
    }
    Ok(())
}

fn cors_origins(value: Option<String>) -> Result<CorsOrigins, ConfigError> {
    let Some(value) = value else {
        return Ok(CorsOrigins::None);
    };
    if value.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let origins: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(str::to_owned)
        .collect();
    for origin in &origins {
        let scheme_and_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let well_formed = scheme_and_host.is_some_and(|host| {
            !host.is_empty() && !host.contains('/') && host.is_ascii() && !host.contains(' ')
        });
        if !well_formed {
            return Err(ConfigError::new(
                "CORS_ALLOWED_ORIGINS",
                format!(
                    "{origin:?} is not an origin: expected a comma-separated list such as \
                     https://app.example.com,http://localhost:3000 (no path, no trailing slash), or *"
                ),
            ));
        }
    }
    Ok(CorsOrigins::List(origins))
}

fn cors_allowed_headers(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::from(DEFAULT_CORS_ALLOWED_HEADERS.map(str::to_owned)));
    };
    let problem = |detail: &str| {
        ConfigError::new(
            "CORS_ALLOWED_HEADERS",
            format!("{detail}; expected a comma-separated list such as authorization,content-type"),
        )
    };
    let names: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if names.is_empty() {
        return Err(problem("names no header"));
    }
    for name in &names {
        if name == "*" {
            // Browsers never let a wildcard cover Authorization, the header the API needs most.
            return Err(problem(
                "* is not accepted (it would not cover Authorization)",
            ));
        }
        if !is_token(name) {
            return Err(problem(&format!("{name:?} is not a header name")));
        }
    }
    Ok(names)
}

/// Whether `text` is a token (RFC 9110 §5.6.2), the grammar of header field names.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// `TRUSTED_PROXIES`: comma-separated networks (`10.0.0.0/8`) or single addresses (`10.1.2.3`).
/// A network with host bits set (`10.0.0.1/8`) is refused: it is either a typo for a single
/// address or trusts far more than was meant.
fn trusted_proxies(value: Option<String>) -> Result<Vec<IpNet>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let problem = |detail: String| {
        ConfigError::new(
            "TRUSTED_PROXIES",
            format!("{detail}; expected comma-separated networks such as 10.0.0.0/8,127.0.0.1/32"),
        )
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let network = match entry.parse::<IpAddr>() {
                Ok(address) => IpNet::from(address),
                Err(_) => entry
                    .parse::<IpNet>()
                    .map_err(|_| problem(format!("{entry:?} is not a network or an address")))?,
            };
            if network.trunc() != network {
                return Err(problem(format!(
                    "{entry:?} has host bits set: write {} for the network or {} for one address",
                    network.trunc(),
                    IpNet::from(network.addr())
                )));
            }
            Ok(network)
        })
        .collect()
}

/// The OTLP endpoint traces go to, when one is set: an http or https URL, and the OTLP/HTTP
/// protobuf protocol, the only one FestAPI speaks.
fn otlp_traces_endpoint(
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<url::Url>, ConfigError> {
    if let Some(protocol) = read("OTEL_EXPORTER_OTLP_PROTOCOL")
        && protocol.trim() != "http/protobuf"
    {
        return Err(ConfigError::new(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            format!("traces are exported as http/protobuf only, got {protocol:?}"),
        ));
    }
    for variable in [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        let Some(value) = read(variable) else {
            continue;
        };
        let endpoint = url::Url::parse(value.trim())
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                ConfigError::new(
                    variable,
                    format!(
                        "must be an http or https URL such as http://127.0.0.1:4318, got {value:?}"
                    ),
                )
            })?;
        return Ok(Some(endpoint));
    }
    Ok(None)
}

/// `REFRESH_TOKEN_TTL_SECONDS`: an hour to a year, and never shorter than an access token
/// lives, or sessions would expire under tokens still in use.
fn refresh_token_ttl(value: Option<String>, access_ttl: u64) -> Result<Duration, ConfigError> {
    const VARIABLE: &str = "REFRESH_TOKEN_TTL_SECONDS";
    let seconds = parse_in_range(
        VARIABLE,
        value,
        DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
        60 * 60..=365 * 24 * 60 * 60,
    )?;
    if seconds < access_ttl {
        return Err(ConfigError::new(
            VARIABLE,
            format!(
                "must be at least JWT_ACCESS_TTL_SECONDS ({access_ttl}), got {seconds}: a \
                 session may not expire before its access tokens"
            ),
        ));
    }
    Ok(Duration::from_secs(seconds))
}

impl DatabaseConfig {
    /// The connection string, for the code that connects.
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// The same settings, connecting to `url` instead.
    #[must_use]
    pub fn with_url(self, url: String) -> Self {
        Self {
            url: SecretString::from(url),
            local_postgres_dir: None,
            ..self
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(super) fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    /// A file holding what a test wrote, removed when dropped.
    pub(crate) struct TempFile(std::path::PathBuf);

    impl TempFile {
        pub(crate) fn new(contents: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("festapi-config-{}", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }

        pub(crate) fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn defaults_work_without_any_variable() {
        let config = config_from(&[]).unwrap();
        assert_eq!(config.env, AppEnv::Development);
        assert_eq!(config.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(config.database.url(), DEFAULT_DATABASE_URL);
        assert!(config.database.pool_size >= 4);
        assert_eq!(config.database.pool_timeout, Duration::from_secs(3));
        assert!(config.jwt.signing.is_development_secret());
        assert_eq!(config.jwt.access_ttl, Duration::from_secs(900));
        assert_eq!(config.graphql, GraphqlLimits::default());
        assert_eq!(config.request_timeout, Duration::from_secs(10));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(20));
        assert_eq!(config.shutdown_grace, Duration::ZERO);
        assert_eq!(config.database.connect_timeout, Duration::from_secs(60));
        assert_eq!(config.jwt.leeway, Duration::ZERO);
        assert_eq!(config.jwt.refresh_ttl, Duration::from_secs(1_209_600));
        assert_eq!(
            config.database.local_postgres_dir,
            Some(PathBuf::from(DEFAULT_LOCAL_POSTGRES_DIR))
        );
    }

    #[test]
    fn a_private_postgres_is_an_option_only_without_database_url_outside_production() {
        let folder =
            |pairs: &[(&str, &str)]| config_from(pairs).unwrap().database.local_postgres_dir;
        assert_eq!(
            folder(&[("LOCAL_POSTGRES_DIR", "/var/tmp/festapi-pg")]),
            Some(PathBuf::from("/var/tmp/festapi-pg"))
        );
        assert_eq!(
            folder(&[("DATABASE_URL", "postgres://app@db.internal/festapi")]),
            None
        );
        assert_eq!(
            folder(&[("APP_ENV", "production"), ("JWT_SECRET", &"s".repeat(48))]),
            None
        );
    }

    #[test]
    fn refresh_token_ttl_is_an_hour_to_a_year_and_outlives_access_tokens() {
        for (seconds, expected) in [("3600", 3_600), ("31536000", 31_536_000)] {
            let config = config_from(&[("REFRESH_TOKEN_TTL_SECONDS", seconds)]).unwrap();
            assert_eq!(config.jwt.refresh_ttl, Duration::from_secs(expected));
        }
        let error = config_from(&[
            ("JWT_ACCESS_TTL_SECONDS", "86400"),
            ("REFRESH_TOKEN_TTL_SECONDS", "3600"),
        ])
        .unwrap_err();
        assert_eq!(error.variable, "REFRESH_TOKEN_TTL_SECONDS");
        assert!(
            error
                .problem
                .contains("at least JWT_ACCESS_TTL_SECONDS (86400), got 3600"),
            "{error}"
        );
    }

    #[test]
    fn production_requires_a_jwt_secret() {
        let error = config_from(&[("APP_ENV", "production")]).unwrap_err();
        assert_eq!(error.variable, "JWT_SECRET");
        assert!(error.to_string().contains("openssl rand"), "{error}");
    }

    #[test]
    fn short_jwt_secret_is_refused_in_every_environment() {
        for env in ["development", "production", "test"] {
            let error =
                config_from(&[("APP_ENV", env), ("JWT_SECRET", &"x".repeat(31))]).unwrap_err();
            assert_eq!(error.variable, "JWT_SECRET");
            assert!(
                error.problem.contains("at least 32 bytes, got 31"),
                "{error}"
            );
        }
        let config =
            config_from(&[("APP_ENV", "production"), ("JWT_SECRET", &"x".repeat(32))]).unwrap();
        assert!(!config.jwt.signing.is_development_secret());
    }

    #[test]
    fn traces_are_exported_only_to_a_configured_http_endpoint() {
        assert_eq!(config_from(&[]).unwrap().otlp_traces_endpoint, None);
        let config = config_from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]);
        assert_eq!(
            config.unwrap().otlp_traces_endpoint.unwrap().as_str(),
            "http://127.0.0.1:4318/"
        );
        let config = config_from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://traces.example.com/v1/traces",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(
            config.unwrap().otlp_traces_endpoint.unwrap().as_str(),
            "https://traces.example.com/v1/traces"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("DATABASE_POOL_SIZE", "ten"),
            ("DATABASE_POOL_SIZE", "0"),
            ("DATABASE_POOL_TIMEOUT_MS", "-5"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "soon"),
            ("DATABASE_URL", "mysql://localhost/festapi"),
            (
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:notaport/festapi",
            ),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432"),
            (
                "DATABASE_URL",
                "postgres://db.example.com/festapi?sslmode=verify",
            ),
            (
                "DATABASE_URL",
                "postgres://db.example.com/festapi?sslmode=verify-full&sslrootcert=/nonexistent.pem",
            ),
            ("FESTAPI_ADDR", "localhost"),
            ("APP_ENV", "staging"),
            ("JWT_ACCESS_TTL_SECONDS", "5"),
            ("GRAPHQL_MAX_TOKENS", "10"),
            ("GRAPHQL_MAX_NESTING", "1000"),
            ("GRAPHQL_MAX_COST", "0"),
            ("GRAPHQL_MAX_RESPONSE_BYTES", "5MB"),
            ("GRAPHQL_DOCUMENT_CACHE_BYTES", "-1"),
            ("GRAPHQL_DOCUMENT_CACHE_BYTES", "1MB"),
            ("REQUEST_TIMEOUT_MS", "0"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "-1"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "3601"),
            ("SHUTDOWN_GRACE_SECONDS", "-1"),
            ("SHUTDOWN_GRACE_SECONDS", "3601"),
            ("SHUTDOWN_GRACE_SECONDS", "5s"),
            ("DATABASE_CONNECT_TIMEOUT_SECONDS", "-1"),
            ("DATABASE_CONNECT_TIMEOUT_SECONDS", "3601"),
            ("DATABASE_CONNECT_TIMEOUT_SECONDS", "a minute"),
            ("JWT_LEEWAY_SECONDS", "31"),
            ("JWT_LEEWAY_SECONDS", "-1"),
            ("REFRESH_TOKEN_TTL_SECONDS", "3599"),
            ("REFRESH_TOKEN_TTL_SECONDS", "31536001"),
            ("REFRESH_TOKEN_TTL_SECONDS", "two weeks"),
            ("RATE_LIMIT_PER_IP_PER_MINUTE", "-1"),
            ("RATE_LIMIT_PER_USER_PER_MINUTE", "many"),
            ("RATE_LIMIT_MUTATIONS_PER_MINUTE", "100000001"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "grpc://collector:4317",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("TRUSTED_PROXIES", "10.0.0.1/8"),
            ("TRUSTED_PROXIES", "proxy.internal"),
            ("TRUSTED_PROXY_HEADER", "x-real-ip"),
            ("METRICS_ADDR", "localhost:9100"),
            ("METRICS_ADDR", "127.0.0.1"),
            ("METRICS_ADDR", "127.0.0.1:8000"),
        ];
        for (variable, value) in cases {
            let error = config_from(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{variable}={value}: {error}");
            assert!(
                error.to_string().starts_with(&format!("{variable}: ")),
                "{error}"
            );
        }
    }

    #[test]
    fn shutdown_grace_defaults_to_five_seconds_in_production_only() {
        let secret = "x".repeat(32);
        let production = config_from(&[("APP_ENV", "production"), ("JWT_SECRET", &secret)]);
        assert_eq!(production.unwrap().shutdown_grace, Duration::from_secs(5));
        for env in ["development", "test"] {
            let config = config_from(&[("APP_ENV", env)]).unwrap();
            assert_eq!(config.shutdown_grace, Duration::ZERO, "{env}");
        }
        let chosen = config_from(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", &secret),
            ("SHUTDOWN_GRACE_SECONDS", "0"),
        ]);
        assert_eq!(chosen.unwrap().shutdown_grace, Duration::ZERO);
    }

    #[test]
    fn the_database_connect_timeout_may_be_zero_to_an_hour() {
        for (seconds, expected) in [("0", 0), ("3600", 3_600)] {
            let config = config_from(&[("DATABASE_CONNECT_TIMEOUT_SECONDS", seconds)]).unwrap();
            assert_eq!(
                config.database.connect_timeout,
                Duration::from_secs(expected)
            );
        }
        let error = config_from(&[("DATABASE_CONNECT_TIMEOUT_SECONDS", "3601")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "DATABASE_CONNECT_TIMEOUT_SECONDS: expected a whole number from 0 to 3600, got \"3601\""
        );
    }

    #[test]
    fn a_newer_schema_is_refused_unless_allowed_with_a_boolean() {
        assert!(!config_from(&[]).unwrap().database.allow_newer_schema);
        for (value, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("0", false),
        ] {
            let config = config_from(&[("FESTAPI_ALLOW_NEWER_SCHEMA", value)]).unwrap();
            assert_eq!(config.database.allow_newer_schema, expected, "{value}");
        }
        let error = config_from(&[("FESTAPI_ALLOW_NEWER_SCHEMA", "yes please")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "FESTAPI_ALLOW_NEWER_SCHEMA: expected true or false (got \"yes please\")"
        );
    }

    #[test]
    fn metrics_are_served_on_the_api_port_unless_an_address_is_given() {
        assert_eq!(config_from(&[]).unwrap().metrics_addr, None);
        let config = config_from(&[("METRICS_ADDR", "0.0.0.0:9100")]).unwrap();
        assert_eq!(
            config.metrics_addr,
            Some(SocketAddr::from(([0, 0, 0, 0], 9100)))
        );
    }

    #[test]
    fn jwt_leeway_may_be_zero_to_thirty_seconds() {
        for seconds in ["0", "30"] {
            let config = config_from(&[("JWT_LEEWAY_SECONDS", seconds)]).unwrap();
            assert_eq!(config.jwt.leeway.as_secs().to_string(), seconds);
        }
        let error = config_from(&[("JWT_LEEWAY_SECONDS", "31")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "JWT_LEEWAY_SECONDS: expected a whole number from 0 to 30, got \"31\""
        );
    }

    #[test]
    fn rate_limits_default_to_production_values_and_zero_turns_them_off() {
        assert_eq!(
            config_from(&[]).unwrap().rate_limits,
            RateLimitConfig {
                per_ip_per_minute: 600,
                per_user_per_minute: 300,
                mutations_per_minute: 60,
            }
        );
        let off = config_from(&[
            ("RATE_LIMIT_PER_IP_PER_MINUTE", "0"),
            ("RATE_LIMIT_PER_USER_PER_MINUTE", "0"),
            ("RATE_LIMIT_MUTATIONS_PER_MINUTE", "0"),
        ])
        .unwrap();
        assert_eq!(off.rate_limits.per_ip_per_minute, 0);
        assert_eq!(off.rate_limits.per_user_per_minute, 0);
        assert_eq!(off.rate_limits.mutations_per_minute, 0);
    }

    #[test]
    fn trusted_proxies_are_networks_or_addresses() {
        assert_eq!(config_from(&[]).unwrap().proxies, ProxyConfig::default());
        let proxies = config_from(&[
            (
                "TRUSTED_PROXIES",
                "10.0.0.0/8, 127.0.0.1/32,192.168.1.7,fd00::/8",
            ),
            ("TRUSTED_PROXY_HEADER", "Forwarded"),
        ])
        .unwrap()
        .proxies;
        assert_eq!(proxies.trusted.len(), 4);
        assert_eq!(proxies.header, ForwardedHeader::Forwarded);
        for trusted in ["10.200.0.1", "127.0.0.1", "192.168.1.7", "fd12::1"] {
            assert!(proxies.trusts(trusted.parse().unwrap()), "{trusted}");
        }
        for untrusted in ["11.0.0.1", "127.0.0.2", "192.168.1.8", "fe80::1"] {
            assert!(!proxies.trusts(untrusted.parse().unwrap()), "{untrusted}");
        }

        let error = config_from(&[("TRUSTED_PROXIES", "10.0.0.1/8")]).unwrap_err();
        assert!(
            error
                .problem
                .contains("write 10.0.0.0/8 for the network or 10.0.0.1/32"),
            "{error}"
        );
    }

    #[test]
    fn cors_origins_are_a_list_or_a_star() {
        assert_eq!(config_from(&[]).unwrap().cors_origins, CorsOrigins::None);
        assert_eq!(
            config_from(&[("CORS_ALLOWED_ORIGINS", "*")])
                .unwrap()
                .cors_origins,
            CorsOrigins::Any
        );
        let list = config_from(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:3000",
        )])
        .unwrap();
        assert_eq!(
            list.cors_origins,
            CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into()
            ])
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "ftp://x",
            "https://",
        ] {
            let error = config_from(&[("CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert_eq!(error.variable, "CORS_ALLOWED_ORIGINS", "{bad}");
        }
    }

    #[test]
    fn cors_allowed_headers_default_to_tracing_and_apollo_headers() {
        let headers = config_from(&[]).unwrap().cors_allowed_headers;
        for expected in [
            "authorization",
            "content-type",
            "traceparent",
            "baggage",
            "sentry-trace",
            "apollographql-client-name",
            "apollo-require-preflight",
        ] {
            assert!(headers.iter().any(|name| name == expected), "{expected}");
        }
    }

    #[test]
    fn cors_allowed_headers_are_a_list_of_header_names() {
        let config = config_from(&[(
            "CORS_ALLOWED_HEADERS",
            " Authorization, content-type,,X-Tenant-Id ",
        )])
        .unwrap();
        assert_eq!(
            config.cors_allowed_headers,
            ["authorization", "content-type", "x-tenant-id"]
        );
        for bad in [
            "x tenant",
            "x-tenant:1",
            "café",
            "*",
            "authorization, *",
            ", ,",
        ] {
            let error = config_from(&[("CORS_ALLOWED_HEADERS", bad)]).unwrap_err();
            assert_eq!(error.variable, "CORS_ALLOWED_HEADERS", "{bad}");
            assert!(
                error.to_string().starts_with("CORS_ALLOWED_HEADERS: "),
                "{error}"
            );
        }
    }

    #[test]
    fn blank_values_fall_back_to_defaults() {
        let config = config_from(&[("DATABASE_URL", " "), ("DATABASE_POOL_SIZE", "")]).unwrap();
        assert_eq!(config.database.url(), DEFAULT_DATABASE_URL);
    }
}
