//! `DATABASE_URL`: where PostgreSQL is, and how the connection to it is protected.
//!
//! The TLS parameters mean what libpq documents for them. tokio-postgres knows `sslmode` only as
//! `disable`, `prefer` or `require` and has no `sslrootcert`, so both are taken out of the URL
//! here and the rest of it is left to tokio-postgres.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::percent_decode_str;
use tokio_postgres::config::Host;

use super::DEFAULT_DATABASE_URL;

/// Whether and how TLS protects the connection (`sslmode`), as libpq defines the modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// A plain connection first; TLS when the server refuses that one.
    Allow,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked unless `sslrootcert` names a file.
    Require,
    /// TLS, with the server's certificate chain checked against the trusted roots.
    VerifyCa,
    /// TLS, with the chain checked and the certificate valid for the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Every mode, in the order libpq lists them.
    pub const ALL: [Self; 6] = [
        Self::Disable,
        Self::Allow,
        Self::Prefer,
        Self::Require,
        Self::VerifyCa,
        Self::VerifyFull,
    ];

    /// The mode's name in a connection string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == value)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|mode| mode.as_str()).collect();
                format!("sslmode {value:?} is not one of {}", known.join(", "))
            })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The certificate authorities a server's certificate may chain to (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedRoots {
    /// No `sslrootcert`: Mozilla's root program, built in, plus the system's certificate store.
    Default,
    /// `sslrootcert=system`: the system's certificate store only (`SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, or the distribution's bundle such as `/etc/ssl/certs`).
    System,
    /// `sslrootcert=<path>`: the certificates in this PEM file only.
    File(PathBuf),
}

impl fmt::Display for TrustedRoots {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => formatter
                .write_str("Mozilla's root certificates and the system's certificate store"),
            Self::System => {
                formatter.write_str("the system's certificate store (sslrootcert=system)")
            }
            Self::File(path) => write!(formatter, "sslrootcert {}", path.display()),
        }
    }
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateCheck {
    /// Nothing: the connection is encrypted but the server is not authenticated.
    None,
    /// The chain must lead to a trusted root; the host name is not compared.
    Chain,
    /// The chain, and the certificate must name the host connected to.
    ChainAndHostName,
}

/// The TLS settings of a `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `sslmode`; `prefer` when absent, as in libpq (`verify-full` with `sslrootcert=system`).
    pub mode: SslMode,
    /// `sslrootcert`.
    pub roots: TrustedRoots,
}

impl TlsSettings {
    /// What is checked of the server's certificate. Like libpq, `require` with an
    /// `sslrootcert` file checks the chain as `verify-ca` does.
    pub fn certificate_check(&self) -> CertificateCheck {
        match (self.mode, &self.roots) {
            (SslMode::VerifyFull, _) => CertificateCheck::ChainAndHostName,
            (SslMode::VerifyCa, _) | (SslMode::Require, TrustedRoots::File(_)) => {
                CertificateCheck::Chain
            }
            _ => CertificateCheck::None,
        }
    }
}

/// A parsed `DATABASE_URL`: the settings tokio-postgres understands, and the TLS settings.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    /// Everything but the TLS settings; its own `sslmode` is left at the default.
    pub postgres: tokio_postgres::Config,
    /// `sslmode` and `sslrootcert`.
    pub tls: TlsSettings,
}

impl DatabaseUrl {
    /// Parses `url`; the error says what is wrong without repeating the URL, which may hold a
    /// password. An `sslrootcert` file must be readable and hold at least one certificate.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (rest, tls_parameters) = take_tls_parameters(url)?;
        let postgres = tokio_postgres::Config::from_str(&rest).map_err(|error| {
            format!(
                "{}; expected a URL such as {DEFAULT_DATABASE_URL}",
                with_causes(&error)
            )
        })?;

        let roots = match tls_parameters.root_certificates.as_deref() {
            None | Some("") => TrustedRoots::Default,
            Some("system") => TrustedRoots::System,
            Some(path) => TrustedRoots::File(PathBuf::from(path)),
        };
        let mode = match tls_parameters.mode.as_deref() {
            Some(mode) => mode.parse()?,
            None if roots == TrustedRoots::System => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if roots == TrustedRoots::System && mode != SslMode::VerifyFull {
            return Err(format!(
                "sslmode {mode} may not be used with sslrootcert=system (use verify-full)"
            ));
        }
        if let TrustedRoots::File(path) = &roots {
            read_root_certificates(path)?;
        }
        Ok(Self {
            postgres,
            tls: TlsSettings { mode, roots },
        })
    }

    /// Whether every host is a Unix-domain socket, over which PostgreSQL never speaks TLS (and
    /// libpq ignores `sslmode`).
    pub fn is_unix_socket_only(&self) -> bool {
        let hosts = self.postgres.get_hosts();
        !hosts.is_empty()
            && self.postgres.get_hostaddrs().is_empty()
            && hosts.iter().all(|host| !matches!(host, Host::Tcp(_)))
    }
}

/// `error` followed by each of its causes, as tokio-postgres's errors name only their kind
/// (`db error`, `invalid connection string`) and leave the detail to their causes.
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text
}

