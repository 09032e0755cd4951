//! A fresh PostgreSQL database per test.
//!
//! The first test of a run builds a template database with the server's own migration code, under
//! an advisory lock so concurrent test processes build it once; its name carries a hash of the
//! migrations, so a change to them builds a new one. Each test then clones the template, which
//! takes milliseconds, and drops its clone when done.
//!
//! The server is `TEST_DATABASE_URL`'s, or else the local one on 127.0.0.1:5432, or else, when
//! nothing answers there, a private cluster (see [`festapi::db::local_postgres`]) in
//! `target/tmp/festapi-postgres`. A run starts that cluster once and leaves it running when it
//! exits, for the next run to use at once; `pg_ctl stop -D target/tmp/festapi-postgres/data`
//! (as the `postgres` user when root) stops it, and removing the folder forgets it.

use std::path::Path;
use std::str::FromStr as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use festapi::db::discovery::{self, Discovered, Discovery};
use festapi::db::local_postgres::ClusterLease;
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

/// Serializes template builds across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x0066_6573_7469_6d70;
/// Test databases older than this are leftovers of an aborted run.
const LEFTOVER_AGE: Duration = Duration::from_secs(2 * 60 * 60);
const TEST_DATABASE_PREFIX: &str = "festapi_test_";
const TEMPLATE_PREFIX: &str = "festapi_template_";

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
/// The test server's URL, found once per run.
static SERVER_URL: OnceLock<String> = OnceLock::new();
/// The private cluster's lease, when the run uses one: never dropped, so the cluster outlives
/// the run.
static LOCAL_CLUSTER: OnceLock<ClusterLease> = OnceLock::new();

/// A database that exists for one test and is dropped with this value.
#[derive(Debug)]
pub(crate) struct TestDatabase {
    /// The database name.
    pub name: String,
    /// A connection URL for it.
    pub url: String,
}

impl TestDatabase {
    /// A database with every migration applied.
    pub(crate) async fn migrated() -> Self {
        let template = TEMPLATE.get_or_init(build_template).await;
        Self::create(Some(template)).await
    }

    /// A database with no tables at all.
    pub(crate) async fn empty() -> Self {
        Self::create(None).await
    }

    /// A name for a database that does not exist yet; dropped afterwards if something created it.
    pub(crate) fn unused() -> Self {
        let name = unique_name();
        Self {
            url: url_for(&name),
            name,
        }
    }

    /// A direct connection to this database, outside any server's pool, as an operator's would be.
    pub(crate) async fn admin_client(&self) -> Client {
        let config = tokio_postgres::Config::from_str(&self.url).expect("a valid URL");
        let (client, connection) = config.connect(NoTls).await.expect("a test database");
        tokio::spawn(connection);
        client
    }

