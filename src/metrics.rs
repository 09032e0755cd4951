//! Prometheus metrics: what the server counts, and the text `/metrics` answers with.
//!
//! Each [`AppState`](crate::AppState) owns one [`Metrics`], a recorder of the
//! `metrics-exporter-prometheus` crate that is never installed as the process-wide one: the
//! server records through it directly, so several applications in one process (as in the test
//! suite) keep their counts apart. Label values are either static strings or, for GraphQL
//! operation names, shared ones interned once; the handles of each label combination are kept,
//! so recording a request takes a read lock and no allocation.
//!
//! Clients choose operation names, so only the first [`MAX_OPERATION_NAMES`] distinct ones get a
//! label of their own: later ones, and names that are not GraphQL names of at most
//! [`MAX_OPERATION_NAME_CHARS`] characters, count as `other`. Requests that name no operation
//! count as `anonymous`.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::db::{Database, PoolStatus, migrations, statistics};
use crate::error::AppError;

/// The most distinct GraphQL operation names that get a label of their own.
pub const MAX_OPERATION_NAMES: usize = 100;
/// The longest operation name that gets a label of its own; longer ones count as `other`.
pub const MAX_OPERATION_NAME_CHARS: usize = 64;
/// The operation label of requests whose operation has no name.
pub const ANONYMOUS_OPERATION: &str = "anonymous";
/// The operation label of names past [`MAX_OPERATION_NAMES`] or not fit to be a label.
pub const OTHER_OPERATION: &str = "other";
/// How long a scrape waits for PostgreSQL's counts, well inside Prometheus's default scrape
/// timeout of 10 seconds.
pub const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);
/// The media type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const HTTP_REQUESTS: &str = "festapi_http_requests_total";
const HTTP_DURATION: &str = "festapi_http_request_duration_seconds";
const GRAPHQL_OPERATIONS: &str = "festapi_graphql_operations_total";
const GRAPHQL_DURATION: &str = "festapi_graphql_operation_duration_seconds";
const DOCUMENT_CACHE: &str = "festapi_graphql_document_cache_total";
const POOL_MAX_SIZE: &str = "festapi_db_pool_max_size";
const POOL_SIZE: &str = "festapi_db_pool_size";
const POOL_IDLE: &str = "festapi_db_pool_idle";
const POOL_IN_USE: &str = "festapi_db_pool_in_use";
const POOL_WAITING: &str = "festapi_db_pool_waiting";
const POOL_WAIT: &str = "festapi_db_pool_wait_seconds";
const DATABASE_UP: &str = "festapi_database_up";
const SESSIONS: &str = "festapi_sessions";
const MIGRATIONS_APPLIED: &str = "festapi_migrations_applied";
const MIGRATIONS_EMBEDDED: &str = "festapi_migrations_embedded";
const BUILD_INFO: &str = "festapi_build_info";

