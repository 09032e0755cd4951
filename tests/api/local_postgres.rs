//! The private PostgreSQL used when no `DATABASE_URL` is set and no server answers: real
//! clusters made by the installed PostgreSQL, each in a temporary folder of its own, probed at
//! ports where nothing listens.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use festapi::db::discovery::{self, Discovered, Discovery};
use festapi::db::local_postgres::{LocalCluster, PostgresPrograms, Released};
use serde_json::json;
use tempfile::TempDir;
use tokio_postgres::NoTls;

use crate::cli::{ServedBinary, posts_request};
use crate::support::tls_postgres::folder_postgres_can_reach;

/// A temporary folder the cluster's system user can reach when the tests run as root.
pub(crate) fn temporary_folder() -> TempDir {
    folder_postgres_can_reach("festapi-local-postgres-")
}

/// A loopback address where nothing listens.
fn silent_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn discovery_in(cluster_folder: PathBuf) -> Discovery {
    Discovery {
        probe: silent_address(),
        ..Discovery::local(cluster_folder)
    }
}

fn cluster_of(discovered: Discovered) -> festapi::db::local_postgres::ClusterLease {
    match discovered {
        Discovered::Cluster(lease) => lease,
        Discovered::Server(address) => panic!("a server answered on {address}"),
    }
}

/// The user id the process `pid` runs as.
fn user_of_process(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .unwrap_or_else(|| panic!("no Uid line in {status}"))
}

#[tokio::test]
async fn with_no_server_answering_a_private_cluster_serves_and_the_last_user_stops_it() {
    let folder = temporary_folder();
    let cluster_folder = folder.path().join("postgres");

    let first = cluster_of(
        discovery::discover(&discovery_in(cluster_folder.clone()))
            .await
            .unwrap(),
    );
    assert!(first.started_here());
    let socket = cluster_folder.join(".s.PGSQL.5432");
    assert!(
        socket.exists(),
        "the server listens on {}",
        socket.display()
    );
    let pid = first.cluster().server_pid().expect("a running server");

    // The binary creates its database and migrates through the socket, then serves.
    let url = first.url("festapi");
    let server = ServedBinary::start(&url, &[]).await;
    let reply: serde_json::Value = posts_request(&server)
        .await
        .unwrap()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply, json!({ "data": { "posts": { "edges": [] } } }));
    server.terminate();
    let (status, logs) = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{logs}");

    // A second process finds it running and shares it.
    let second = cluster_of(
        discovery::discover(&discovery_in(cluster_folder.clone()))
            .await
            .unwrap(),
    );
    assert!(!second.started_here());
    assert_eq!(second.cluster().server_pid(), Some(pid));

    assert_eq!(first.release().unwrap(), Released::LeftRunning);
    let (client, connection) = tokio_postgres::connect(&second.url("festapi"), NoTls)
        .await
        .expect("still running for the second user");
    let driver = tokio::spawn(connection);
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'posts'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "the served binary migrated the database");
    drop(client);
    driver.await.unwrap().unwrap();

    assert_eq!(second.release().unwrap(), Released::Stopped);
    assert!(!socket.exists(), "the server stopped");
    assert_eq!(
        LocalCluster::new(PostgresPrograms::find().unwrap(), &cluster_folder)
            .unwrap()
            .server_pid(),
        None
    );
}

/// Runs a cluster operation, which waits on PostgreSQL's programs, off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    operation: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(operation)
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("{error:#}"))
}

/// Connects to `url`, or says why not.
async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn a_cluster_stopped_and_started_again_keeps_its_data_and_serves_any_database_name() {
    let folder = temporary_folder();
    let lease = cluster_of(
        discovery::discover(&discovery_in(folder.path().join("postgres")))
            .await
            .unwrap(),
    );
    // The test support names each database by setting the URL's path, as here.
    let mut url = url::Url::parse(&lease.url("postgres")).unwrap();
    url.set_path("template1");
    let client = connect(url.as_str()).await.unwrap();
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "template1");
    client
        .batch_execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
        .await
        .unwrap();
    drop(client);

    let cluster = lease.cluster().clone();
    blocking(move || cluster.stop_server()).await;
    assert!(
        connect(url.as_str()).await.is_err(),
        "the server is stopped"
    );
    let cluster = lease.cluster().clone();
    blocking(move || cluster.start_server()).await;

    let client = connect(url.as_str()).await.unwrap();
    let row = client
        .query_one("SELECT note FROM kept", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "still here");
    drop(client);
    assert_eq!(lease.release().unwrap(), Released::Stopped);
}