    async fn create(template: Option<&str>) -> Self {
        let name = unique_name();
        let client = admin_client().await;
        let statement = match template {
            Some(template) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        client
            .batch_execute(&statement)
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
        Self {
            url: url_for(&name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(error) = execute_from_drop(statement) {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// Runs `statement` on the test server's maintenance database, from a `Drop` implementation:
/// drop runs outside any async context guarantee, so this uses a runtime of its own.
pub(crate) fn execute_from_drop(statement: String) -> Result<(), tokio_postgres::Error> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime to clean up with");
        runtime.block_on(async { admin_client().await.batch_execute(&statement).await })
    })
    .join()
    .expect("the clean-up thread")
}

fn server_url() -> String {
    SERVER_URL
        .get_or_init(|| {
            std::env::var("TEST_DATABASE_URL")
                .ok()
                .filter(|url| !url.trim().is_empty())
                .unwrap_or_else(find_test_server)
        })
        .clone()
}

/// The local server when it answers, or else the suite's private cluster.
fn find_test_server() -> String {
    let found = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime to find the test server");
        let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("festapi-postgres");
        let discovery = Discovery {
            // Tests start and drop many databases; durability across crashes is not needed.
            cluster_settings: vec!["fsync = off".to_owned()],
            ..Discovery::local(folder)
        };
        runtime
            .block_on(discovery::discover(&discovery))
            .unwrap_or_else(|error| panic!("no PostgreSQL for the tests: {error:#}"))
    })
    .join()
    .expect("finding the test server");
    let url = found.url("postgres");
    if let Discovered::Cluster(lease) = found {
        let _ = LOCAL_CLUSTER.set(lease);
    }
    url
}

/// The TCP address of the test server.
pub(crate) fn server_address() -> std::net::SocketAddr {
    let url = url::Url::parse(&server_url()).expect("TEST_DATABASE_URL is a URL");
    let host = url.host_str().expect("TEST_DATABASE_URL names a host");
    let port = url.port().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()
        .and_then(|mut addresses| addresses.next())
        .expect("TEST_DATABASE_URL's host resolves")
}

/// The connection URL of database `name` on the test server.
pub(crate) fn url_for(name: &str) -> String {
    let mut url = url::Url::parse(&server_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_path(name);
    url.to_string()
}

fn unique_name() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{TEST_DATABASE_PREFIX}{seconds}_{}", &random[..12])
}

/// A connection to the test server's maintenance database.
pub(crate) async fn admin_client() -> Client {
    let config = tokio_postgres::Config::from_str(&url_for("postgres")).expect("a valid URL");
    let (client, connection) = config
        .connect(NoTls)
        .await
        .expect("the test server accepts connections");
    tokio::spawn(connection);
    client
}

/// The hash of every file under `migrations/`, so a change to any of them means a new template.
fn migrations_hash() -> String {
    fn visit(directory: &Path, hasher: &mut Sha256) {
        let mut entries: Vec<_> = std::fs::read_dir(directory)
            .expect("migrations/ is readable")
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                visit(&path, hasher);
            } else {
                hasher.update(path.to_string_lossy().as_bytes());
                hasher.update(std::fs::read(&path).expect("a readable migration file"));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut hasher = Sha256::new();
    visit(&root, &mut hasher);
    let digest = hasher.finalize();
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Builds the template for the current migrations unless it exists, and sweeps leftovers.
async fn build_template() -> String {
    let template = format!("{TEMPLATE_PREFIX}{}", migrations_hash());
    let client = admin_client().await;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("the template lock");

    sweep_leftovers(&client).await;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .expect("looking up the template")
        .is_some();
    if !exists {
        let building = format!("{template}_building");
        for statement in [
            format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{building}\""),
        ] {
            client
                .batch_execute(&statement)
                .await
                .expect("creating the template");
        }
        festapi::db::migrations::run_pending(&url_for(&building))
            .await
            .expect("migrating the template");
        rename_when_idle(&client, &building, &template).await;
    }

    client
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("releasing the template lock");
    template
}

/// Renames a database once the connection that migrated it has gone.
async fn rename_when_idle(client: &Client, from: &str, to: &str) {
    let statement = format!("ALTER DATABASE \"{from}\" RENAME TO \"{to}\"");
    for _ in 0..100 {
        match client.batch_execute(&statement).await {
            Ok(()) => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("{statement}: the database stayed in use");
}

/// Drops test databases left by aborted runs.
///
/// Templates of other migration versions stay: a concurrent run of another checkout may be
/// cloning one, and there is one per change to the migrations only.
async fn sweep_leftovers(client: &Client) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let rows = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'festapi\\_test\\_%'",
            &[],
        )
        .await
        .expect("listing databases");
    for row in rows {
        let name: String = row.get(0);
        let stale = name
            .strip_prefix(TEST_DATABASE_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|seconds| seconds.parse::<u64>().ok())
            .is_some_and(|created| now.saturating_sub(created) > LEFTOVER_AGE.as_secs());
        if stale {
            // A leftover still in use by a hung run is not forced; a later sweep retries.
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await;
        }
    }
}

/// Runs `statements` on the database at `url`, on a connection of their own.
pub(crate) async fn execute(url: &str, statements: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    client.batch_execute(statements).await.unwrap();
    drop(client);
    driver.await.unwrap().unwrap();
}

/// An exclusive lock on a table, held until released or dropped, so that requests touching the
/// table wait.
pub(crate) struct TableLock {
    client: Client,
}

impl TableLock {
    /// Locks `table` of the database at `url`.
    pub(crate) async fn take(url: &str, table: &str) -> Self {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
            ))
            .await
            .unwrap();
        Self { client }
    }

    /// Releases the lock.
    pub(crate) async fn release(self) {
        self.client.batch_execute("ROLLBACK").await.unwrap();
    }
}
