//! The connection pool's server-side limits.

use diesel_async::RunQueryDsl as _;

use crate::support::TestApp;

#[tokio::test]
async fn statements_are_cut_at_the_statement_timeout() {
    let app = TestApp::builder()
        .with_env("DATABASE_STATEMENT_TIMEOUT_MS", "200")
        .start()
        .await;
    let mut connection = app.state.database.connection().await.unwrap();

    let started = std::time::Instant::now();
    let slow = diesel::sql_query("SELECT pg_sleep(5)")
        .execute(&mut connection)
        .await;

    let error = slow.expect_err("pg_sleep(5) outlived a 200 ms statement timeout");
    assert!(error.to_string().contains("statement timeout"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
