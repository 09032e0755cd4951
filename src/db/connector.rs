//! Opening connections to PostgreSQL. The pool, the migrations and the database creation all
//! connect through a [`Connector`], so each honours `sslmode` and `sslrootcert` the same way.
//!
//! TLS is rustls on the ring provider. Which certificate authorities are trusted is
//! [`TrustedRoots`]'s to say; how much of the certificate is checked, [`CertificateCheck`]'s.
//! Unix-domain sockets never carry TLS, as in libpq.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as WireSslMode};
use tokio_postgres::error::{DbError, SqlState};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{
    CertificateCheck, DatabaseUrl, SslMode, TlsSettings, TrustedRoots, read_root_certificates,
    with_causes,
};

/// How long opening one connection may take, unless `connect_timeout` in the URL says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The protocol PostgreSQL 17 and later expect TLS clients to announce through ALPN.
const POSTGRESQL_ALPN: &[u8] = b"postgresql";

/// The driver half of a connection: poll it (spawn it) for the [`Client`] to make progress.
pub type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// Opens connections as a `DATABASE_URL` says. Cheap to clone.
#[derive(Clone)]
pub struct Connector {
    /// The connection settings tokio-postgres understands.
    postgres: tokio_postgres::Config,
    /// `sslmode` and `sslrootcert`.
    tls: TlsSettings,
    /// Whether every host is a Unix socket, so TLS is never attempted.
    unix_socket_only: bool,
    /// rustls, configured for `tls`.
    tls_connector: MakeRustlsConnect,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Connector")
            .field("target", &describe_target(&self.postgres))
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Reads `database_url` and prepares TLS for it, loading the trusted roots once.
    pub fn new(database_url: &str) -> anyhow::Result<Self> {
        let url = DatabaseUrl::parse(database_url)
            .map_err(anyhow::Error::msg)
            .context("DATABASE_URL")?;
        let unix_socket_only = url.is_unix_socket_only();
        let DatabaseUrl { mut postgres, tls } = url;
        if postgres.get_connect_timeout().is_none() {
            postgres.connect_timeout(CONNECT_TIMEOUT);
        }
        let client_config = client_config(&tls)?;
        Ok(Self {
            postgres,
            tls,
            unix_socket_only,
            tls_connector: MakeRustlsConnect::new(client_config),
        })
    }

    /// The connection settings, to read.
    pub fn postgres_config(&self) -> &tokio_postgres::Config {
        &self.postgres
    }

    /// The connection settings, to adjust (session options, another database).
    pub fn postgres_config_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.postgres
    }

    /// Opens a connection. Under `allow`, a plain connection the server refuses is tried again
    /// over TLS.
    pub async fn connect(&self) -> Result<(Client, Connection), ConnectError> {
        let first_attempt = if self.unix_socket_only {
            WireSslMode::Disable
        } else {
            match self.tls.mode {
                SslMode::Disable | SslMode::Allow => WireSslMode::Disable,
                SslMode::Prefer => WireSslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
            }
        };
        let outcome = match self.attempt(first_attempt).await {
            Err(refused)
                if self.tls.mode == SslMode::Allow
                    && !self.unix_socket_only
                    && refused.as_db_error().is_some() =>
            {
                self.attempt(WireSslMode::Require).await
            }
            outcome => outcome,
        };
        outcome.map_err(|error| ConnectError::new(error, self))
    }

    /// Opens a connection for diesel-async.
    pub async fn connect_diesel(&self) -> diesel::ConnectionResult<AsyncPgConnection> {
        let (client, connection) = self
            .connect()
            .await
            .map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }

    async fn attempt(
        &self,
        mode: WireSslMode,
    ) -> Result<(Client, Connection), tokio_postgres::Error> {
        let mut config = self.postgres.clone();
        config.ssl_mode(mode);
        config.connect(self.tls_connector.clone()).await
    }
}

/// A connection that could not be opened, explained for an operator.
#[derive(Debug, thiserror::Error)]
#[error("{explanation}")]
pub struct ConnectError {
    explanation: String,
    /// Kept for its SQLSTATE and causes; not a `source`, as its text is part of the
    /// explanation already and would be printed twice.
    error: tokio_postgres::Error,
}

impl ConnectError {
    fn new(error: tokio_postgres::Error, connector: &Connector) -> Self {
        let target = describe_target(&connector.postgres);
        let mode = connector.tls.mode;
        let reason = explain(&error, &connector.tls);
        Self {
            explanation: format!(
                "cannot connect to PostgreSQL at {target} (sslmode={mode}): {reason}"
            ),
            error,
        }
    }

