//! Start-up without PostgreSQL, readiness, shutdown grace, and outages while serving: what the
//! probes say and what clients see.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::ServedBinary;
use crate::support::{ErrorLog, Forwarder, Reply, TestApp, TestDatabase};

const WAITING: &str = "PostgreSQL is not reachable yet; retrying";

/// The JSON log lines of `logs` whose message is `message`.
fn log_lines(logs: &str, message: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == message)
        .collect()
}

/// The message of the error that ended start-up: the last log line, at level ERROR.
fn fatal_error(logs: &str) -> String {
    let line: Value = logs
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("the last line is not JSON:\n{logs}"));
    assert_eq!(line["level"], "ERROR", "{line}");
    line["message"].as_str().expect("a message").to_owned()
}

/// Polls `condition` every 50 ms until it holds, for at most `limit`.
async fn eventually<F: Future<Output = bool>>(
    limit: Duration,
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < limit,
            "waited {limit:?} in vain until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_graphql(url: &str, query: &str) -> Reply {
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("a response");
    Reply::from(response).await
}

/// `festapi serve` on `database` through `forwarder`, once it listens: while the forwarder is
/// closed, it waits for PostgreSQL.
async fn listening_without_postgres(
    database: &TestDatabase,
    forwarder: &Forwarder,
) -> ServedBinary {
    let server = ServedBinary::launch(&forwarder.url_for(&database.name), &[]);
    eventually(Duration::from_secs(10), "/healthz answers", || async {
        server.probe("/healthz").await.is_some()
    })
    .await;
    server
}