/// Upper bounds of the request and operation latency buckets, in seconds: from what a cached
/// read takes to the default request timeout.
const LATENCY_BUCKETS: [f64; 12] = [
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds of the pool wait buckets, in seconds: a free connection takes microseconds, a
/// saturated pool up to `DATABASE_POOL_TIMEOUT_MS`.
const POOL_WAIT_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The git commit the binary was built from, as `build.rs` found it.
const GIT_COMMIT: &str = match option_env!("FESTAPI_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Where the metrics come from, as recorders are told; the Prometheus recorder ignores it.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// One application's metrics. Shared by every request through an `Arc`.
pub struct Metrics {
    /// Records and keeps the values; never installed globally.
    recorder: PrometheusRecorder,
    /// Renders what the recorder holds.
    handle: PrometheusHandle,
    /// HTTP requests by route template and status code.
    requests: HandleCache<(&'static str, u16)>,
    /// GraphQL operations by name label, type and outcome.
    operations: HandleCache<(OperationLabel, &'static str, &'static str)>,
    /// The operation names that have a label of their own.
    operation_names: Mutex<HashSet<Arc<str>>>,
    /// Time spent waiting for a pooled connection.
    pool_wait: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A recorder with every metric described and the build info set.
    pub fn new() -> anyhow::Result<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &LATENCY_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(GRAPHQL_DURATION.into()),
                    &LATENCY_BUCKETS,
                )
            })
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Full(POOL_WAIT.into()), &POOL_WAIT_BUCKETS)
            })
            .context("configuring the metrics recorder")?
            .build_recorder();
        describe(&recorder);
        let handle = recorder.handle();
        let pool_wait = recorder.register_histogram(&Key::from_static_name(POOL_WAIT), &METADATA);
        let build_labels = vec![
            Label::from_static_parts("version", env!("CARGO_PKG_VERSION")),
            Label::from_static_parts("commit", GIT_COMMIT),
        ];
        recorder
            .register_gauge(&Key::from_parts(BUILD_INFO, build_labels), &METADATA)
            .set(1.0);
        recorder
            .register_gauge(&Key::from_static_name(MIGRATIONS_EMBEDDED), &METADATA)
            .set(migrations::embedded_count()? as f64);
        Ok(Self {
            recorder,
            handle,
            requests: HandleCache::new(HTTP_REQUESTS, HTTP_DURATION),
            operations: HandleCache::new(GRAPHQL_OPERATIONS, GRAPHQL_DURATION),
            operation_names: Mutex::new(HashSet::new()),
            pool_wait,
        })
    }

    /// The counters of the document cache's hits and misses, in that order.
    pub fn document_cache(&self) -> (Counter, Counter) {
        let counter = |result: &'static str| {
            let labels = vec![Label::from_static_parts("result", result)];
            self.recorder
                .register_counter(&Key::from_parts(DOCUMENT_CACHE, labels), &METADATA)
        };
        (counter("hit"), counter("miss"))
    }

    /// The histogram the connection pool records its waits in.
    pub fn pool_wait(&self) -> Histogram {
        self.pool_wait.clone()
    }

    /// Counts an HTTP request to the route template `route` answered with `status` after
    /// `elapsed`.
    pub fn record_request(&self, route: &'static str, status: u16, elapsed: Duration) {
        let (count, duration) = self.requests.get(&self.recorder, (route, status), || {
            vec![
                Label::from_static_parts("route", route),
                Label::new("status", status_label(status)),
            ]
        });
        count.increment(1);
        duration.record(elapsed);
    }

    /// Counts a GraphQL operation counted under `label` (see [`Self::operation_label`]), of type
    /// `operation_type`, that ended with `outcome` (`ok` or an error code) after `elapsed`.
    pub fn record_operation(
        &self,
        label: &OperationLabel,
        operation_type: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let key = (label.clone(), operation_type, outcome);
        let (count, duration) = self.operations.get(&self.recorder, key, || {
            vec![
                Label::new("operation", label.shared()),
                Label::from_static_parts("type", operation_type),
                Label::from_static_parts("outcome", outcome),
            ]
        });
        count.increment(1);
        duration.record(elapsed);
    }

    /// The label `name` is counted under.
    ///
    /// Only [`MAX_OPERATION_NAMES`] names are ever kept, so hostile clients cannot grow memory
    /// or the exposition.
    pub fn operation_label(&self, name: Option<&str>) -> OperationLabel {
        let Some(name) = name else {
            return OperationLabel::Anonymous;
        };
        if !is_label_worthy(name) {
            return OperationLabel::Other;
        }
        let mut names = self
            .operation_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = names.get(name) {
            return OperationLabel::Named(Arc::clone(known));
        }
        if names.len() >= MAX_OPERATION_NAMES {
            return OperationLabel::Other;
        }
        let interned: Arc<str> = Arc::from(name);
        names.insert(Arc::clone(&interned));
        OperationLabel::Named(interned)
    }

    /// The exposition in the Prometheus text format, with the gauges of `sample` set first.
    pub fn render(&self, sample: &Sample) -> String {
        let gauge = |name: &'static str| {
            self.recorder
                .register_gauge(&Key::from_static_name(name), &METADATA)
        };
        let pool = &sample.pool;
        gauge(POOL_MAX_SIZE).set(pool.max_size as f64);
        gauge(POOL_SIZE).set(pool.size as f64);
        gauge(POOL_IDLE).set(pool.idle as f64);
        gauge(POOL_IN_USE).set(pool.in_use as f64);
        gauge(POOL_WAITING).set(pool.waiting as f64);
        gauge(DATABASE_UP).set(if sample.database.is_some() { 1.0 } else { 0.0 });
        // When the database did not answer, its gauges keep their last values.
        if let Some(database) = &sample.database {
            gauge(MIGRATIONS_APPLIED).set(database.migrations_applied as f64);
            for (state, count) in [
                ("live", database.live_sessions),
                ("revoked", database.revoked_sessions),
                ("expired", database.expired_sessions),
            ] {
                let key = Key::from_parts(SESSIONS, vec![Label::from_static_parts("state", state)]);
                self.recorder
                    .register_gauge(&key, &METADATA)
                    .set(count as f64);
            }
        }
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets. Rendering does it too; call this
    /// periodically so that memory stays bounded when nobody scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Samples the pool and the database for a scrape. PostgreSQL gets [`SAMPLE_TIMEOUT`] to