    /// The SQLSTATE the server refused the connection with, if it got that far.
    pub fn code(&self) -> Option<&SqlState> {
        self.error.code()
    }

    /// The driver's error, whose text the explanation already holds.
    pub fn driver_error(&self) -> &tokio_postgres::Error {
        &self.error
    }

    /// The server's own refusal, if it got that far.
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.error.as_db_error()
    }
}

/// What went wrong, in the terms of the TLS settings when TLS is what failed.
fn explain(error: &tokio_postgres::Error, tls: &TlsSettings) -> String {
    let mode = tls.mode;
    if let Some(tls_error) = find_rustls_error(error) {
        return match tls_error {
            rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ) => format!(
                "the server's certificate is not signed by a trusted certificate authority \
                 (trusted: {}); set sslrootcert to the PEM file of the authority that signed it",
                tls.roots
            ),
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected,
                presented,
            }) => {
                let names: Vec<&str> = presented.iter().map(|name| bare_name(name)).collect();
                let names = if names.is_empty() {
                    "no host".to_owned()
                } else {
                    names.join(", ")
                };
                format!(
                    "the server's certificate is not valid for the host name {} (it names \
                     {names}); sslmode={mode} requires a certificate for the host connected to",
                    expected.to_str()
                )
            }
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => format!(
                "the server's certificate is not valid for the host name connected to, which \
                 sslmode={mode} requires"
            ),
            rustls::Error::InvalidCertificate(reason) => {
                format!("the server's certificate was refused: {reason:?}")
            }
            other => format!("the TLS handshake failed: {other}"),
        };
    }
    if std::error::Error::source(error)
        .is_some_and(|cause| cause.to_string() == "server does not support TLS")
    {
        return format!(
            "the server does not accept TLS connections, and sslmode={mode} allows no plain one"
        );
    }
    with_causes(error)
}

/// A name of a certificate as webpki shows it (`DnsName("db.example.com")`,
/// `IpAddress(10.0.0.7)`), without the wrapping.
fn bare_name(shown: &str) -> &str {
    shown
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            shown
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(shown)
}

/// The rustls error somewhere in `error`'s chain of causes, if TLS is what failed.
fn find_rustls_error(error: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(tls_error) = current.downcast_ref::<rustls::Error>() {
            return Some(tls_error);
        }
        // io::Error's own `source` skips the error it wraps.
        if let Some(wrapped) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(wrapped);
        }
        cause = current.source();
    }
    None
}

/// The hosts and ports of `config`, e.g. `db.example.com:5432`.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let port = |index: usize| {
        ports
            .get(index)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432)
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| match host {
            Host::Tcp(name) => format!("{name}:{}", port(index)),
            Host::Unix(folder) => format!("the socket in {}", folder.display()),
        })
        .collect();
    if hosts.is_empty() {
        "localhost".to_owned()
    } else {
        hosts.join(", ")
    }
}

/// The rustls configuration for `tls`.
fn client_config(tls: &TlsSettings) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = certificate_verifier(tls, &provider)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("configuring TLS for PostgreSQL")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![POSTGRESQL_ALPN.to_vec()];
    Ok(config)
}

/// What checks the server's certificate under `tls`.
fn certificate_verifier(
    tls: &TlsSettings,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> anyhow::Result<Arc<dyn ServerCertVerifier>> {
    let algorithms = provider.signature_verification_algorithms;
    Ok(match tls.certificate_check() {
        CertificateCheck::None => Arc::new(ChainCheck {
            roots: None,
            algorithms,
        }),
        CertificateCheck::Chain => Arc::new(ChainCheck {
            roots: Some(trusted_roots(&tls.roots)?),
            algorithms,
        }),
        CertificateCheck::ChainAndHostName => WebPkiServerVerifier::builder_with_provider(
            Arc::new(trusted_roots(&tls.roots)?),
            Arc::clone(provider),
        )
        .build()
        .context("configuring the check of PostgreSQL's certificate")?,
    })
}

/// The certificate authorities `roots` stands for.
fn trusted_roots(roots: &TrustedRoots) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        TrustedRoots::Default => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            store.add_parsable_certificates(system_certificates());
        }
        TrustedRoots::System => {
            store.add_parsable_certificates(system_certificates());
            anyhow::ensure!(
                !store.is_empty(),
                "sslrootcert=system: the system's certificate store holds no certificate \
                 (install the ca-certificates package, or set SSL_CERT_FILE)"
            );
        }
        TrustedRoots::File(path) => {
            let certificates = read_root_certificates(path).map_err(anyhow::Error::msg)?;
            let (added, _) = store.add_parsable_certificates(certificates);
            anyhow::ensure!(
                added > 0,
                "sslrootcert {}: none of its certificates can be used as a root",
                path.display()
            );
        }
    }
    Ok(store)
}

