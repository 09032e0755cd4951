//! `/metrics`: the Prometheus exposition, what it counts, where it is served, and the access log.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use festapi::metrics::{MAX_OPERATION_NAME_CHARS, MAX_OPERATION_NAMES};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{JsonLog, TableLock, TestApp};

/// One scrape, parsed: every sample by metric name and labels.
struct Exposition {
    text: String,
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
}

impl Exposition {
    async fn scrape(url: &str) -> Self {
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap();
                (parse_series(series), value.parse().unwrap())
            })
            .collect();
        Self { text, samples }
    }

    /// The value of the sample `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// The label sets of every sample of `name`.
    fn label_sets(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples
            .keys()
            .filter(|(sample, _)| sample == name)
            .map(|(_, labels)| labels)
            .collect()
    }
}

/// `name{key="value",...}` as the name and its labels. Our label values hold no quotes, commas
/// or escapes, which the exposition would escape.
fn parse_series(series: &str) -> (String, BTreeMap<String, String>) {
    let Some((name, labels)) = series.split_once('{') else {
        return (series.to_owned(), BTreeMap::new());
    };
    let labels = labels
        .strip_suffix('}')
        .unwrap()
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (key.to_owned(), value.trim_matches('"').to_owned())
        })
        .collect();
    (name.to_owned(), labels)
}

async fn scrape(app: &TestApp) -> Exposition {
    Exposition::scrape(&app.url("/metrics")).await
}

async fn get(app: &TestApp, path: &str) -> StatusCode {
    reqwest::get(app.url(path)).await.unwrap().status()
}

const REQUESTS: &str = "festapi_http_requests_total";
const REQUEST_DURATIONS: &str = "festapi_http_request_duration_seconds_count";
const OPERATIONS: &str = "festapi_graphql_operations_total";
const OPERATION_DURATIONS: &str = "festapi_graphql_operation_duration_seconds_count";

fn operation<'a>(name: &'a str, kind: &'a str, outcome: &'a str) -> [(&'a str, &'a str); 3] {
    [("operation", name), ("type", kind), ("outcome", outcome)]
}

#[tokio::test]
async fn a_real_scrape_passes_promtool() {
    let app = TestApp::new().await;
    let client = app.signed_in("ada").await;
    client.create_post("Hello", "World").await;
    client
        .graphql(
            "query Titles { posts { edges { node { title } } } }",
            json!({}),
        )
        .await;
    assert_eq!(get(&app, "/no/such/page").await, StatusCode::NOT_FOUND);
    let exposition = scrape(&app).await;

    let promtool = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let Ok(mut check) = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing, and CI must check the exposition: apt-get install prometheus"
        );
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: promtool is missing, so the exposition was not checked \
             (apt-get install prometheus; CI fails instead of skipping) ***\n"
        );
        return;
    };
    check
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.text.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        exposition.text
    );
    for histogram in [
        "festapi_http_request_duration_seconds",
        "festapi_graphql_operation_duration_seconds",
        "festapi_db_pool_wait_seconds",
    ] {
        assert!(
            exposition
                .text
                .contains(&format!("# TYPE {histogram} histogram")),
            "{histogram} is not a histogram:\n{}",
            exposition.text
        );
    }
}

