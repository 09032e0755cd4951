//! The `festapi` binary, run as operators and containers run it.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::NoTls;

use crate::support::otlp::OtlpReceiver;
use crate::support::{TableLock, TestApp, TestDatabase};

/// Runs the `festapi` binary with `args` and no environment but `PATH` and `env`, outside the
/// repository so that no `.env` file is read.
pub(crate) fn festapi(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_festapi"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    // No .env file of the developer's may leak in.
    command.current_dir(std::env::temp_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the festapi binary runs")
}

/// What a run wrote to standard error.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn schema_command_prints_the_sdl() {
    let output = festapi(&["schema"], &[]);

    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        festapi::graphql::sdl()
    );
}

#[test]
fn bad_configuration_stops_start_up_with_one_line() {
    let cases: [(&[(&str, &str)], &str); 11] = [
        (&[("RUST_LOG", "festapi=loudest")], "RUST_LOG"),
        (
            &[("CORS_ALLOWED_ORIGINS", "app.example.com")],
            "CORS_ALLOWED_ORIGINS",
        ),
        (&[("DATABASE_POOL_SIZE", "lots")], "DATABASE_POOL_SIZE"),
        (
            &[("FESTAPI_ALLOW_NEWER_SCHEMA", "maybe")],
            "FESTAPI_ALLOW_NEWER_SCHEMA: expected true or false",
        ),
        (&[("DATABASE_URL", "not a url")], "DATABASE_URL"),
        (
            &[(
                "DATABASE_URL",
                "postgres://db.example.com/festapi?sslmode=verify",
            )],
            "sslmode \"verify\" is not one of",
        ),
        (&[("JWT_KEY_ID", "festapi-1")], "JWT_KEY_ID"),
        (&[("JWT_SECRET", "too-short")], "JWT_SECRET"),
        (&[("JWT_LEEWAY_SECONDS", "31")], "JWT_LEEWAY_SECONDS"),
        (&[("TRUSTED_PROXIES", "10.0.0.0/40")], "TRUSTED_PROXIES"),
        (
            &[("RATE_LIMIT_MUTATIONS_PER_MINUTE", "-1")],
            "RATE_LIMIT_MUTATIONS_PER_MINUTE",
        ),
    ];
    for (env, variable) in cases {
        let output = festapi(&["serve"], env);
        let message = stderr(&output);
        assert!(!output.status.success(), "{env:?}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            message.starts_with("error: invalid configuration: "),
            "{message}"
        );
        assert!(message.contains(variable), "{message}");
    }
}

