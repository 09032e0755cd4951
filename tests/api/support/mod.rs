//! The test harness: a real server on a real socket, backed by a database of its own, and
//! clients that send real HTTP requests to it.

pub(crate) mod chromium;
pub(crate) mod database;
pub(crate) mod forwarder;
pub(crate) mod identity_provider;
pub(crate) mod logs;
pub(crate) mod otlp;
pub(crate) mod tls_postgres;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use festapi::config::Config;
use festapi::db::models::UserRow;
use festapi::domain::sessions::{self, SignIn, SignedIn};
use festapi::domain::users::{self, LOCAL_PROVIDER};
use festapi::lifecycle::Phase;
use festapi::{AppState, http};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub(crate) use database::{TableLock, TestDatabase, url_for};
pub(crate) use forwarder::Forwarder;
pub(crate) use logs::{ErrorLog, JsonLog};

/// The signing secret of test servers.
pub(crate) const TEST_JWT_SECRET: &str = "festapi-test-suite-secret-0123456789abcdef";
/// The `User-Agent` of the sessions the harness starts.
pub(crate) const TEST_USER_AGENT: &str = "festapi-tests";

/// A FestAPI server listening on an ephemeral port.
pub(crate) struct TestApp {
    /// The state the server runs with, for looking behind the API.
    pub state: AppState,
    /// The database, shared with other instances started with [`TestApp::another_instance`].
    pub database: Arc<TestDatabase>,
    address: SocketAddr,
    /// Where `/metrics` is served when `METRICS_ADDR` is set.
    metrics_address: Option<SocketAddr>,
    http: reqwest::Client,
    server: JoinHandle<()>,
    metrics_server: Option<JoinHandle<()>>,
    settings: HashMap<String, String>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(metrics_server) = &self.metrics_server {
            metrics_server.abort();
        }
    }
}

/// Settings for a [`TestApp`], as the environment variables a real deployment would set.
#[derive(Default)]
pub(crate) struct TestAppBuilder {
    settings: HashMap<String, String>,
}

impl TestAppBuilder {
    /// Sets an environment variable of the server's configuration.
    pub(crate) fn with_env(mut self, name: &str, value: &str) -> Self {
        self.settings.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Starts the server on a freshly migrated database.
    pub(crate) async fn start(self) -> TestApp {
        let database = Arc::new(TestDatabase::migrated().await);
        TestApp::start_on(database, self.settings).await
    }

    /// Starts the server on a freshly migrated database that it reaches through `forwarder`.
    pub(crate) async fn start_through(mut self, forwarder: &Forwarder) -> TestApp {
        let database = Arc::new(TestDatabase::migrated().await);
        self.settings
            .insert("DATABASE_URL".to_owned(), forwarder.url_for(&database.name));
        TestApp::start_on(database, self.settings).await
    }

    /// Starts the server on the database of `other`, as a differently configured replica.
    pub(crate) async fn start_beside(self, other: &TestApp) -> TestApp {
        TestApp::start_on(Arc::clone(&other.database), self.settings).await
    }
}

impl TestApp {
    /// A server with the default test settings.
    pub(crate) async fn new() -> Self {
        Self::builder().start().await
    }

    /// A server with settings of the test's choosing.
    pub(crate) fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// A server on an existing database, such as one a command created.
    pub(crate) async fn on_database(database: TestDatabase) -> Self {
        Self::start_on(Arc::new(database), HashMap::new()).await
    }

    /// A second server instance on the same database, as another replica would be.
    pub(crate) async fn another_instance(&self) -> Self {
        Self::start_on(Arc::clone(&self.database), self.settings.clone()).await
    }