#[tokio::test]
async fn serve_listens_at_once_and_becomes_ready_when_postgres_appears() {
    let database = TestDatabase::unused();
    let forwarder = Forwarder::closed();
    let server = listening_without_postgres(&database, &forwarder).await;
    assert_eq!(
        server.probe("/healthz").await,
        Some((StatusCode::OK, json!({ "status": "ok" })))
    );
    assert_eq!(
        server.probe("/readyz").await,
        Some((
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "starting", "database": "unreachable" })
        ))
    );
    let early = post_graphql(&server.url("/graphql"), "{ __typename }").await;
    assert_eq!(early.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(early.headers["retry-after"], "1");
    early.assert_error("SERVICE_UNAVAILABLE", None);
    eventually(
        Duration::from_secs(10),
        "two attempts are logged",
        || async { log_lines(&server.logs(), WAITING).len() >= 2 },
    )
    .await;

    forwarder.reopen().await;
    server.wait_until_ready(Duration::from_secs(15)).await;

    let attempts = log_lines(&server.logs(), WAITING);
    for (number, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["level"], "WARN");
        assert_eq!(attempt["attempt"], number + 1, "{attempt}");
        let delay = attempt["retry_in_ms"].as_u64().expect("the delay");
        assert!(delay <= 5_000, "{attempt}");
        let cause = attempt["cause"].as_str().expect("the cause");
        assert!(cause.contains("Connection refused"), "{cause}");
        assert!(!cause.contains('\n'), "{cause}");
    }
    // Waits grow: the second step's shortest wait is the first step's longest.
    assert!(attempts[1]["retry_in_ms"].as_u64() >= attempts[0]["retry_in_ms"].as_u64());
    let ready = post_graphql(&server.url("/graphql"), "{ posts { edges { cursor } } }").await;
    assert_eq!(ready.data()["posts"]["edges"], json!([]));
    assert_eq!(log_lines(&server.logs(), "FestAPI is ready").len(), 1);

    server.terminate();
    let (status, _) = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn serve_gives_up_after_the_connect_timeout_and_says_which_setting() {
    let database = TestDatabase::unused();
    let forwarder = Forwarder::closed();
    let started = Instant::now();
    let server = ServedBinary::launch(
        &forwarder.url_for(&database.name),
        &[("DATABASE_CONNECT_TIMEOUT_SECONDS", "2")],
    );

    let (status, logs) = server.exit_within(Duration::from_secs(15)).await;

    assert!(!status.success(), "{status}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(log_lines(&logs, WAITING).len() >= 2, "{logs}");
    let message = fatal_error(&logs);
    assert!(
        message.starts_with(
            "PostgreSQL could not be reached within DATABASE_CONNECT_TIMEOUT_SECONDS (2 s, "
        ),
        "{logs}"
    );
    assert!(message.contains("Connection refused"), "{message}");
}

#[tokio::test]
async fn serve_fails_fast_when_postgres_refuses_the_role() {
    let database = TestDatabase::unused();
    let mut url = url::Url::parse(&database.url).unwrap();
    url.set_username("festapi_test_no_such_role").unwrap();
    let started = Instant::now();
    let server = ServedBinary::launch(url.as_str(), &[]);

    let (status, logs) = server.exit_within(Duration::from_secs(10)).await;

    assert!(!status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(log_lines(&logs, WAITING).is_empty(), "{logs}");
    let message = fatal_error(&logs);
    assert!(
        message.starts_with("preparing the database failed in a way retrying cannot fix"),
        "{logs}"
    );
    assert!(
        message.contains("role \"festapi_test_no_such_role\" does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn readyz_fails_at_sigterm_while_requests_are_served_through_the_grace() {
    let database = TestDatabase::unused();
    let server = ServedBinary::start(&database.url, &[("SHUTDOWN_GRACE_SECONDS", "2")]).await;
    assert_eq!(
        server.probe("/readyz").await,
        Some((StatusCode::OK, json!({ "status": "ok" })))
    );

    let signalled = Instant::now();
    server.terminate();
    eventually(Duration::from_secs(1), "/readyz says stopping", || async {
        server.probe("/readyz").await
            == Some((
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "stopping" }),
            ))
    })
    .await;
    let mut served_in_grace = 0;
    while signalled.elapsed() < Duration::from_millis(1_500) {
        let reply = post_graphql(&server.url("/graphql"), "{ posts { edges { cursor } } }").await;
        assert_eq!(reply.data()["posts"]["edges"], json!([]));
        served_in_grace += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served_in_grace >= 5, "{served_in_grace}");

    eventually(Duration::from_secs(4), "the port is closed", || async {
        !server.accepts_connections().await
    })
    .await;
    assert!(signalled.elapsed() >= Duration::from_secs(2));
    let (status, logs) = server.exit_within(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    assert!(logs.contains("SHUTDOWN_GRACE_SECONDS"), "{logs}");
}

#[tokio::test]
async fn readyz_fails_while_migrations_are_pending() {
    let app = TestApp::new().await;
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let reverted = festapi::db::migrations::revert_last(&app.database.url)
        .await
        .unwrap();
    assert!(reverted.is_some());
    let pending = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(pending.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        pending.json::<Value>().await.unwrap(),
        json!({
            "status": "unavailable",
            "database": "migrations pending",
            "pendingMigrations": 1,
        })
    );

    festapi::db::migrations::run_pending(&app.database.url)
        .await
        .unwrap();
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_outage_answers_service_unavailable_fast_and_the_same_process_recovers() {
    let errors = ErrorLog::capture();
    let forwarder = Forwarder::open().await;
    let app = TestApp::builder().start_through(&forwarder).await;
    let alice = app.signed_in("alice").await;
    let reader = app.anonymous();
    let read = "{ posts { edges { cursor } } }";
    let write = "mutation { createPost(input: { title: \"Up\", content: \"again\" }) { id } }";
    assert!(alice.graphql(write, json!({})).await.data()["createPost"]["id"].is_string());

    forwarder.close().await;
    let outage = Instant::now();
    let mut answered = 0;
    while outage.elapsed() < Duration::from_secs(2) {
        // A query that fails as it runs is answered 200 with the error, as GraphQL over HTTP
        // has it; a signed-in request fails earlier, checking its session, and is a 503.
        for (client, query, status) in [
            (&reader, read, StatusCode::OK),
            (&alice, write, StatusCode::SERVICE_UNAVAILABLE),
        ] {
            let sent = Instant::now();
            let reply = client.graphql(query, json!({})).await;
            assert!(
                sent.elapsed() < Duration::from_secs(1),
                "{:?}",
                sent.elapsed()
            );
            assert_eq!(reply.status, status, "{:#}", reply.body);
            reply.assert_error("SERVICE_UNAVAILABLE", None);
            answered += 1;
        }
        let ready = reqwest::get(app.url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(answered >= 10, "{answered}");

    forwarder.reopen().await;
    let recovery = Instant::now();
    eventually(Duration::from_secs(5), "a write succeeds again", || async {
        alice.graphql(write, json!({})).await.body["data"]["createPost"]["id"].is_string()
    })
    .await;
    assert!(recovery.elapsed() < Duration::from_secs(5));
    for _ in 0..10 {
        assert!(reader.graphql(read, json!({})).await.data()["posts"]["edges"].is_array());
        assert!(alice.graphql(write, json!({})).await.data()["createPost"]["id"].is_string());
    }
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(errors.count(), 0, "an outage is not an internal error");
}

#[tokio::test]
async fn serve_fails_fast_when_the_database_is_missing_and_the_role_may_not_create_it() {
    let maintenance = TestDatabase::empty().await;
    let admin = maintenance.admin_client().await;
    let role = format!(
        "festapi_test_role_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN NOCREATEDB"))
        .await
        .unwrap();
    let database = TestDatabase::unused();
    let mut url = url::Url::parse(&database.url).unwrap();
    url.set_username(&role).unwrap();
    let started = Instant::now();

    let server = ServedBinary::launch(url.as_str(), &[]);
    let (status, logs) = server.exit_within(Duration::from_secs(10)).await;
    admin
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();

    assert!(!status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(log_lines(&logs, WAITING).is_empty(), "{logs}");
    let message = fatal_error(&logs);
    assert!(message.contains("retrying cannot fix"), "{message}");
    assert!(
        message.contains(&format!("creating database {:?}", database.name))
            && message.contains("permission denied to create database"),
        "{message}"
    );
}

#[tokio::test]
async fn sigterm_while_waiting_for_postgres_stops_at_once_and_cleanly() {
    let database = TestDatabase::unused();
    let forwarder = Forwarder::closed();
    let server = listening_without_postgres(&database, &forwarder).await;

    let signalled = Instant::now();
    server.terminate();
    let (status, logs) = server.exit_within(Duration::from_secs(5)).await;

    assert!(status.success(), "{status}");
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert!(
        !log_lines(&logs, "stopped before the database was ready").is_empty(),
        "{logs}"
    );
}
