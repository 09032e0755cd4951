//! The schema migrations in `migrations/`, embedded in the binary.
//!
//! Diesel's migration harness is not safe to run from several processes at once, and replicas
//! booting together against one empty database would each try. Every operation here therefore
//! runs on a dedicated connection holding a PostgreSQL advisory lock, and looks at what is
//! pending only once it holds the lock.

use anyhow::Context as _;
use diesel::migration::{Migration as _, MigrationSource, MigrationVersion};
use diesel::sql_types::BigInt;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::connector::Connector;
use crate::db::Database;
use crate::error::AppError;

/// Every migration of this build, in order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The advisory-lock key that serializes migrations ("festapi" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0066_6573_7461_7069;

/// A migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's version and name, e.g. `2026-11-25-000001_create_users`.
    pub name: String,
    /// Whether it has been applied.
    pub applied: bool,
}

/// Applies every pending migration; returns the names of those applied (none when up to date).
pub async fn run_pending(database_url: &str) -> anyhow::Result<Vec<String>> {
    with_migration_lock(database_url, |connection| {
        let applied = connection
            .run_pending_migrations(MIGRATIONS)
            .map_err(anyhow::Error::from_boxed)
            .context("applying migrations")?;
        let names = embedded_names()?;
        Ok(applied
            .iter()
            .map(|version| name_of(&names, version))
            .collect())
    })
    .await
}

/// Reverts the most recently applied migration; returns its name, or `None` when none is applied.
pub async fn revert_last(database_url: &str) -> anyhow::Result<Option<String>> {
    with_migration_lock(database_url, |connection| {
        let applied = connection
            .applied_migrations()
            .map_err(anyhow::Error::from_boxed)
            .context("reading applied migrations")?;
        if applied.is_empty() {
            return Ok(None);
        }
        let reverted = connection
            .revert_last_migration(MIGRATIONS)
            .map_err(anyhow::Error::from_boxed)
            .context("reverting the last migration")?;
        Ok(Some(name_of(&embedded_names()?, &reverted)))
    })
    .await
}

/// Every embedded migration with whether it is applied, oldest first. A database that does not
/// exist has every migration pending, and is not created.
pub async fn status(database_url: &str) -> anyhow::Result<Vec<MigrationState>> {
    if !super::database_exists(database_url).await? {
        return Ok(embedded_names()?
            .into_iter()
            .map(|(_, name)| MigrationState {
                name,
                applied: false,
            })
            .collect());
    }
    with_migration_lock(database_url, |connection| {
        let applied = connection
            .applied_migrations()
            .map_err(anyhow::Error::from_boxed)
            .context("reading applied migrations")?;
        Ok(embedded_names()?
            .into_iter()
            .map(|(version, name)| MigrationState {
                applied: applied.contains(&version),
                name,
            })
            .collect())
    })
    .await
}

/// How many migrations of this build the database lacks, asked on a pooled connection: cheap
/// enough for every readiness probe.
pub async fn count_pending(database: &Database) -> Result<usize, AppError> {
    use diesel_async::RunQueryDsl as _;

    #[derive(diesel::QueryableByName)]
    struct AppliedVersion {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }

    let mut connection = database.connection().await?;
    let applied: Vec<AppliedVersion> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load(&mut connection)
            .await?;
    let embedded = embedded_names().map_err(AppError::internal)?;
    Ok(embedded
        .iter()
        .filter(|(version, _)| {
            let version = version.to_string();
            !applied.iter().any(|row| row.version == version)
        })
        .count())
}

/// How many migrations are embedded in this binary.
pub fn embedded_count() -> anyhow::Result<usize> {
    Ok(embedded_names()?.len())
}

/// The version of every embedded migration, oldest first, as the database records it
/// (`20261125000001` for `2026-11-25-000001_create_users`).
pub fn embedded_versions() -> anyhow::Result<Vec<String>> {
    Ok(embedded_names()?
        .into_iter()
        .map(|(version, _)| version.to_string())
        .collect())
}

/// The version and full name of every embedded migration, oldest first.
fn embedded_names() -> anyhow::Result<Vec<(MigrationVersion<'static>, String)>> {
    let migrations = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(anyhow::Error::from_boxed)
        .context("reading embedded migrations")?;
    Ok(migrations
        .iter()
        .map(|migration| {
            let name = migration.name();
            (name.version().as_owned(), name.to_string())
        })
        .collect())
}

/// The full name of migration `version`, or the bare version when this build does not know it.
fn name_of(
    names: &[(MigrationVersion<'static>, String)],
    version: &MigrationVersion<'_>,
) -> String {
    names
        .iter()
        .find(|(known, _)| known == version)
        .map_or_else(|| version.to_string(), |(_, name)| name.clone())
}

type MigrationConnection = AsyncConnectionWrapper<AsyncPgConnection>;

/// Runs `operation` on a dedicated connection while holding the migration advisory lock.
///
/// The harness is synchronous, so it runs on a blocking thread through diesel-async's wrapper.
async fn with_migration_lock<T, F>(database_url: &str, operation: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut MigrationConnection) -> anyhow::Result<T> + Send + 'static,
{
    // The driver's error stays typed, for start-up to tell whether retrying may help.
    let (client, driver) = Connector::new(database_url)?.connect().await?;
    let connection = AsyncPgConnection::try_from_client_and_connection(client, driver)
        .await
        .context("setting up the migration connection")?;

    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl as _;

        let mut connection = MigrationConnection::from(connection);
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(&mut connection)
            .context("taking the migration lock")?;
        let outcome = operation(&mut connection);
        // Closing the connection releases the lock too; unlocking first frees waiters sooner.
        let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(&mut connection);
        let value = outcome?;
        unlocked.context("releasing the migration lock")?;
        Ok(value)
    })
    .await
    .context("the migration task failed")?
}
