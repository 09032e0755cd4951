//! A real PostgreSQL restarted under write load: no acknowledged write is lost, and the same
//! server process serves again within seconds.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use festapi::db::local_postgres::{LocalCluster, PostgresPrograms, Released};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_postgres::NoTls;

use crate::cli::{ServedBinary, festapi};
use crate::local_postgres::{blocking, temporary_folder};
use crate::support::TEST_JWT_SECRET;

/// Concurrent writers.
const WRITERS: usize = 4;
/// The longest any request may take, restart or not: far below `REQUEST_TIMEOUT_MS`.
const MAX_ANSWER_TIME: Duration = Duration::from_secs(6);
/// How soon after PostgreSQL is back a write must succeed.
const MAX_RECOVERY_TIME: Duration = Duration::from_secs(5);

/// What became of one `createPost`.
#[derive(Debug)]
struct Write {
    /// When the request was sent.
    sent: Instant,
    /// How long its answer took.
    took: Duration,
    /// The new post's id when acknowledged, or the status and error code otherwise.
    outcome: Result<String, (StatusCode, Value)>,
}

/// Sends `createPost` in a loop until `stop` is set.
async fn write_until(
    url: String,
    token: String,
    writer: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Write> {
    let client = reqwest::Client::new();
    let mut writes = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({
                "query": "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
                "variables": { "input": { "title": format!("writer {writer}"), "content": "load" } },
            }))
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        let outcome = match body["data"]["createPost"]["id"].as_str() {
            Some(id) if status == StatusCode::OK => Ok(id.to_owned()),
            _ => Err((status, body["errors"][0]["extensions"]["code"].clone())),
        };
        writes.push(Write {
            sent,
            took: sent.elapsed(),
            outcome,
        });
    }
    writes
}

#[tokio::test]
async fn a_postgres_restart_under_write_load_loses_no_acknowledged_write() {
    let folder = temporary_folder();
    let cluster = LocalCluster::new(
        PostgresPrograms::find().expect("PostgreSQL's programs are installed"),
        &folder.path().join("postgres"),
    )
    .unwrap();
    let lease = blocking({
        let cluster = cluster.clone();
        move || cluster.acquire()
    })
    .await;
    let database_url = lease.url("festapi");
    let issued = festapi(
        &["token", "issue", "--email", "writer@example.test"],
        &[
            ("DATABASE_URL", &database_url),
            ("APP_ENV", "test"),
            ("JWT_SECRET", TEST_JWT_SECRET),
        ],
    );
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let token = String::from_utf8(issued.stdout).unwrap().trim().to_owned();
    let unlimited = [
        ("RATE_LIMIT_PER_IP_PER_MINUTE", "0"),
        ("RATE_LIMIT_PER_USER_PER_MINUTE", "0"),
        ("RATE_LIMIT_MUTATIONS_PER_MINUTE", "0"),
    ];
    let server = ServedBinary::start(&database_url, &unlimited).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            tokio::spawn(write_until(
                server.url("/graphql"),
                token.clone(),
                writer,
                Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarting = Instant::now();
    // As `pg_ctl restart -m fast` does: sessions are terminated, the server stops, starts again.
    blocking({
        let cluster = cluster.clone();
        move || {
            cluster.stop_server()?;
            cluster.start_server()
        }
    })
    .await;
    let restarted = Instant::now();
    tokio::time::sleep(MAX_RECOVERY_TIME + Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut writes = Vec::new();
    for writer in writers {
        writes.extend(writer.await.unwrap());
    }

    let acknowledged: Vec<&str> = writes
        .iter()
        .filter_map(|write| write.outcome.as_ref().ok().map(String::as_str))
        .collect();
    let refused: Vec<&Write> = writes
        .iter()
        .filter(|write| write.outcome.is_err())
        .collect();
    assert!(
        writes
            .iter()
            .any(|write| write.sent < restarting && write.outcome.is_ok()),
        "writes succeeded before the restart"
    );
    assert!(!refused.is_empty(), "the restart happened under load");
    for write in &refused {
        let (status, code) = write.outcome.as_ref().unwrap_err();
        assert_eq!(code, "SERVICE_UNAVAILABLE", "{write:?}");
        assert!(
            matches!(*status, StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE),
            "{write:?}"
        );
    }
    let slowest = writes.iter().map(|write| write.took).max().unwrap();
    assert!(slowest < MAX_ANSWER_TIME, "a write took {slowest:?}");
    let recovered = writes
        .iter()
        .filter(|write| write.sent >= restarted && write.outcome.is_ok())
        .map(|write| write.sent + write.took)
        .min()
        .expect("writes succeed after the restart");
    assert!(
        recovered - restarted < MAX_RECOVERY_TIME,
        "the first write after the restart succeeded {:?} after it",
        recovered - restarted
    );
    let refused_after_recovery = refused
        .iter()
        .filter(|write| write.sent > recovered)
        .count();
    assert_eq!(
        refused_after_recovery, 0,
        "every write succeeds once one does"
    );

    let (client, connection) = tokio_postgres::connect(&database_url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let stored: HashSet<String> = client
        .query("SELECT id FROM posts", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let lost: Vec<&&str> = acknowledged
        .iter()
        .filter(|id| !stored.contains(**id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(stored.len() >= acknowledged.len());
    drop(client);

    server.terminate();
    let (status, _) = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    let released = blocking(move || lease.release()).await;
    assert_eq!(released, Released::Stopped);
}
