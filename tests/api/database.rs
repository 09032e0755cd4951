//! The connection pool's server-side limits, and what clients see when the database fails them.

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl as _;
use reqwest::StatusCode;
use serde_json::json;
use tokio_postgres::Client as AdminClient;

use crate::support::{Client, Reply, TableLock, TestApp};

#[tokio::test]
async fn statements_are_cut_at_the_statement_timeout() {
    let app = TestApp::builder()
        .with_env("DATABASE_STATEMENT_TIMEOUT_MS", "200")
        .start()
        .await;
    let mut connection = app.state.database.connection().await.unwrap();

    let started = Instant::now();
    let slow = diesel::sql_query("SELECT pg_sleep(5)")
        .execute(&mut connection)
        .await;

    let error = slow.expect_err("pg_sleep(5) outlived a 200 ms statement timeout");
    assert!(error.to_string().contains("statement timeout"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Makes every insert into `posts` sleep first: a stand-in for a statement that runs long.
async fn slow_down_post_inserts(admin: &AdminClient, seconds: u32) {
    admin
        .batch_execute(&format!(
            "CREATE FUNCTION test_sleep_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$; \
             CREATE TRIGGER test_sleep_before_insert BEFORE INSERT ON posts \
             FOR EACH ROW EXECUTE FUNCTION test_sleep_before_insert();"
        ))
        .await
        .unwrap();
}

async fn restore_post_inserts(admin: &AdminClient) {
    admin
        .batch_execute("DROP TRIGGER test_sleep_before_insert ON posts")
        .await
        .unwrap();
}

async fn stored_posts(admin: &AdminClient) -> i64 {
    admin
        .query_one("SELECT count(*) FROM posts", &[])
        .await
        .unwrap()
        .get(0)
}

async fn create_post(client: &Client) -> Reply {
    client
        .graphql(
            "mutation { createPost(input: { title: \"Slow\", content: \"going\" }) { id } }",
            json!({}),
        )
        .await
}

#[tokio::test]
async fn a_statement_cut_at_the_statement_timeout_is_unavailable() {
    let app = TestApp::builder()
        .with_env("DATABASE_STATEMENT_TIMEOUT_MS", "300")
        .start()
        .await;
    let alice = app.signed_in("alice").await;
    let admin = app.database.admin_client().await;
    slow_down_post_inserts(&admin, 5).await;

    let started = Instant::now();
    let reply = create_post(&alice).await;

    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    reply.assert_error("SERVICE_UNAVAILABLE", None);
    assert_eq!(reply.body["data"], json!(null));
    assert_eq!(stored_posts(&admin).await, 0);

    restore_post_inserts(&admin).await;
    assert!(create_post(&alice).await.data()["createPost"]["id"].is_string());
    assert_eq!(stored_posts(&admin).await, 1);
}

/// What other sessions do in the test database.
struct Activity {
    /// Sessions other than the admin's own.
    others: i64,
    /// Sessions running an INSERT.
    inserting: i64,
}

/// Polls `pg_stat_activity` until `condition` holds, for at most five seconds.
async fn wait_until(admin: &AdminClient, what: &str, condition: impl Fn(&Activity) -> bool) {
    let started = Instant::now();
    loop {
        let row = admin
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE state = 'active' AND query LIKE 'INSERT%') \
                 FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        let activity = Activity {
            others: row.get(0),
            inserting: row.get(1),
        };
        if condition(&activity) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited in vain until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_connection_terminated_mid_request_is_unavailable_and_the_next_request_succeeds() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let admin = app.database.admin_client().await;
    slow_down_post_inserts(&admin, 30).await;

    let in_flight = tokio::spawn({
        let alice = alice.clone();
        async move { create_post(&alice).await }
    });
    wait_until(&admin, "the insert is running", |activity| {
        activity.inserting > 0
    })
    .await;
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let reply = in_flight.await.unwrap();

    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    reply.assert_error("SERVICE_UNAVAILABLE", None);
    assert_eq!(stored_posts(&admin).await, 0);

    // A backend leaves pg_stat_activity just before it closes its socket; the pool then sees the
    // connection closed and replaces it instead of handing it out.
    wait_until(&admin, "the terminated backends are gone", |activity| {
        activity.others == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    restore_post_inserts(&admin).await;
    assert!(create_post(&alice).await.data()["createPost"]["id"].is_string());
    assert_eq!(stored_posts(&admin).await, 1);
}

#[tokio::test]
async fn a_lock_not_granted_within_the_statement_timeout_is_unavailable() {
    let app = TestApp::builder()
        .with_env("DATABASE_STATEMENT_TIMEOUT_MS", "300")
        .start()
        .await;
    let alice = app.signed_in("alice").await;
    let lock = TableLock::take(&app.database.url, "posts").await;

    let started = Instant::now();
    let reply = create_post(&alice).await;

    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    reply.assert_error("SERVICE_UNAVAILABLE", None);
    lock.release().await;
    assert!(create_post(&alice).await.data()["createPost"]["id"].is_string());
}