/// answer, connection wait included, so a slow database cannot hold up `/metrics`.
pub async fn sample(database: &Database) -> Sample {
    let counts = async {
        let mut connection = database.connection().await?;
        Ok::<_, AppError>(statistics::read(&mut connection).await?)
    };
    let database_answer = match tokio::time::timeout(SAMPLE_TIMEOUT, counts).await {
        Ok(Ok(statistics)) => Some(statistics),
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics: cannot count sessions and migrations");
            None
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = SAMPLE_TIMEOUT.as_millis(),
                "metrics: PostgreSQL did not answer in time"
            );
            None
        }
    };
    Sample {
        pool: database.pool_status(),
        database: database_answer,
    }
}

/// What `/metrics` samples at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The connection pool, as it is now.
    pub pool: PoolStatus,
    /// What PostgreSQL answered; `None` when it did not answer in time.
    pub database: Option<statistics::Statistics>,
}

/// The label an operation name is counted under. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OperationLabel {
    /// The operation has no name.
    Anonymous,
    /// A name past [`MAX_OPERATION_NAMES`], or not fit to be a label.
    Other,
    /// One of the first [`MAX_OPERATION_NAMES`] names, interned.
    Named(Arc<str>),
}

impl OperationLabel {
    fn shared(&self) -> SharedString {
        match self {
            Self::Anonymous => SharedString::const_str(ANONYMOUS_OPERATION),
            Self::Other => SharedString::const_str(OTHER_OPERATION),
            Self::Named(name) => SharedString::from_shared(Arc::clone(name)),
        }
    }
}

/// How logs name an operation named `name`: by that name when it is a GraphQL name of at most
/// [`MAX_OPERATION_NAME_CHARS`] characters (whichever operations came first), otherwise
/// `anonymous` or `other` as in the metrics.
pub fn loggable_operation_name(name: Option<&str>) -> &str {
    match name {
        None => ANONYMOUS_OPERATION,
        Some(name) if is_label_worthy(name) => name,
        Some(_) => OTHER_OPERATION,
    }
}

/// Whether `name` is a GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`) of at most
/// [`MAX_OPERATION_NAME_CHARS`] characters.
fn is_label_worthy(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && characters.all(|rest| rest == '_' || rest.is_ascii_alphanumeric())
        && name.len() <= MAX_OPERATION_NAME_CHARS
}

/// The counter and histogram of each label combination seen so far.
struct HandleCache<K> {
    /// The counter's name.
    counter: &'static str,
    /// The histogram's name.
    histogram: &'static str,
    handles: RwLock<HashMap<K, (Counter, Histogram)>>,
}

impl<K: Eq + Hash> HandleCache<K> {
    fn new(counter: &'static str, histogram: &'static str) -> Self {
        Self {
            counter,
            histogram,
            handles: RwLock::default(),
        }
    }

    /// The handles of `key`, registered with `labels` the first time it is seen.
    fn get(
        &self,
        recorder: &PrometheusRecorder,
        key: K,
        labels: impl FnOnce() -> Vec<Label>,
    ) -> (Counter, Histogram) {
        if let Some(handles) = self
            .handles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return handles.clone();
        }
        let mut handles = self.handles.write().unwrap_or_else(PoisonError::into_inner);
        handles
            .entry(key)
            .or_insert_with(|| {
                let labels = labels();
                (
                    recorder.register_counter(
                        &Key::from_parts(self.counter, labels.clone()),
                        &METADATA,
                    ),
                    recorder
                        .register_histogram(&Key::from_parts(self.histogram, labels), &METADATA),
                )
            })
            .clone()
    }
}

