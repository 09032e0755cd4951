//! What operators' commands ask PostgreSQL about a database as a whole: the server's version,
//! the tables with their row counts, and snapshots that `pg_dump` can share.
//!
//! These run on a direct connection of their own, outside the pool and without the pool's
//! statement timeout: counting the rows of a large table may take longer than any request may.

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;

use super::connector::Connector;
use super::quote_identifier;

/// A table and how many rows it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    /// The schema the table is in, e.g. `public`.
    pub schema: String,
    /// The table's name.
    pub name: String,
    /// How many rows it holds.
    pub rows: u64,
}

impl TableRows {
    /// The table's name qualified by its schema, as `pg_dump` writes it: `public.users`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A direct connection to one database, for catalog questions.
pub struct CatalogConnection {
    client: tokio_postgres::Client,
    driver: JoinHandle<Result<(), tokio_postgres::Error>>,
}

impl CatalogConnection {
    /// Connects to the database `database_url` names.
    pub async fn open(database_url: &str) -> Result<Self, CatalogError> {
        Self::open_with(Self::connector(database_url)?).await
    }

    /// Connects to the `postgres` maintenance database of the server `database_url` names,
    /// for questions about the server when the database itself does not exist yet.
    pub async fn open_maintenance(database_url: &str) -> Result<Self, CatalogError> {
        let mut connector = Self::connector(database_url)?;
        connector.postgres_config_mut().dbname("postgres");
        Self::open_with(connector).await
    }

    fn connector(database_url: &str) -> Result<Connector, CatalogError> {
        let mut connector = Connector::new(database_url).map_err(CatalogError::Other)?;
        connector.postgres_config_mut().application_name("festapi");
        Ok(connector)
    }

    async fn open_with(connector: Connector) -> Result<Self, CatalogError> {
        let (client, connection) = connector.connect().await.map_err(|error| {
            if error.code() == Some(&SqlState::INVALID_CATALOG_NAME) {
                CatalogError::NoSuchDatabase
            } else {
                CatalogError::Other(anyhow::Error::new(error))
            }
        })?;
        Ok(Self {
            client,
            driver: tokio::spawn(connection),
        })
    }

    /// The server's `server_version_num`, e.g. 150020 for PostgreSQL 15.20.
    pub async fn server_version_num(&self) -> anyhow::Result<u32> {
        let row = self
            .client
            .query_one("SELECT current_setting('server_version_num')::integer", &[])
            .await
            .context("asking the server for its version")?;
        let number: i32 = row.get(0);
        u32::try_from(number).context("a negative server_version_num")
    }

    /// Every ordinary table outside PostgreSQL's own schemas, with its exact row count, sorted
    /// by schema and name.
    ///
    /// Inside a transaction, the counts are those of its snapshot.
    pub async fn tables(&self) -> anyhow::Result<Vec<TableRows>> {
        let rows = self
            .client
            .query(
                "SELECT n.nspname::text, c.relname::text \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'r' \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg\\_toast%' \
                   AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
                 ORDER BY 1, 2",
                &[],
            )
            .await
            .context("listing the tables")?;
        let mut tables = Vec::with_capacity(rows.len());
        for row in rows {
            let (schema, name): (String, String) = (row.get(0), row.get(1));
            let count = format!(
                "SELECT count(*) FROM {}.{}",
                quote_identifier(&schema),
                quote_identifier(&name)
            );
            let rows: i64 = self
                .client
                .query_one(&count, &[])
                .await
                .with_context(|| format!("counting the rows of {schema}.{name}"))?
                .get(0);
            tables.push(TableRows {
                schema,
                name,
                rows: u64::try_from(rows).unwrap_or_default(),
            });
        }
        Ok(tables)
    }

    /// Starts a read-only transaction and exports its snapshot, so that another session (such
    /// as `pg_dump --snapshot`) sees exactly what this one sees. Returns the snapshot's name;
    /// it stays importable until the connection closes.
    pub async fn export_snapshot(&self) -> anyhow::Result<String> {
        self.client
            .batch_execute(
                // The transaction idles while pg_dump works: a server-wide idle timeout must not
                // end it before pg_dump has imported the snapshot.
                "SET idle_in_transaction_session_timeout = 0; \
                 BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            )
            .await
            .context("starting the snapshot transaction")?;
        let row = self
            .client
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .context("exporting a snapshot")?;
        Ok(row.get(0))
    }

    /// Closes the connection.
    pub async fn close(self) {
        drop(self.client);
        // Dropping the client makes the connection task finish with a clean terminate.
        let _ = self.driver.await;
    }
}

/// Why a [`CatalogConnection`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The server has no database of that name.
    #[error("the database does not exist")]
    NoSuchDatabase,
    /// Anything else: the server cannot be reached, refused the login, ...
    #[error(transparent)]
    Other(anyhow::Error),
}

impl CatalogError {
    /// The error as an [`anyhow::Error`], for callers with no use for the distinction.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            Self::Other(error) => error,
            missing => anyhow::Error::new(missing),
        }
    }
}