#[tokio::test]
async fn requests_are_counted_exactly_by_route_template_and_status() {
    let app = TestApp::new().await;
    for _ in 0..3 {
        assert_eq!(get(&app, "/healthz").await, StatusCode::OK);
    }
    assert_eq!(get(&app, "/auth/nobody").await, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/auth/unknown").await, StatusCode::NOT_FOUND);
    let first = scrape(&app).await;
    let healthz = [("route", "/healthz"), ("status", "200")];
    let auth = [("route", "/auth/{provider}"), ("status", "404")];
    assert_eq!(first.value(REQUESTS, &healthz), Some(3.0));
    assert_eq!(first.value(REQUEST_DURATIONS, &healthz), Some(3.0));
    assert_eq!(first.value(REQUESTS, &auth), Some(2.0));

    assert_eq!(get(&app, "/healthz").await, StatusCode::OK);
    let second = scrape(&app).await;
    assert_eq!(second.value(REQUESTS, &healthz), Some(4.0));
    // The first scrape counts once it is answered.
    assert_eq!(
        second.value(REQUESTS, &[("route", "/metrics"), ("status", "200")]),
        Some(1.0)
    );
    assert!(
        second
            .text
            .contains("festapi_http_request_duration_seconds_bucket{route=\"/healthz\",status=\"200\",le=\"0.005\"}"),
        "{}",
        second.text
    );
}

#[tokio::test]
async fn hostile_paths_add_no_labels() {
    let app = TestApp::new().await;
    let paths = 25;
    for index in 0..paths {
        let status = get(&app, &format!("/probe-{index}/%22%7D%0Aevil{index}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let exposition = scrape(&app).await;
    assert_eq!(
        exposition.value(REQUESTS, &[("route", "unmatched"), ("status", "404")]),
        Some(f64::from(paths))
    );
    assert_eq!(exposition.label_sets(REQUESTS).len(), 1);
    assert!(!exposition.text.contains("probe-"));
    assert!(!exposition.text.contains("evil"));
}

#[tokio::test]
async fn graphql_operations_are_counted_by_name_type_and_outcome() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();
    let signed_in = app.signed_in("grace").await;

    let titles = "query Titles { posts { edges { node { title } } } }";
    anonymous.graphql(titles, json!({})).await;
    anonymous.graphql(titles, json!({})).await;
    anonymous.graphql("{ __typename }", json!({})).await;
    signed_in
        .graphql(
            "mutation Publish { createPost(input: {title: \"T\", content: \"C\"}) { id } }",
            json!({}),
        )
        .await;
    // Errors carry their code as the outcome.
    anonymous
        .graphql("query Me { me { id } }", json!({}))
        .await
        .assert_error("UNAUTHENTICATED", None);
    signed_in
        .graphql(
            "mutation Blank { createPost(input: {title: \" \", content: \"C\"}) { id } }",
            json!({}),
        )
        .await
        .assert_error("BAD_USER_INPUT", Some("title"));
    anonymous
        .graphql("query Broken { posts {", json!({}))
        .await
        .assert_error("GRAPHQL_PARSE_FAILED", None);
    app.with_token("not-a-jwt")
        .graphql(
            "query Titles { posts { edges { node { title } } } }",
            json!({}),
        )
        .await;
    // Of a document with several operations, the one chosen counts.
    let reply = anonymous
        .graphql_named(
            "query First { __typename } mutation Second { logout }",
            "First",
        )
        .await;
    assert_eq!(reply.data()["__typename"], "Query");

    let exposition = scrape(&app).await;
    let expected = [
        (operation("Titles", "query", "ok"), 2.0),
        (operation("Titles", "query", "UNAUTHENTICATED"), 1.0),
        (operation("anonymous", "query", "ok"), 1.0),
        (operation("Publish", "mutation", "ok"), 1.0),
        (operation("Me", "query", "UNAUTHENTICATED"), 1.0),
        (operation("Blank", "mutation", "BAD_USER_INPUT"), 1.0),
        (
            operation("anonymous", "unknown", "GRAPHQL_PARSE_FAILED"),
            1.0,
        ),
        (operation("First", "query", "ok"), 1.0),
    ];
    for (labels, count) in &expected {
        assert_eq!(
            exposition.value(OPERATIONS, labels),
            Some(*count),
            "{labels:?} in\n{}",
            exposition.text
        );
        assert_eq!(exposition.value(OPERATION_DURATIONS, labels), Some(*count));
    }
    assert_eq!(exposition.label_sets(OPERATIONS).len(), expected.len());
}

#[tokio::test]
async fn operation_names_past_the_first_hundred_count_as_other() {
    let app = TestApp::new().await;
    let client = app.anonymous();
    for index in 0..=MAX_OPERATION_NAMES {
        let reply = client
            .graphql(&format!("query Op{index} {{ __typename }}"), json!({}))
            .await;
        assert_eq!(reply.data()["__typename"], "Query");
    }
    // Names already known keep their label; too long a name never gets one.
    client.graphql("query Op7 { __typename }", json!({})).await;
    let long_name = "L".repeat(MAX_OPERATION_NAME_CHARS + 1);
    client
        .graphql(&format!("query {long_name} {{ __typename }}"), json!({}))
        .await;

    let exposition = scrape(&app).await;
    assert_eq!(
        exposition.value(OPERATIONS, &operation("Op0", "query", "ok")),
        Some(1.0)
    );
    assert_eq!(
        exposition.value(OPERATIONS, &operation("Op7", "query", "ok")),
        Some(2.0)
    );
    let last_named = format!("Op{}", MAX_OPERATION_NAMES - 1);
    assert_eq!(
        exposition.value(OPERATIONS, &operation(&last_named, "query", "ok")),
        Some(1.0)
    );
    let first_folded = format!("Op{MAX_OPERATION_NAMES}");
    assert_eq!(
        exposition.value(OPERATIONS, &operation(&first_folded, "query", "ok")),
        None
    );
    assert_eq!(
        exposition.value(OPERATIONS, &operation("other", "query", "ok")),
        Some(2.0)
    );
    assert_eq!(
        exposition.label_sets(OPERATIONS).len(),
        MAX_OPERATION_NAMES + 1
    );
}

#[tokio::test]
async fn pool_sessions_migrations_and_build_are_reported() {
    let app = TestApp::new().await;
    let leaving = app.signed_in("leaving").await;
    let _staying = app.signed_in("staying").await;
    let reply = leaving.graphql("mutation { logout }", json!({})).await;
    assert_eq!(reply.data()["logout"], true);

    let exposition = scrape(&app).await;
    assert_eq!(exposition.value("festapi_database_up", &[]), Some(1.0));
    let sessions = |state| exposition.value("festapi_sessions", &[("state", state)]);
    assert_eq!(sessions("live"), Some(1.0));
    assert_eq!(sessions("revoked"), Some(1.0));
    assert_eq!(sessions("expired"), Some(0.0));
    let embedded = exposition
        .value("festapi_migrations_embedded", &[])
        .unwrap();
    assert!(embedded >= 6.0, "{embedded}");
    assert_eq!(
        exposition.value("festapi_migrations_applied", &[]),
        Some(embedded)
    );
    assert_eq!(exposition.value("festapi_db_pool_max_size", &[]), Some(4.0));
    let size = exposition.value("festapi_db_pool_size", &[]).unwrap();
    let idle = exposition.value("festapi_db_pool_idle", &[]).unwrap();
    let in_use = exposition.value("festapi_db_pool_in_use", &[]).unwrap();
    assert!((1.0..=4.0).contains(&size), "{size}");
    assert_eq!(idle + in_use, size);
    assert_eq!(exposition.value("festapi_db_pool_waiting", &[]), Some(0.0));
    let waits = exposition
        .value("festapi_db_pool_wait_seconds_count", &[])
        .unwrap();
    assert!(waits >= 3.0, "{waits}");

    let builds = exposition.label_sets("festapi_build_info");
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0]["version"], env!("CARGO_PKG_VERSION"));
    assert!(!builds[0]["commit"].is_empty());
}

#[tokio::test]
async fn metrics_addr_serves_metrics_on_its_own_listener_only() {
    let app = TestApp::builder()
        .with_env("METRICS_ADDR", "127.0.0.1:0")
        .start()
        .await;
    assert_eq!(get(&app, "/healthz").await, StatusCode::OK);
    assert_eq!(get(&app, "/metrics").await, StatusCode::NOT_FOUND);

    let exposition = Exposition::scrape(&app.metrics_url().unwrap()).await;
    assert_eq!(
        exposition.value(REQUESTS, &[("route", "/healthz"), ("status", "200")]),
        Some(1.0)
    );
    assert_eq!(
        exposition.value(REQUESTS, &[("route", "unmatched"), ("status", "404")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn access_log_lines_carry_the_operation_user_client_and_latency() {
    let log = JsonLog::capture();
    let app = TestApp::new().await;
    let client = app.signed_in("linus").await;
    client
        .graphql(
            "query MyPosts { myPosts { edges { node { id } } } }",
            json!({}),
        )
        .await;
    app.anonymous().graphql("{ __typename }", json!({})).await;
    assert_eq!(get(&app, "/healthz").await, StatusCode::OK);

    let lines = log.lines();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "answered request")
        .collect();
    let signed_in = access
        .iter()
        .find(|line| line["operation_name"] == "MyPosts")
        .unwrap_or_else(|| panic!("no access line for MyPosts in {lines:#?}"));
    assert_eq!(signed_in["level"], "INFO");
    assert_eq!(signed_in["operation_type"], "query");
    assert_eq!(signed_in["user_id"], client.user_id());
    assert_eq!(signed_in["status"], 200);
    assert!(
        signed_in["latency_ms"].as_f64().unwrap() > 0.0,
        "{signed_in}"
    );
    assert_eq!(signed_in["span"]["client_ip"], "127.0.0.1");
    assert_eq!(signed_in["span"]["path"], "/graphql");
    assert!(signed_in["span"]["request_id"].is_string());

    let anonymous = access
        .iter()
        .find(|line| line["operation_name"] == "anonymous")
        .unwrap();
    assert!(anonymous.get("user_id").is_none(), "{anonymous}");

    let probe = access
        .iter()
        .find(|line| line["span"]["path"] == "/healthz")
        .unwrap();
    assert_eq!(probe["level"], "DEBUG");
    assert!(probe.get("operation_name").is_none(), "{probe}");
}

#[tokio::test]
async fn timed_out_operations_count_as_timeout() {
    let app = TestApp::builder()
        .with_env("REQUEST_TIMEOUT_MS", "300")
        .start()
        .await;
    let lock = TableLock::take(&app.database.url, "posts").await;
    let reply = app
        .anonymous()
        .graphql("query Stuck { posts { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error_code(), "TIMEOUT");
    lock.release().await;

    let exposition = scrape(&app).await;
    assert_eq!(
        exposition.value(OPERATIONS, &operation("Stuck", "query", "TIMEOUT")),
        Some(1.0)
    );
    assert_eq!(
        exposition.value(REQUESTS, &[("route", "/graphql"), ("status", "503")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_database_that_does_not_answer_cannot_hold_up_a_scrape() {
    let app = TestApp::new().await;
    let _signed_in = app.signed_in("patient").await;
    assert_eq!(
        scrape(&app)
            .await
            .value("festapi_sessions", &[("state", "live")]),
        Some(1.0)
    );

    let lock = TableLock::take(&app.database.url, "sessions").await;
    let started = Instant::now();
    let exposition = scrape(&app).await;
    let elapsed = started.elapsed();
    lock.release().await;

    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_eq!(exposition.value("festapi_database_up", &[]), Some(0.0));
    // The counts keep their last values; the pool is read without the database.
    assert_eq!(
        exposition.value("festapi_sessions", &[("state", "live")]),
        Some(1.0)
    );
    assert_eq!(exposition.value("festapi_db_pool_max_size", &[]), Some(4.0));
    assert_eq!(
        scrape(&app).await.value("festapi_database_up", &[]),
        Some(1.0)
    );
}
