//! TLS to PostgreSQL as `sslmode` and `sslrootcert` in `DATABASE_URL` ask, against private
//! PostgreSQL servers with certificates made by the test.

use std::time::{Duration, Instant};

use festapi::db::{self, migrations};
use serde_json::json;

use crate::cli::{festapi, stderr};
use crate::support::TestApp;
use crate::support::tls_postgres::{TestAuthority, TlsPostgres};

/// Creates and migrates the database at `url`, as `festapi serve` does before it listens.
async fn prepare(url: &str) -> anyhow::Result<()> {
    db::create_database_if_missing(url).await?;
    migrations::run_pending(url).await?;
    Ok(())
}

/// Why preparing the database at `url` failed, as an operator reads it.
async fn refusal(url: &str) -> String {
    let error = prepare(url).await.expect_err("a refused connection");
    format!("{error:#}")
}

/// A server on the database at `url`, proven to serve a post it stored there.
async fn app_serving_graphql(url: &str) -> TestApp {
    let app = TestApp::builder()
        .with_env("DATABASE_URL", url)
        .start()
        .await;
    let alice = app.signed_in("alice").await;
    let created = alice
        .graphql(
            "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
            json!({ "input": { "title": "Over TLS", "content": "Stored through the pool." } }),
        )
        .await;
    let id = created.data()["createPost"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = app
        .anonymous()
        .graphql(
            "query($id: ID!) { post(id: $id) { title author { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        read.data()["post"],
        json!({ "title": "Over TLS", "author": { "name": "alice" } })
    );
    app
}

/// Asserts that the server's pool connections all exist and all use TLS, or all do not.
async fn assert_pool_encrypted(postgres: &TlsPostgres, encrypted: bool) {
    let connections = postgres.encryption_of("festapi").await;
    assert!(!connections.is_empty(), "the pool has connections");
    assert!(
        connections.iter().all(|&ssl| ssl == encrypted),
        "{connections:?}"
    );
}

#[tokio::test]
async fn require_and_verify_full_serve_graphql_over_tls() {
    let postgres = TlsPostgres::with_certificate_for(&["localhost"]);

    let require = postgres.url("127.0.0.1", "sslmode=require");
    prepare(&require).await.unwrap();
    let app = app_serving_graphql(&require).await;
    assert_pool_encrypted(&postgres, true).await;
    drop(app);

    let verify_full = postgres.url(
        "localhost",
        &format!("sslmode=verify-full&{}", postgres.trusting_its_authority()),
    );
    prepare(&verify_full).await.unwrap();
    let _app = app_serving_graphql(&verify_full).await;
    assert_pool_encrypted(&postgres, true).await;
}

#[tokio::test]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_name() {
    let postgres = TlsPostgres::with_certificate_for(&["localhost"]);
    let trusted = postgres.trusting_its_authority();

    let error =
        refusal(&postgres.url("127.0.0.1", &format!("sslmode=verify-full&{trusted}"))).await;

    assert!(
        error.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{} (sslmode=verify-full): the server's \
             certificate is not valid for the host name 127.0.0.1 (it names localhost)",
            postgres.port
        )),
        "{error}"
    );
}

#[tokio::test]
async fn verify_ca_accepts_a_trusted_certificate_for_another_host_name() {
    let postgres = TlsPostgres::with_certificate_for(&["db.internal.example"]);
    let trusted = postgres.trusting_its_authority();

    let error =
        refusal(&postgres.url("localhost", &format!("sslmode=verify-full&{trusted}"))).await;
    assert!(
        error.contains("not valid for the host name localhost (it names db.internal.example)"),
        "{error}"
    );

    let verify_ca = postgres.url("localhost", &format!("sslmode=verify-ca&{trusted}"));
    prepare(&verify_ca).await.unwrap();
    let _app = app_serving_graphql(&verify_ca).await;
    assert_pool_encrypted(&postgres, true).await;
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_authority_is_refused() {
    let postgres = TlsPostgres::with_certificate_for(&["localhost"]);
    let stranger = postgres.file_with("stranger.pem", &TestAuthority::new("stranger").pem());
    let stranger = stranger.display();

    // Like libpq, require checks the chain as verify-ca does once sslrootcert names a file.
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = postgres.url(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={stranger}"),
        );
        let error = refusal(&url).await;
        assert!(
            error.contains(&format!(
                "(sslmode={mode}): the server's certificate is not signed by a trusted \
                 certificate authority (trusted: sslrootcert {stranger})"
            )),
            "{error}"
        );
    }

    let error = refusal(&postgres.url("localhost", "sslmode=verify-full")).await;
    assert!(
        error.contains(
            "not signed by a trusted certificate authority (trusted: Mozilla's root \
             certificates and the system's certificate store)"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn require_refuses_a_server_without_tls_and_prefer_falls_back_to_plain() {
    let postgres = TlsPostgres::without_tls();

    for mode in ["require", "verify-ca", "verify-full"] {
        let error = refusal(&postgres.url("localhost", &format!("sslmode={mode}"))).await;
        assert!(
            error.contains(&format!(
                "(sslmode={mode}): the server does not accept TLS connections, and \
                 sslmode={mode} allows no plain one"
            )),
            "{error}"
        );
    }

    let require = postgres.url("127.0.0.1", "sslmode=require");
    let output = festapi(&["migrate", "run"], &[("DATABASE_URL", &require)]);
    let message = stderr(&output);
    assert!(!output.status.success(), "{message}");
    assert_eq!(
        message.trim_end(),
        format!(
            "error: cannot connect to PostgreSQL at 127.0.0.1:{} (sslmode=require): the server \
             does not accept TLS connections, and sslmode=require allows no plain one",
            postgres.port
        )
    );

    // serve retries while PostgreSQL cannot be reached, but not past a refusal like this one.
    let started = Instant::now();
    let output = festapi(
        &["serve"],
        &[
            ("DATABASE_URL", &require),
            ("FESTAPI_ADDR", "127.0.0.1:0"),
            ("DATABASE_CONNECT_TIMEOUT_SECONDS", "60"),
        ],
    );
    let message = stderr(&output);
    assert!(!output.status.success(), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up after {:?}: {message}",
        started.elapsed()
    );
    assert!(
        message.contains("the server does not accept TLS connections"),
        "{message}"
    );

    // prefer is the default.
    for parameters in ["sslmode=prefer", ""] {
        let url = postgres.url("localhost", parameters);
        prepare(&url).await.unwrap();
        let app = app_serving_graphql(&url).await;
        assert_pool_encrypted(&postgres, false).await;
        drop(app);
    }
}

#[tokio::test]
async fn allow_turns_to_tls_when_the_server_refuses_a_plain_connection() {
    let postgres = TlsPostgres::with_certificate_for(&["localhost"]);
    postgres.refuse_plain_connections().await;

    let error = refusal(&postgres.url("127.0.0.1", "sslmode=disable")).await;
    assert!(
        error.contains("(sslmode=disable): db error: FATAL: pg_hba.conf rejects connection")
            && error.contains("no encryption"),
        "{error}"
    );

    let allow = postgres.url("127.0.0.1", "sslmode=allow");
    prepare(&allow).await.unwrap();
    let _app = app_serving_graphql(&allow).await;
    assert_pool_encrypted(&postgres, true).await;
}