/// Reads the certificates of an `sslrootcert` file, in PEM.
pub fn read_root_certificates(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let shown = path.display();
    let contents = std::fs::read(path)
        .map_err(|error| format!("sslrootcert {shown} cannot be read: {error}"))?;
    let certificates = CertificateDer::pem_slice_iter(&contents)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("sslrootcert {shown} is not valid PEM: {error}"))?;
    if certificates.is_empty() {
        return Err(format!(
            "sslrootcert {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certificates)
}

/// The TLS parameters found in a URL's query, percent-decoded; the last one given wins.
#[derive(Debug, Default)]
struct TlsParameters {
    mode: Option<String>,
    root_certificates: Option<String>,
}

/// Splits `sslmode` and `sslrootcert` off the query of `url`, leaving every other parameter
/// exactly as written.
fn take_tls_parameters(url: &str) -> Result<(String, TlsParameters), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), TlsParameters::default()));
    };
    let mut parameters = TlsParameters::default();
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            percent_decode_str(text)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|_| format!("the URL parameter {key:?} is not valid UTF-8"))
        };
        match decode(key)?.as_str() {
            "sslmode" => parameters.mode = Some(decode(value)?),
            "sslrootcert" => parameters.root_certificates = Some(decode(value)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, parameters))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::TempFile;

    fn tls_of(url: &str) -> TlsSettings {
        DatabaseUrl::parse(url).unwrap().tls
    }

    #[test]
    fn every_libpq_mode_is_understood_and_prefer_is_the_default() {
        for mode in SslMode::ALL {
            let url = format!("postgres://app@db.example.com/festapi?sslmode={mode}");
            assert_eq!(tls_of(&url).mode, mode, "{url}");
        }
        let default = tls_of("postgres://app@db.example.com/festapi");
        assert_eq!(default.mode, SslMode::Prefer);
        assert_eq!(default.roots, TrustedRoots::Default);
        assert_eq!(default.certificate_check(), CertificateCheck::None);
    }

    #[test]
    fn unknown_modes_are_refused_by_name() {
        for bad in ["verify", "VERIFY-FULL", "true", ""] {
            let url = format!("postgres://app@db/festapi?sslmode={bad}");
            let error = DatabaseUrl::parse(&url).unwrap_err();
            assert!(
                error.contains(&format!(
                    "sslmode {bad:?} is not one of disable, allow, prefer"
                )),
                "{error}"
            );
        }
    }

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_is_left_to_tokio_postgres() {
        let parsed = DatabaseUrl::parse(
            "postgres://app:p%40ss@db.example.com:6543/festapi?sslmode=verify-full\
             &options=-c%20search_path%3Dapp&application_name=api&sslmode=verify-ca",
        )
        .unwrap();
        assert_eq!(parsed.tls.mode, SslMode::VerifyCa, "the last sslmode wins");
        assert_eq!(parsed.postgres.get_options(), Some("-c search_path=app"));
        assert_eq!(parsed.postgres.get_application_name(), Some("api"));
        assert_eq!(parsed.postgres.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(parsed.postgres.get_ports(), [6543]);
        assert_eq!(parsed.postgres.get_dbname(), Some("festapi"));
    }

    #[test]
    fn what_is_checked_follows_libpq() {
        let ca = TempFile::new(&test_certificate_pem());
        let with_file = |mode: &str| {
            tls_of(&format!(
                "postgres://db/festapi?sslmode={mode}&sslrootcert={}",
                ca.path()
            ))
        };
        assert_eq!(
            with_file("prefer").certificate_check(),
            CertificateCheck::None
        );
        assert_eq!(
            with_file("require").certificate_check(),
            CertificateCheck::Chain
        );
        assert_eq!(
            with_file("verify-ca").certificate_check(),
            CertificateCheck::Chain
        );
        assert_eq!(
            with_file("verify-full").certificate_check(),
            CertificateCheck::ChainAndHostName
        );
        assert_eq!(
            with_file("verify-full").roots,
            TrustedRoots::File(PathBuf::from(ca.path()))
        );
        assert_eq!(
            tls_of("postgres://db/festapi?sslmode=require").certificate_check(),
            CertificateCheck::None
        );
        assert_eq!(
            tls_of("postgres://db/festapi?sslmode=verify-ca").roots,
            TrustedRoots::Default
        );
    }

    #[test]
    fn system_roots_mean_verify_full() {
        let system = tls_of("postgres://db/festapi?sslrootcert=system");
        assert_eq!(system.mode, SslMode::VerifyFull);
        assert_eq!(system.roots, TrustedRoots::System);
        let error = DatabaseUrl::parse("postgres://db/festapi?sslrootcert=system&sslmode=require")
            .unwrap_err();
        assert_eq!(
            error,
            "sslmode require may not be used with sslrootcert=system (use verify-full)"
        );
    }

    #[test]
    fn an_unusable_root_certificate_file_is_refused() {
        let missing = DatabaseUrl::parse(
            "postgres://db/festapi?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap_err();
        assert!(
            missing.starts_with("sslrootcert /nonexistent/ca.pem cannot be read: "),
            "{missing}"
        );

        let not_pem = TempFile::new("just some text\n");
        let error = DatabaseUrl::parse(&format!(
            "postgres://db/festapi?sslmode=verify-full&sslrootcert={}",
            not_pem.path()
        ))
        .unwrap_err();
        assert!(error.contains("holds no PEM certificate"), "{error}");
    }

    #[test]
    fn parameters_tokio_postgres_does_not_know_are_named() {
        let error = DatabaseUrl::parse("postgres://db/festapi?sslcert=/client.pem").unwrap_err();
        assert!(
            error.starts_with("invalid connection string: unknown option `sslcert`"),
            "{error}"
        );
    }

    #[test]
    fn unix_sockets_are_recognised() {
        let socket = DatabaseUrl::parse("postgres://app@%2Frun%2Fpostgresql/festapi").unwrap();
        assert!(socket.is_unix_socket_only());
        let tcp = DatabaseUrl::parse("postgres://app@127.0.0.1/festapi").unwrap();
        assert!(!tcp.is_unix_socket_only());
    }

    fn test_certificate_pem() -> String {
        rcgen::generate_simple_self_signed(vec!["db".to_owned()])
            .unwrap()
            .cert
            .pem()
    }
}
