//! How `pg_dump` and `pg_restore` reach the configured database without its password ever
//! showing: not on their command line, where `ps` would show it, nor in a message or a log.

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::process::Command;

use crate::config::FILE_SETTINGS;

/// What stands in for a password in anything printed.
const REDACTED: &str = "[redacted]";

/// The connection settings handed to a PostgreSQL client tool.
pub(super) struct ToolConnection {
    /// `DATABASE_URL` without its password. libpq reads every other setting from it, TLS ones
    /// (`sslmode`, `sslrootcert`, ...) included, exactly as the URL gives them.
    url_without_password: String,
    /// The password, handed over in `PGPASSWORD`.
    password: Option<SecretString>,
    /// The database's name.
    database: String,
    /// Where the server is, for messages: `host:port`.
    server: String,
    redactor: Redactor,
}

impl ToolConnection {
    /// The settings of `database_url`, a `postgres://` URL.
    pub(super) fn new(database_url: &str) -> anyhow::Result<Self> {
        let mut url = url::Url::parse(database_url).context("parsing DATABASE_URL")?;
        let mut password = url.password().map(str::to_owned);
        let mut database = url.path().trim_start_matches('/').to_owned();
        // The password may also come as a query parameter: it leaves the URL all the same.
        let mut kept_parameters = Vec::new();
        for parameter in url.query().unwrap_or_default().split('&') {
            match parameter.split_once('=') {
                Some(("password", value)) => password = Some(value.to_owned()),
                Some(("dbname", value)) => {
                    database = value.to_owned();
                    kept_parameters.push(parameter.to_owned());
                }
                _ if parameter.is_empty() => {}
                _ => kept_parameters.push(parameter.to_owned()),
            }
        }
        let encoded_password = password.unwrap_or_default();
        let decoded_password = decode(&encoded_password);

        url.set_password(None)
            .map_err(|()| anyhow::anyhow!("DATABASE_URL cannot carry a password"))?;
        url.set_query(
            (!kept_parameters.is_empty())
                .then(|| kept_parameters.join("&"))
                .as_deref(),
        );
        let server = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => "the local socket".to_owned(),
        };
        Ok(Self {
            url_without_password: url.to_string(),
            password: (!decoded_password.is_empty())
                .then(|| SecretString::from(decoded_password.clone())),
            database: decode(&database),
            server,
            redactor: Redactor::new(vec![encoded_password, decoded_password]),
        })
    }

    /// Points `command`, a PostgreSQL client tool, at the database: `--dbname` with the URL
    /// and, when the URL has a password, `PGPASSWORD`. `application_name` names the tool's
    /// session in `pg_stat_activity` unless the URL names it.
    pub(super) fn apply(&self, command: &mut Command, application_name: &str) {
        // The tool needs none of FestAPI's secrets, `DATABASE_URL` with its password included.
        for (setting, _) in FILE_SETTINGS {
            command.env_remove(setting);
        }
        command
            .arg(format!("--dbname={}", self.url_without_password))
            .env("PGAPPNAME", application_name);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password.expose_secret());
        }
        if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
            command.env("PGCONNECT_TIMEOUT", "10");
        }
    }

    /// The database for messages: `database "festapi" on db.internal:5432`.
    pub(super) fn describe(&self) -> String {
        format!("database {:?} on {}", self.database, self.server)
    }

    /// What keeps this connection's password out of text shown to anyone.
    pub(super) fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// `text` with its %-escapes decoded, as libpq decodes the parts of a URL.
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Replaces a password, in every form it was written in, by `[redacted]`.
#[derive(Debug, Clone, Default)]
pub(super) struct Redactor {
    /// The forms to replace, longest first, so that no shorter form leaves part of a longer one.
    secrets: Vec<String>,
}

impl Redactor {
    fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|secret| !secret.is_empty());
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every form of the password replaced.
    pub(super) fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), REDACTED)
        })
    }

    /// `error`, with its whole chain, as one error whose text has the password replaced.
    pub(super) fn redact_error(&self, error: &anyhow::Error) -> anyhow::Error {
        anyhow::anyhow!(self.redact(&format!("{error:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments `apply` adds, and its changes to the environment: `NAME=value` for a
    /// variable set, `-NAME` for one removed.
    fn arguments_and_environment(connection: &ToolConnection) -> (Vec<String>, Vec<String>) {
        let mut command = Command::new("pg_dump");
        connection.apply(&mut command, "festapi backup");
        let command = command.as_std();
        let arguments = command
            .get_args()
            .map(|argument| argument.to_string_lossy().into_owned())
            .collect();
        let environment = command
            .get_envs()
            .map(|(name, value)| match value {
                Some(value) => format!("{}={}", name.to_string_lossy(), value.to_string_lossy()),
                None => format!("-{}", name.to_string_lossy()),
            })
            .collect();
        (arguments, environment)
    }

    #[test]
    fn the_password_goes_in_the_environment_never_on_the_command_line() {
        let connection = ToolConnection::new(
            "postgres://festapi:s%40cret%2Fpw@db.internal:5433/festapi?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .unwrap();

        let (arguments, environment) = arguments_and_environment(&connection);
        assert_eq!(
            arguments,
            [
                "--dbname=postgres://festapi@db.internal:5433/festapi?sslmode=verify-full&sslrootcert=/etc/ca.pem"
            ]
        );
        assert!(environment.contains(&"PGPASSWORD=s@cret/pw".to_owned()));
        for secret in ["DATABASE_URL", "JWT_SECRET"] {
            assert!(
                environment.contains(&format!("-{secret}")),
                "{secret} is removed from the tool's environment: {environment:?}"
            );
        }
        assert_eq!(
            connection.describe(),
            "database \"festapi\" on db.internal:5433"
        );
    }

    #[test]
    fn a_password_given_as_a_query_parameter_is_moved_too() {
        let connection = ToolConnection::new(
            "postgres://festapi@db.internal/festapi?password=hunter2&options=-c%20search_path%3Dapp",
        )
        .unwrap();

        let (arguments, environment) = arguments_and_environment(&connection);
        assert_eq!(
            arguments,
            ["--dbname=postgres://festapi@db.internal/festapi?options=-c%20search_path%3Dapp"]
        );
        assert!(environment.contains(&"PGPASSWORD=hunter2".to_owned()));
    }

    #[test]
    fn without_a_password_none_is_set() {
        let connection = ToolConnection::new("postgres://postgres@127.0.0.1:5432/festapi").unwrap();

        let (arguments, environment) = arguments_and_environment(&connection);
        assert_eq!(
            arguments,
            ["--dbname=postgres://postgres@127.0.0.1:5432/festapi"]
        );
        assert!(
            !environment
                .iter()
                .any(|variable| variable.starts_with("PGPASSWORD=")),
            "{environment:?}"
        );
    }

    #[test]
    fn every_form_of_the_password_is_redacted() {
        let connection =
            ToolConnection::new("postgres://festapi:p%40ss%20word@db.internal/festapi").unwrap();
        let redactor = connection.redactor();

        assert_eq!(
            redactor.redact("decoded p@ss word, encoded p%40ss%20word"),
            "decoded [redacted], encoded [redacted]"
        );
        let error = anyhow::anyhow!("login with p@ss word refused").context("connecting");
        assert_eq!(
            redactor.redact_error(&error).to_string(),
            "connecting: login with [redacted] refused"
        );
    }
}