#[tokio::test]
async fn as_root_the_cluster_runs_as_the_postgres_system_user() {
    let folder = temporary_folder();
    let cluster_folder = folder.path().join("postgres");
    let cluster = LocalCluster::new(PostgresPrograms::find().unwrap(), &cluster_folder).unwrap();
    let lease = blocking(move || cluster.acquire()).await;

    let expected = if nix::unistd::geteuid().is_root() {
        nix::unistd::User::from_name("postgres")
            .unwrap()
            .expect("a postgres system user on this machine")
            .uid
            .as_raw()
    } else {
        nix::unistd::geteuid().as_raw()
    };
    let pid = lease.cluster().server_pid().unwrap();
    assert_eq!(user_of_process(pid), expected);
    let data = std::fs::metadata(lease.cluster().data_folder()).unwrap();
    assert_eq!(data.uid(), expected);
    assert_eq!(data.mode() & 0o077, 0, "the data folder is private");
    assert_eq!(
        std::fs::metadata(&cluster_folder).unwrap().mode() & 0o077,
        0,
        "the socket's folder is private"
    );
    assert_eq!(lease.release().unwrap(), Released::Stopped);

    // With no such system user, root is told why it cannot run the cluster.
    if nix::unistd::geteuid().is_root() {
        let other = folder.path().join("other");
        let refused = LocalCluster::new(PostgresPrograms::find().unwrap(), &other)
            .unwrap()
            .with_system_user("festapi-no-such-user")
            .acquire()
            .unwrap_err();
        let message = format!("{refused:#}");
        assert!(message.contains("refuses to run as root"), "{message}");
        assert!(message.contains("festapi-no-such-user"), "{message}");
    }
}

#[tokio::test]
async fn without_postgres_installed_one_message_says_what_to_install_or_set() {
    let folder = temporary_folder();
    let empty = folder.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let cluster_folder = folder.path().join("postgres");
    let discovery = Discovery {
        program_folders: vec![empty],
        ..discovery_in(cluster_folder.clone())
    };

    let error = discovery::discover(&discovery).await.unwrap_err();

    let message = format!("{error:#}");
    assert!(message.contains("no PostgreSQL answers on"), "{message}");
    assert!(message.contains("not installed"), "{message}");
    assert!(message.contains("Install PostgreSQL"), "{message}");
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(!cluster_folder.exists(), "nothing was made");
}