    async fn start_on(database: Arc<TestDatabase>, settings: HashMap<String, String>) -> Self {
        let mut env: HashMap<String, String> = [
            ("APP_ENV", "test"),
            ("JWT_SECRET", TEST_JWT_SECRET),
            ("DATABASE_POOL_SIZE", "4"),
            // Every test client sends from 127.0.0.1: limits far above what any test sends keep
            // the limiter on every request's path without throttling one. Rate-limit tests set
            // their own.
            ("RATE_LIMIT_PER_IP_PER_MINUTE", "1000000"),
            ("RATE_LIMIT_PER_USER_PER_MINUTE", "1000000"),
            ("RATE_LIMIT_MUTATIONS_PER_MINUTE", "1000000"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        env.insert("DATABASE_URL".to_owned(), database.url.clone());
        env.extend(settings.clone());
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("a valid config");

        let state = AppState::new(&config).expect("the application state");
        // As `festapi serve` does once the database is ready; a provider that cannot be reached
        // stays not ready.
        state.providers.load().await;
        state.lifecycle.enter(Phase::Serving);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        let served = state.clone();
        let server = tokio::spawn(async move {
            http::serve(listener, served, std::future::pending())
                .await
                .expect("the test server");
        });
        // As `festapi serve` does: `/metrics` on a listener of its own.
        let (metrics_address, metrics_server) = match config.metrics_addr {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .expect("a free metrics port");
                let address = listener.local_addr().expect("a bound address");
                let served = state.clone();
                let server = tokio::spawn(async move {
                    http::serve_metrics(listener, served, std::future::pending())
                        .await
                        .expect("the test metrics server");
                });
                (Some(address), Some(server))
            }
            None => (None, None),
        };
        Self {
            state,
            database,
            address,
            metrics_address,
            http: reqwest::Client::new(),
            server,
            metrics_server,
            settings,
        }
    }

    /// The URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The URL of `/metrics` on the listener `METRICS_ADDR` started; `None` without one.
    pub(crate) fn metrics_url(&self) -> Option<String> {
        self.metrics_address
            .map(|address| format!("http://{address}/metrics"))
    }

    /// A client that sends no token.
    pub(crate) fn anonymous(&self) -> Client {
        self.client(None, None)
    }

    /// A client signed in as a new user named `name` (e-mail `name@example.test`), in a session
    /// of its own.
    pub(crate) async fn signed_in(&self, name: &str) -> Client {
        let user = self.create_user(name).await;
        self.client_of(self.start_session(user).await)
    }

    /// Starts a session for `user` as every sign-in does, from a client the tests name.
    pub(crate) async fn start_session(&self, user: UserRow) -> SignedIn {
        let sign_in = SignIn {
            provider: LOCAL_PROVIDER,
            user_agent: Some(TEST_USER_AGENT),
            ..SignIn::default()
        };
        self.start_session_as(user, &sign_in).await
    }

    /// Starts a session for `user` signed in as `sign_in` says.
    pub(crate) async fn start_session_as(&self, user: UserRow, sign_in: &SignIn<'_>) -> SignedIn {
        sessions::start_session(&self.state.database, &self.state.tokens, user, sign_in)
            .await
            .expect("a session")
    }

    /// A client that sends the access token of `signed_in` and knows its refresh token.
    pub(crate) fn client_of(&self, signed_in: SignedIn) -> Client {
        Client {
            refresh_token: Some(signed_in.refresh_token),
            session_id: Some(signed_in.session_id.to_string()),
            ..self.client(Some(signed_in.access_token), Some(signed_in.user))
        }
    }

    /// A client that sends `token`, whatever it is.
    pub(crate) fn with_token(&self, token: &str) -> Client {
        self.client(Some(token.to_owned()), None)
    }

    /// Creates (or finds) the user `name@example.test`.
    pub(crate) async fn create_user(&self, name: &str) -> UserRow {
        users::find_or_create_local(
            &self.state.database,
            &format!("{name}@example.test"),
            Some(name),
        )
        .await
        .expect("a user")
    }

    fn client(&self, token: Option<String>, user: Option<UserRow>) -> Client {
        Client {
            http: self.http.clone(),
            graphql_url: self.url("/graphql"),
            token,
            refresh_token: None,
            session_id: None,
            user,
        }
    }

    /// How many users, identities, sessions and refresh tokens are stored: what a sign-in
    /// creates, counted to prove that a refused one created nothing.
    pub(crate) async fn sign_in_rows(&self) -> SignInRows {
        let row = self
            .database
            .admin_client()
            .await
            .query_one(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM identities), \
                 (SELECT count(*) FROM sessions), (SELECT count(*) FROM refresh_tokens)",
                &[],
            )
            .await
            .expect("the counts");
        SignInRows {
            users: row.get(0),
            identities: row.get(1),
            sessions: row.get(2),
            refresh_tokens: row.get(3),
        }
    }