/// `status` as a label value, from a table made once: status codes are three digits.
fn status_label(status: u16) -> &'static str {
    static LABELS: LazyLock<Vec<String>> =
        LazyLock::new(|| (0..1000).map(|code| format!("{code:03}")).collect());
    LABELS
        .get(usize::from(status))
        .map_or("other", String::as_str)
}

/// Gives every metric its help text and unit.
fn describe(recorder: &PrometheusRecorder) {
    let help = |description: &'static str| SharedString::const_str(description);
    for (name, description) in [
        (
            HTTP_REQUESTS,
            "HTTP requests answered, by route template and status code",
        ),
        (
            GRAPHQL_OPERATIONS,
            "GraphQL operations, by operation name, type and outcome (ok or the error code)",
        ),
        (
            DOCUMENT_CACHE,
            "GraphQL documents looked up in the document cache, by result: hit (parsed before) \
             or miss (checked and parsed now)",
        ),
    ] {
        recorder.describe_counter(name.into(), Some(Unit::Count), help(description));
    }
    for (name, description) in [
        (
            HTTP_DURATION,
            "time from receiving an HTTP request to answering it, by route template and status code",
        ),
        (
            GRAPHQL_DURATION,
            "time to admit, run and render a GraphQL operation, by operation name, type and outcome",
        ),
        (
            POOL_WAIT,
            "time spent waiting for a pooled database connection",
        ),
    ] {
        recorder.describe_histogram(name.into(), Some(Unit::Seconds), help(description));
    }
    for (name, description) in [
        (
            POOL_MAX_SIZE,
            "the most connections the database pool opens (DATABASE_POOL_SIZE)",
        ),
        (POOL_SIZE, "database connections open now"),
        (POOL_IDLE, "open database connections nobody is using"),
        (POOL_IN_USE, "database connections checked out by requests"),
        (POOL_WAITING, "requests waiting for a database connection"),
        (
            DATABASE_UP,
            "1 when PostgreSQL answered this scrape's query in time, 0 otherwise",
        ),
        (
            SESSIONS,
            "sessions stored, by state: live, revoked (ended, kept until the hourly purge) or expired",
        ),
        (
            MIGRATIONS_APPLIED,
            "migrations recorded as applied in the database",
        ),
        (MIGRATIONS_EMBEDDED, "migrations built into this binary"),
        (
            BUILD_INFO,
            "always 1; the labels name the version and git commit of the binary",
        ),
    ] {
        recorder.describe_gauge(name.into(), None, help(description));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_graphql_names_are_labels() {
        for name in [
            "Feed",
            "_private",
            "getPost2",
            &"A".repeat(MAX_OPERATION_NAME_CHARS),
        ] {
            assert!(is_label_worthy(name), "{name}");
        }
        let too_long = "A".repeat(MAX_OPERATION_NAME_CHARS + 1);
        for name in [
            "",
            "2fast",
            "has space",
            "quote\"",
            "new\nline",
            "é",
            &too_long,
        ] {
            assert!(!is_label_worthy(name), "{name:?}");
            assert_eq!(loggable_operation_name(Some(name)), OTHER_OPERATION);
        }
        assert_eq!(loggable_operation_name(None), ANONYMOUS_OPERATION);
        assert_eq!(loggable_operation_name(Some("Feed")), "Feed");
    }

    #[test]
    fn names_past_the_limit_fold_into_other_and_known_ones_stay() {
        let metrics = Metrics::new().unwrap();
        for index in 0..MAX_OPERATION_NAMES {
            let label = metrics.operation_label(Some(&format!("Op{index}")));
            assert_eq!(
                label,
                OperationLabel::Named(Arc::from(format!("Op{index}")))
            );
        }
        assert_eq!(metrics.operation_label(Some("Late")), OperationLabel::Other);
        assert_eq!(
            metrics.operation_label(Some("Op0")),
            OperationLabel::Named(Arc::from("Op0"))
        );
        assert_eq!(metrics.operation_label(None), OperationLabel::Anonymous);
    }

    #[test]
    fn status_labels_are_the_three_digits() {
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(503), "503");
        assert_eq!(status_label(999), "999");
        assert_eq!(status_label(1000), "other");
    }
}