/// Writes an authentication file that admits the socket and rejects TCP from loopback.
fn rejecting_hba_file(folder: &Path) -> PathBuf {
    let path = folder.join("reject_hba.conf");
    std::fs::write(
        &path,
        "local all all trust\nhost all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

#[tokio::test]
async fn a_server_that_answers_but_refuses_is_reported_with_no_fallback() {
    let folder = temporary_folder();
    let address = silent_address();
    let hba = rejecting_hba_file(folder.path());
    let refusing = LocalCluster::new(
        PostgresPrograms::find().unwrap(),
        &folder.path().join("refusing"),
    )
    .unwrap()
    .with_setting("listen_addresses = '127.0.0.1'")
    .with_setting(&format!("port = {}", address.port()))
    .with_setting(&format!("hba_file = '{}'", hba.display()));
    let refusing = blocking(move || refusing.acquire()).await;

    let fallback_folder = folder.path().join("postgres");
    let discovery = Discovery {
        probe: address,
        ..Discovery::local(fallback_folder.clone())
    };
    let error = discovery::discover(&discovery).await.unwrap_err();

    let message = format!("{error:#}");
    assert!(
        message.contains(&format!("answers on {address} but refused")),
        "{message}"
    );
    assert!(message.contains("pg_hba.conf rejects"), "{message}");
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(!fallback_folder.exists(), "no private cluster was made");
    assert_eq!(refusing.release().unwrap(), Released::Stopped);
}

/// `festapi` with no `DATABASE_URL`, in a network namespace of its own, where nothing listens on
/// 127.0.0.1:5432; `None` where namespaces cannot be made (they need root).
fn festapi_where_nothing_listens(folder: &Path, args: &[&str]) -> Option<Command> {
    let usable = Command::new("unshare")
        .args(["--net", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !usable {
        eprintln!("skipped: `unshare --net` is not available here (it needs root)");
        return None;
    }
    let mut command = Command::new("unshare");
    command
        .args(["--net", "--", env!("CARGO_BIN_EXE_festapi")])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "test")
        .env("JWT_SECRET", crate::support::TEST_JWT_SECRET)
        .env("LOCAL_POSTGRES_DIR", folder)
        // Only loopback exists in the namespace, and it is down; this address cannot be bound.
        .env("FESTAPI_ADDR", "[2001:db8::1]:8000")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    Some(command)
}

#[test]
fn every_command_without_database_url_runs_on_the_private_cluster_and_stops_it() {
    let folder = temporary_folder();
    let cluster_folder = folder.path().join("postgres");
    let socket = cluster_folder.join(".s.PGSQL.5432");

    let Some(mut migrate) = festapi_where_nothing_listens(&cluster_folder, &["migrate", "run"])
    else {
        return;
    };
    let migrated = migrate.output().unwrap();
    let logs = String::from_utf8_lossy(&migrated.stderr);
    assert!(migrated.status.success(), "{logs}");
    let using = format!(
        "no PostgreSQL answers on 127.0.0.1:5432: using the local PostgreSQL in {}",
        cluster_folder.display()
    );
    assert_eq!(logs.matches(&using).count(), 1, "{logs}");
    assert!(logs.contains("stopped the local PostgreSQL"), "{logs}");
    assert!(
        String::from_utf8_lossy(&migrated.stdout).starts_with("applied "),
        "{logs}"
    );
    assert!(!socket.exists(), "stopped at exit");

    let listed = festapi_where_nothing_listens(&cluster_folder, &["migrate", "status"])
        .unwrap()
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success());
    assert!(
        listing.lines().count() >= 3 && listing.lines().all(|line| line.starts_with("applied ")),
        "the cluster kept its data between runs: {listing}"
    );
    assert!(!socket.exists(), "stopped at exit");

    // A start-up that fails after the cluster started stops it too.
    let failed = festapi_where_nothing_listens(&cluster_folder, &["serve"])
        .unwrap()
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(logs.contains("FESTAPI_ADDR: cannot listen"), "{logs}");
    assert!(logs.contains("stopped the local PostgreSQL"), "{logs}");
    assert!(!socket.exists(), "stopped after the failed start-up");
}

/// Waits until process `pid` handles SIGTERM itself, as the server does once it serves.
fn wait_until_catching_sigterm(pid: u32) {
    const SIGTERM_BIT: u64 = 1 << (15 - 1);
    for _ in 0..200 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let caught = status
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        if caught & SIGTERM_BIT != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the server never started handling SIGTERM");
}

#[test]
fn serve_without_database_url_stops_the_private_cluster_on_sigterm() {
    let folder = temporary_folder();
    let cluster_folder = folder.path().join("postgres");
    let Some(mut serve) = festapi_where_nothing_listens(&cluster_folder, &["serve"]) else {
        return;
    };
    // Any address binds in the namespace; nothing outside it can reach this one.
    serve
        .env("FESTAPI_ADDR", "127.0.0.1:8000")
        .stderr(Stdio::piped());
    let mut process = serve.spawn().unwrap();
    let lines = BufReader::new(process.stderr.take().unwrap()).lines();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut logs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !logs
        .iter()
        .any(|line: &String| line.contains("FestAPI is listening"))
    {
        let wait = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait) {
            Ok(line) => logs.push(line),
            Err(_) => {
                process.kill().unwrap();
                panic!("the server did not start: {}", logs.join("\n"));
            }
        }
    }
    let socket = cluster_folder.join(".s.PGSQL.5432");
    assert!(socket.exists(), "the cluster runs while the server does");
    wait_until_catching_sigterm(process.id());

    let terminated = Command::new("kill")
        .args(["-TERM", &process.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = process.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            process.kill().unwrap();
            panic!("the server did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    logs.extend(receiver.iter());
    let logs = logs.join("\n");
    assert!(status.success(), "{logs}");
    assert!(logs.contains("stopped the local PostgreSQL"), "{logs}");
    assert!(!socket.exists(), "the cluster stopped with the server");
}