    /// How many SQL statements this instance has run so far.
    pub(crate) fn statements(&self) -> u64 {
        self.state.database.statements_started()
    }
}

/// How many rows of what a sign-in stores there are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SignInRows {
    /// Users.
    pub users: i64,
    /// Identities at providers.
    pub identities: i64,
    /// Sessions, ended or not.
    pub sessions: i64,
    /// Refresh tokens, rotated or not.
    pub refresh_tokens: i64,
}

impl SignInRows {
    /// `users` users with `identities` identities, signed in `sessions` times (each sign-in
    /// starts a session with one refresh token).
    pub(crate) fn signed_in(users: i64, identities: i64, sessions: i64) -> Self {
        Self {
            users,
            identities,
            sessions,
            refresh_tokens: sessions,
        }
    }
}

/// Sends GraphQL requests as one user, or anonymously.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    graphql_url: String,
    /// The bearer token sent, if any.
    pub token: Option<String>,
    /// The refresh token of the client's session, when the harness started one.
    pub refresh_token: Option<String>,
    /// The id of that session.
    pub session_id: Option<String>,
    /// The signed-in user, when the harness created it.
    pub user: Option<UserRow>,
}

impl Client {
    /// The signed-in user's id.
    pub(crate) fn user_id(&self) -> &str {
        self.user.as_ref().expect("a signed-in client").id.as_str()
    }

    /// POSTs `query` with `variables` to /graphql.
    pub(crate) async fn graphql(&self, query: &str, variables: Value) -> Reply {
        self.post_graphql(&json!({ "query": query, "variables": variables }))
            .await
    }

    /// Sends `query`, choosing its operation `operation_name`.
    pub(crate) async fn graphql_named(&self, query: &str, operation_name: &str) -> Reply {
        self.post_graphql(&json!({ "query": query, "operationName": operation_name }))
            .await
    }

    /// POSTs the GraphQL request `body`, with this client's token.
    async fn post_graphql(&self, body: &Value) -> Reply {
        let mut request = self.http.post(&self.graphql_url).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        Reply::from(request.send().await.expect("a response")).await
    }

    /// Creates a post and returns its id.
    pub(crate) async fn create_post(&self, title: &str, content: &str) -> String {
        let reply = self
            .graphql(
                "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
                json!({ "input": { "title": title, "content": content } }),
            )
            .await;
        reply.data()["createPost"]["id"]
            .as_str()
            .expect("a post id")
            .to_owned()
    }
}

/// An HTTP response to a GraphQL request.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The JSON body (`Value::Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    /// Reads a response.
    pub(crate) async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
        }
    }

    /// `data`, after checking the request succeeded without errors.
    pub(crate) fn data(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{:#}", self.body);
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {:#}",
            self.body
        );
        &self.body["data"]
    }

    /// The only error, after checking there is exactly one.
    pub(crate) fn error(&self) -> &Value {
        let errors = self.body["errors"].as_array().unwrap_or_else(|| {
            panic!("expected errors, got {:#}", self.body);
        });
        assert_eq!(errors.len(), 1, "{:#}", self.body);
        &errors[0]
    }

    /// `extensions.code` of the only error.
    pub(crate) fn error_code(&self) -> &str {
        self.error()["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("an error without a code: {:#}", self.body))
    }

    /// Asserts the only error has `code` and, for BAD_USER_INPUT, names `field`.
    pub(crate) fn assert_error(&self, code: &str, field: Option<&str>) {
        assert_eq!(self.error_code(), code, "{:#}", self.body);
        assert_eq!(
            self.error()["extensions"]["field"].as_str(),
            field,
            "{:#}",
            self.body
        );
    }
}
