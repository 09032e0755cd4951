//! Finding a PostgreSQL server when no `DATABASE_URL` names one.
//!
//! The local server on 127.0.0.1:5432 is used when it answers. When nothing listens there, a
//! private cluster ([`LocalCluster`]) is made and started, provided PostgreSQL is installed. A
//! server that answers but refuses the connection is an error: quietly using another database
//! would hide the data the developer expects to see.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio_postgres::error::SqlState;

use super::local_postgres::{ClusterLease, LocalCluster, PostgresPrograms, SUPERUSER};

/// Where the local server is looked for: the address of the default `DATABASE_URL`.
pub const LOCAL_SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5432);

/// How long the local server may take to answer the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where to look for a server, and what to do when none answers.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The address of the server to try first.
    pub probe: SocketAddr,
    /// The folders PostgreSQL's programs are looked for in.
    pub program_folders: Vec<PathBuf>,
    /// The folder of the private cluster made when no server answers.
    pub cluster_folder: PathBuf,
    /// Extra `postgresql.conf` lines for that cluster.
    pub cluster_settings: Vec<String>,
}

impl Discovery {
    /// The local server first, then a cluster in `cluster_folder` run by the newest PostgreSQL
    /// on `PATH` or in the usual install folders.
    pub fn local(cluster_folder: PathBuf) -> Self {
        Self {
            probe: LOCAL_SERVER,
            program_folders: super::local_postgres::default_search_folders(),
            cluster_folder,
            cluster_settings: Vec::new(),
        }
    }
}

/// The server found.
#[derive(Debug)]
pub enum Discovered {
    /// A server answers at the probed address and accepts the superuser `postgres`.
    Server(SocketAddr),
    /// A private cluster, running while the lease is held.
    Cluster(ClusterLease),
}

impl Discovered {
    /// A connection URL for `database` on the server found.
    pub fn url(&self, database: &str) -> String {
        match self {
            Self::Server(address) => format!("postgres://{SUPERUSER}@{address}/{database}"),
            Self::Cluster(lease) => lease.url(database),
        }
    }
}

/// What the probed address said.
#[derive(Debug)]
enum Probe {
    /// A server answered and accepted the connection.
    Accepted,
    /// Nothing listens there.
    Silent(std::io::Error),
}

/// Finds a server as [`Discovery`] says, starting a private cluster when needed.
pub async fn discover(discovery: &Discovery) -> anyhow::Result<Discovered> {
    let reason = match probe(discovery.probe).await? {
        Probe::Accepted => return Ok(Discovered::Server(discovery.probe)),
        Probe::Silent(reason) => reason,
    };
    let discovery = discovery.clone();
    let lease = tokio::task::spawn_blocking(move || {
        let programs = PostgresPrograms::find_in(&discovery.program_folders)?;
        let mut cluster = LocalCluster::new(programs, &discovery.cluster_folder)?;
        for line in &discovery.cluster_settings {
            cluster = cluster.with_setting(line);
        }
        cluster.acquire()
    })
    .await
    .context("the task starting the local PostgreSQL failed")?
    .with_context(|| {
        format!(
            "no PostgreSQL answers on {} ({reason}), and the local PostgreSQL could not be \
             used",
            discovery.probe
        )
    })?;
    let cluster = lease.cluster();
    tracing::info!(
        folder = %cluster.folder().display(),
        version = %cluster.programs().version(),
        "no PostgreSQL answers on {}: using the local PostgreSQL in {} ({})",
        discovery.probe,
        cluster.folder().display(),
        if lease.started_here() {
            "started it"
        } else {
            "it was running"
        }
    );
    Ok(Discovered::Cluster(lease))
}

/// Tries the superuser's maintenance database at `address`.
async fn probe(address: SocketAddr) -> anyhow::Result<Probe> {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return Ok(Probe::Silent(error)),
        Err(_) => {
            return Ok(Probe::Silent(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within the probe's time",
            )));
        }
    }
    let mut config = tokio_postgres::Config::new();
    config
        .host(address.ip().to_string())
        .port(address.port())
        .user(SUPERUSER)
        .dbname("postgres")
        .connect_timeout(PROBE_TIMEOUT);
    match config.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            drop(client);
            let _ = connection.await;
            Ok(Probe::Accepted)
        }
        Err(error) if error.code() == Some(&SqlState::INVALID_CATALOG_NAME) => Ok(Probe::Accepted),
        Err(error) => bail!(
            "a server answers on {address} but refused the connection as user {SUPERUSER:?}: \
             {}. Set DATABASE_URL to a user and database it accepts, or stop it to use \
             a private PostgreSQL instead",
            error
                .as_db_error()
                .map_or_else(|| format!("{error:#}"), |db| db.message().to_owned())
        ),
    }
}