#[test]
fn start_up_errors_in_production_are_a_json_line_like_the_logs() {
    let no_secret: &[(&str, &str)] = &[("APP_ENV", "production")];
    let short_secret: &[(&str, &str)] = &[("APP_ENV", "production"), ("JWT_SECRET", "too-short")];
    for env in [no_secret, short_secret] {
        let output = festapi(&["serve"], env);
        assert!(!output.status.success());
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        let line: serde_json::Value = serde_json::from_str(&message).expect("a JSON line");
        assert_eq!(line["level"], "ERROR", "{line}");
        assert_eq!(line["target"], "festapi", "{line}");
        assert!(
            line["timestamp"]
                .as_str()
                .is_some_and(|time| time.ends_with('Z')),
            "{line}"
        );
        let text = line["message"].as_str().unwrap();
        assert!(
            text.starts_with("invalid configuration: JWT_SECRET"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn request_spans_continue_the_callers_trace_and_reach_the_otlp_endpoint() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT_ID: &str = "00f067aa0ba902b7";
    let receiver = OtlpReceiver::start().await;
    let database = TestDatabase::unused();
    let server = ServedBinary::start(
        &database.url,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)],
    )
    .await;
    let response = reqwest::Client::new()
        .post(server.url("/graphql"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&json!({ "query": "{ posts { edges { cursor } } }" }))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    // Spans still buffered are exported before the process exits.
    server.terminate();
    let (status, logs) = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}: {logs}");
    let spans = receiver.spans();
    let request = spans
        .iter()
        .find(|span| hex(&span.trace_id) == TRACE_ID)
        .unwrap_or_else(|| panic!("a span of the caller's trace among {spans:?}"));
    assert_eq!(hex(&request.parent_span_id), PARENT_ID);
    assert_eq!(request.name, "POST");
    assert_eq!(
        request.kind,
        opentelemetry_proto::tonic::trace::v1::span::SpanKind::Server as i32
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn logs_written_to_a_pipe_carry_no_colours() {
    let database = TestDatabase::unused();
    let server = ServedBinary::start(&database.url, &[("APP_ENV", "development")]).await;
    server.terminate();
    let (status, logs) = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    assert!(logs.contains("FestAPI stopped"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "no ANSI escape codes: {logs:?}");
}

#[tokio::test]
async fn token_issue_creates_the_database_and_a_working_token() {
    let database = TestDatabase::unused();
    let url = database.url.clone();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("APP_ENV", "test"),
        ("JWT_SECRET", crate::support::TEST_JWT_SECRET),
    ];

    let output = festapi(
        &[
            "token",
            "issue",
            "--email",
            "Grace@Example.com",
            "--name",
            "Grace Hopper",
        ],
        &env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let again = festapi(
        &[
            "token",
            "issue",
            "--email",
            "grace@example.com",
            "--print-refresh-token",
        ],
        &env,
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let second_token = String::from_utf8_lossy(&again.stdout);
    assert_eq!(second_token.lines().count(), 1, "{second_token}");
    let refresh_token = stderr(&again)
        .lines()
        .find_map(|line| line.strip_prefix("refresh token: "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no refresh token in {}", stderr(&again)));
    assert!(
        !stderr(&output).contains("refresh token"),
        "printed only when asked"
    );

    let status = festapi(&["migrate", "status"], &env);
    let listing = String::from_utf8(status.stdout).unwrap();
    assert!(
        listing.lines().count() >= 3 && listing.lines().all(|line| line.starts_with("applied ")),
        "{listing}"
    );

    let app = TestApp::on_database(database).await;
    let reply = app
        .with_token(&token)
        .graphql("{ me { name email } }", json!({}))
        .await;
    assert_eq!(
        reply.data()["me"],
        json!({ "name": "Grace Hopper", "email": "Grace@Example.com" })
    );
    let users = app
        .with_token(&token)
        .graphql("{ users { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(users.data()["users"]["edges"].as_array().unwrap().len(), 1);
    // Each issue started a session of its own, which the refresh token of the second refreshes.
    let sessions = app
        .with_token(&token)
        .graphql("{ mySessions { userAgent current } }", json!({}))
        .await;
    assert_eq!(
        sessions.data()["mySessions"],
        json!([
            { "userAgent": "festapi token issue", "current": false },
            { "userAgent": "festapi token issue", "current": true },
        ])
    );
    let refreshed = app
        .anonymous()
        .graphql(
            "mutation($token: String!) { refreshToken(refreshToken: $token) { user { name } } }",
            json!({ "token": refresh_token }),
        )
        .await;
    assert_eq!(
        refreshed.data()["refreshToken"]["user"]["name"],
        "Grace Hopper"
    );

    let bad_email = festapi(&["token", "issue", "--email", "not-an-address"], &env);
    assert!(!bad_email.status.success());
    assert!(
        stderr(&bad_email).contains("email"),
        "{}",
        stderr(&bad_email)
    );
}

/// A port nothing listens on at `host` now.
pub(crate) fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `festapi serve` process, run as the container runs it.
pub(crate) struct ServedBinary {
    process: std::process::Child,
    address: String,
    /// Everything the process has written to standard error so far.
    logs: Arc<Mutex<String>>,
    /// Reads standard error into `logs` until the process closes it.
    log_reader: Option<std::thread::JoinHandle<()>>,
}

impl ServedBinary {
    /// Starts `festapi serve` in production mode on a free port and waits until it is ready.
    pub(crate) async fn start(database_url: &str, settings: &[(&str, &str)]) -> Self {
        let served = Self::launch(database_url, settings);
        served.wait_until_ready(Duration::from_secs(10)).await;
        served
    }

    /// Starts `festapi serve` in production mode on a free port, without waiting for anything.
    ///
    /// The shutdown grace is 0 unless `settings` say otherwise: the tests about it set it.
    pub(crate) fn launch(database_url: &str, settings: &[(&str, &str)]) -> Self {
        // reqwest runs on rustls without a default crypto provider; no in-process server, which
        // would install it, has been started when only binaries are tested.
        festapi::auth::providers::install_tls_crypto_provider();
        let address = format!("127.0.0.1:{}", free_port("127.0.0.1"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_festapi"));
        command
            .arg("serve")
            .env_clear()
            .env("APP_ENV", "production")
            .env("JWT_SECRET", crate::support::TEST_JWT_SECRET)
            .env("DATABASE_URL", database_url)
            .env("FESTAPI_ADDR", &address)
            .env("SHUTDOWN_GRACE_SECONDS", "0")
            .current_dir(std::env::temp_dir());
        for (name, value) in settings {
            command.env(name, value);
        }
        Self::spawn(&mut command, address)
    }

    /// Starts `command`, a server that will listen on `address`, keeping its standard error.
    pub(crate) fn spawn(command: &mut Command, address: String) -> Self {
        let mut process = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = process.stderr.take().unwrap();
        let log_reader = std::thread::spawn({
            let logs = Arc::clone(&logs);
            move || {
                for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                    let Ok(line) = line else { break };
                    let mut logs = logs.lock().unwrap();
                    logs.push_str(&line);
                    logs.push('\n');
                }
            }
        });
        Self {
            process,
            address,
            logs,
            log_reader: Some(log_reader),
        }
    }

    /// The server's process id.
    pub(crate) fn id(&self) -> u32 {
        self.process.id()
    }

    /// Polls `/readyz` until it answers 200, for at most `limit`.
    pub(crate) async fn wait_until_ready(&self, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some((status, _)) = self.probe("/readyz").await
                && status.is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the server did not become ready within {limit:?}:\n{}",
            self.logs()
        );
    }

    /// The status and JSON body of `GET path`, or `None` while nothing answers on the port.
    pub(crate) async fn probe(
        &self,
        path: &str,
    ) -> Option<(reqwest::StatusCode, serde_json::Value)> {
        let response = reqwest::get(self.url(path)).await.ok()?;
        let status = response.status();
        Some((status, response.json().await.unwrap_or_default()))
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Whether a new TCP connection to the server's port is accepted.
    pub(crate) async fn accepts_connections(&self) -> bool {
        tokio::net::TcpStream::connect(&self.address).await.is_ok()
    }

    /// What the process has logged so far.
    pub(crate) fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub(crate) fn terminate(&self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }

    /// Waits for the process to exit, for at most `limit`; returns its status and logs.
    pub(crate) async fn exit_within(
        mut self,
        limit: Duration,
    ) -> (std::process::ExitStatus, String) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.process.try_wait().unwrap() {
                if let Some(reader) = self.log_reader.take() {
                    reader.join().unwrap();
                }
                return (status, self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not stop within {limit:?}:\n{}", self.logs());
    }
}

impl Drop for ServedBinary {
    /// A test that failed half-way leaves no server behind.
    fn drop(&mut self) {
        if matches!(self.process.try_wait(), Ok(None)) {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

#[tokio::test]
async fn serve_runs_as_in_a_container_and_stops_cleanly_on_sigterm() {
    let database = TestDatabase::unused();
    let server = ServedBinary::start(&database.url, &[]).await;

    server.terminate();

    let (status, logs) = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    assert!(logs.contains("shutting down"), "{logs}");
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "production logs are JSON lines: {line}"
        );
    }
}

/// Asks `server` for its posts, in a task of its own.
pub(crate) fn posts_request(
    server: &ServedBinary,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let url = server.url("/graphql");
    tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({ "query": "{ posts { edges { cursor } } }" }))
            .send()
            .await
    })
}

#[tokio::test]
async fn requests_in_flight_finish_after_sigterm_within_the_shutdown_timeout() {
    let database = TestDatabase::unused();
    let slow = [
        ("REQUEST_TIMEOUT_MS", "60000"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "60000"),
    ];
    let server = ServedBinary::start(&database.url, &slow).await;
    let lock = TableLock::take(&database.url, "posts").await;
    let in_flight = posts_request(&server);
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.release().await;

    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let (status, _) = server.exit_within(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_in_flight_after_the_shutdown_timeout() {
    let database = TestDatabase::unused();
    let slow = [
        ("REQUEST_TIMEOUT_MS", "60000"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "60000"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "1"),
    ];
    let server = ServedBinary::start(&database.url, &slow).await;
    let _lock = TableLock::take(&database.url, "posts").await;
    let stuck = posts_request(&server);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    server.terminate();
    let (status, logs) = server.exit_within(Duration::from_secs(5)).await;

    assert!(status.success(), "{status}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(logs.contains("SHUTDOWN_TIMEOUT_SECONDS"), "{logs}");
    assert!(
        stuck.await.unwrap().is_err(),
        "the stuck request's connection is closed"
    );
}

#[tokio::test]
async fn migrate_status_and_revert_create_no_missing_database() {
    let database = TestDatabase::unused();
    let env = [("DATABASE_URL", database.url.as_str()), ("APP_ENV", "test")];

    let status = festapi(&["migrate", "status"], &env);
    assert!(status.status.success(), "{}", stderr(&status));
    let listing = String::from_utf8(status.stdout).unwrap();
    assert!(
        listing.lines().count() >= 3 && listing.lines().all(|line| line.starts_with("pending ")),
        "{listing}"
    );
    let revert = festapi(&["migrate", "revert"], &env);
    assert!(!revert.status.success());
    assert!(
        stderr(&revert).contains("does not exist"),
        "{}",
        stderr(&revert)
    );

    let (client, connection) =
        tokio_postgres::connect(&crate::support::database::url_for("postgres"), NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let found = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&database.name],
        )
        .await
        .unwrap();
    assert!(found.is_none(), "{} was created", database.name);
}