/// The certificates of the system's store; an unreadable one is logged and left out.
fn system_certificates() -> Vec<CertificateDer<'static>> {
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        tracing::warn!(%error, "skipping part of the system's certificate store");
    }
    loaded.certs
}

/// Checks that the server's certificate chains to `roots`, without comparing host names
/// (`verify-ca`), or accepts any certificate when there are no roots (`require`, `prefer`).
/// Either way the server must prove it holds the certificate's key.
#[derive(Debug)]
struct ChainCheck {
    /// The trusted authorities; `None` checks nothing.
    roots: Option<RootCertStore>,
    /// The signature algorithms of the crypto provider.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let certificate = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &certificate,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    use super::*;
    use crate::config::tests::TempFile;

    /// A certificate authority and a server certificate it signed for `names`.
    struct Certificates {
        authority_pem: String,
        server: CertificateDer<'static>,
    }

    fn certificates_for(names: &[&str]) -> Certificates {
        let mut authority_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        authority_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("festapi test authority {}", uuid::Uuid::new_v4()),
        );
        authority_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let authority =
            CertifiedIssuer::self_signed(authority_params, KeyPair::generate().unwrap()).unwrap();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let server = CertificateParams::new(names)
            .unwrap()
            .signed_by(&KeyPair::generate().unwrap(), &authority)
            .unwrap();
        Certificates {
            authority_pem: authority.pem(),
            server: server.der().clone(),
        }
    }

    /// Checks `certificate` as presented by `host` under `mode`, trusting `roots`.
    fn check(
        mode: SslMode,
        roots: TrustedRoots,
        certificate: &CertificateDer<'static>,
        host: &str,
    ) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = certificate_verifier(&TlsSettings { mode, roots }, &provider).unwrap();
        let host = ServerName::try_from(host.to_owned()).unwrap();
        verifier
            .verify_server_cert(certificate, &[], &host, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn verify_full_requires_the_trusted_authority_and_the_host_name() {
        let ours = certificates_for(&["localhost"]);
        let ca_file = TempFile::new(&ours.authority_pem);
        let trusted = || TrustedRoots::File(ca_file.path().into());

        check(SslMode::VerifyFull, trusted(), &ours.server, "localhost").unwrap();
        let wrong_host = check(SslMode::VerifyFull, trusted(), &ours.server, "127.0.0.1");
        assert!(
            matches!(
                wrong_host,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{wrong_host:?}"
        );

        let theirs = certificates_for(&["localhost"]);
        let untrusted = check(SslMode::VerifyFull, trusted(), &theirs.server, "localhost");
        assert_eq!(
            untrusted,
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        );
        let not_public = check(
            SslMode::VerifyFull,
            TrustedRoots::Default,
            &ours.server,
            "localhost",
        );
        assert!(
            not_public.is_err(),
            "a private authority is not a default root"
        );
    }

    #[test]
    fn verify_ca_checks_the_authority_but_not_the_host_name() {
        let ours = certificates_for(&["db.internal.example"]);
        let ca_file = TempFile::new(&ours.authority_pem);
        let trusted = || TrustedRoots::File(ca_file.path().into());

        check(SslMode::VerifyCa, trusted(), &ours.server, "127.0.0.1").unwrap();
        // Like libpq, require with a root file checks as verify-ca does.
        check(SslMode::Require, trusted(), &ours.server, "127.0.0.1").unwrap();
        let theirs = certificates_for(&["db.internal.example"]);
        for mode in [SslMode::VerifyCa, SslMode::Require] {
            assert_eq!(
                check(mode, trusted(), &theirs.server, "db.internal.example"),
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer
                )),
                "{mode}"
            );
        }
    }

    #[test]
    fn require_and_prefer_without_a_root_file_only_encrypt() {
        let theirs = certificates_for(&["elsewhere.example"]);
        for mode in [SslMode::Require, SslMode::Prefer, SslMode::Allow] {
            check(mode, TrustedRoots::Default, &theirs.server, "127.0.0.1").unwrap();
        }
    }

    #[test]
    fn the_target_names_hosts_and_ports_but_no_credentials() {
        let connector =
            Connector::new("postgres://app:secret@db1.example.com,db2.example.com:6543/festapi")
                .unwrap();
        let shown = format!("{connector:?}");
        assert!(
            shown.contains("db1.example.com:5432, db2.example.com:6543"),
            "{shown}"
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
