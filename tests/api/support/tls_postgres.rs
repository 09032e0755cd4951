//! A private PostgreSQL speaking TLS on a loopback TCP port (PostgreSQL never speaks it over a
//! Unix socket), with a certificate authority and server certificate made by the test.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use festapi::db::local_postgres::{ClusterLease, LocalCluster, PostgresPrograms};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tempfile::TempDir;

/// A certificate authority of the test's own, trusted by nobody else.
pub(crate) struct TestAuthority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestAuthority {
    /// A new authority; `name` goes into its subject.
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The authority's certificate, in PEM: what `sslrootcert` names.
    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (its subject alternative names) and its private key,
    /// both in PEM.
    fn server_certificate(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let certificate = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (certificate.pem(), key.serialize_pem())
    }
}

/// A running private PostgreSQL on 127.0.0.1, stopped and removed when dropped.
pub(crate) struct TlsPostgres {
    /// The port it listens on.
    pub port: u16,
    /// A file holding the certificate of the authority that signed the server's, when it
    /// speaks TLS.
    pub authority_file: PathBuf,
    /// Stops the server when dropped, before its folder goes.
    lease: ClusterLease,
    folder: TempDir,
}

impl TlsPostgres {
    /// A server with `ssl = on` and a certificate for `names`, signed by a new authority.
    pub(crate) fn with_certificate_for(names: &[&str]) -> Self {
        let authority = TestAuthority::new("festapi test authority");
        let (certificate, key) = authority.server_certificate(names);
        let folder = folder_postgres_can_reach("festapi-tls-");
        let write = |name: &str, contents: &str| {
            let path = folder.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        let authority_file = write("authority.pem", &authority.pem());
        let certificate_file = write("server.pem", &certificate);
        let key_file = write("server.key", &key);
        // PostgreSQL reads its key only when no one else may.
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        give_to_postgres(&[&certificate_file, &key_file]);
        let settings = [
            "ssl = on".to_owned(),
            format!("ssl_cert_file = '{}'", certificate_file.display()),
            format!("ssl_key_file = '{}'", key_file.display()),
        ];
        Self::start(folder, authority_file, &settings)
    }

    /// A server with `ssl = off`.
    pub(crate) fn without_tls() -> Self {
        let folder = folder_postgres_can_reach("festapi-tls-");
        let authority_file = folder.path().join("authority.pem");
        Self::start(folder, authority_file, &["ssl = off".to_owned()])
    }

    fn start(folder: TempDir, authority_file: PathBuf, settings: &[String]) -> Self {
        let port = free_port();
        let programs = PostgresPrograms::find().expect("PostgreSQL's server programs");
        let mut cluster = LocalCluster::new(programs, &folder.path().join("cluster"))
            .unwrap()
            .with_setting("listen_addresses = '127.0.0.1'")
            .with_setting(&format!("port = {port}"));
        for line in settings {
            cluster = cluster.with_setting(line);
        }
        let lease = cluster.acquire().expect("a private PostgreSQL");
        Self {
            port,
            authority_file,
            lease,
            folder,
        }
    }

    /// A `DATABASE_URL` for database `festapi` on this server through `host` (`localhost` or
    /// `127.0.0.1`), with `parameters` as its query.
    pub(crate) fn url(&self, host: &str, parameters: &str) -> String {
        let url = format!("postgres://postgres@{host}:{}/festapi", self.port);
        if parameters.is_empty() {
            url
        } else {
            format!("{url}?{parameters}")
        }
    }

    /// Writes a file beside the server, removed with it.
    pub(crate) fn file_with(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.folder.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The `sslrootcert` parameter naming the authority that signed the server's certificate.
    pub(crate) fn trusting_its_authority(&self) -> String {
        format!("sslrootcert={}", self.authority_file.display())
    }

    /// Makes the server refuse plain TCP connections (`hostnossl ... reject` in
    /// `pg_hba.conf`), as a server that insists on TLS does.
    pub(crate) async fn refuse_plain_connections(&self) {
        let administrator = self.administrator().await;
        let rules = "local all all trust\n\
                     hostssl all all 127.0.0.1/32 trust\n\
                     hostnossl all all 127.0.0.1/32 reject\n";
        std::fs::write(
            self.lease.cluster().data_folder().join("pg_hba.conf"),
            rules,
        )
        .unwrap();
        administrator
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .unwrap();
    }

    /// Whether each connection the server runs under `application_name` is encrypted.
    pub(crate) async fn encryption_of(&self, application_name: &str) -> Vec<bool> {
        self.administrator()
            .await
            .query(
                "SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
                 WHERE application_name = $1",
                &[&application_name],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// A connection of the test's own to the server, plain unless the server refuses that.
    async fn administrator(&self) -> tokio_postgres::Client {
        let connector = festapi::db::connector::Connector::new(&format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=allow",
            self.port
        ))
        .unwrap();
        let Ok((client, connection)) = connector.connect().await else {
            panic!(
                "the test's own connection to the server on port {}",
                self.port
            );
        };
        tokio::spawn(connection);
        client
    }
}

/// A temporary folder that the system user private clusters run as when the tests run as root
/// (`postgres`) can reach.
pub(crate) fn folder_postgres_can_reach(prefix: &str) -> TempDir {
    let folder = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    folder
}

/// Hands `files` to the system user the cluster runs as when the tests run as root.
fn give_to_postgres(files: &[&Path]) {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let user = nix::unistd::User::from_name("postgres")
        .unwrap()
        .expect("a postgres system user");
    for file in files {
        std::os::unix::fs::chown(file, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
