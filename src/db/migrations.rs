//! The schema migrations in `migrations/`, embedded in the binary.
//!
//! Diesel's migration harness is not safe to run from several processes at once, and replicas
//! booting together against one empty database would each try. Every operation here therefore
//! runs on a dedicated connection holding a PostgreSQL advisory lock, and looks at what is
//! pending only once it holds the lock.
//!
//! Reverting is for rolling a release back: [`revert`] takes one step or every step down to a
//! version, all in one transaction, and refuses to drop tables that hold rows unless told to.
//! A database migrated by a newer release (versions this build does not know) is refused by
//! [`run_pending_with`] unless the operator says the newer schema works with this build.

use std::fmt;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use diesel::Connection as _;
use diesel::migration::{Migration, MigrationSource, MigrationVersion};
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::connector::Connector;
use crate::db::Database;
use crate::error::AppError;

mod dropped_tables;

use dropped_tables::dropped_tables;

/// Every migration of this build, in order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Every migration's name and `down.sql`, oldest first, as `build.rs` found them in
/// `migrations/`: the SQL a revert runs, read to tell which tables it drops.
const DOWN_MIGRATIONS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/down_migrations.rs"));

/// The advisory-lock key that serializes migrations ("festapi" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0066_6573_7461_7069;

/// A migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's version and name, e.g. `2026-11-25-000001_create_users`; only the version
    /// (`2026-12-01-000000`) for one this build does not know.
    pub name: String,
    /// Whether it has been applied.
    pub applied: bool,
    /// When it was applied, as diesel recorded it (`__diesel_schema_migrations.run_on`, UTC).
    pub applied_at: Option<DateTime<Utc>>,
    /// Whether this build has the migration. An applied migration it lacks was applied by
    /// another release, usually a newer one.
    pub known: bool,
}

/// What to do with a database that has migrations this build does not know, which is what a
/// release rolled back while its schema stays looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NewerSchema {
    /// Stop with [`UnknownMigrations`]: this build may not work on that schema.
    #[default]
    Refuse,
    /// Go on (`FESTAPI_ALLOW_NEWER_SCHEMA=true`): the operator knows the schema is compatible.
    Allow,
}

/// The database has applied migrations this build does not know, and may not be served or
/// migrated by it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownMigrations {
    /// The versions, as `migrate status` writes them, oldest first.
    pub versions: Vec<String>,
    /// The newest version this build has: where a revert by the newer release would stop.
    pub newest_known: String,
}

impl fmt::Display for UnknownMigrations {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "the database has migrations this build does not know: {}. A newer release \
             migrated it. Run that release (or a newer one); or, to go back to this release for \
             good, revert them with the release that has them (`festapi migrate revert --to {}`, \
             run by that release); or, when the newer schema is known to work with this \
             release, set FESTAPI_ALLOW_NEWER_SCHEMA=true",
            self.versions.join(", "),
            self.newest_known
        )
    }
}

/// What [`run_pending_with`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Migrated {
    /// The names of the migrations applied now, oldest first; empty when up to date.
    pub applied: Vec<String>,
    /// Applied migrations this build does not know, allowed by [`NewerSchema::Allow`].
    pub unknown: Vec<String>,
}

/// Applies every pending migration; returns the names of those applied (none when up to date).
/// Refuses a database with migrations this build does not know ([`UnknownMigrations`]).
pub async fn run_pending(database_url: &str) -> anyhow::Result<Vec<String>> {
    Ok(run_pending_with(database_url, NewerSchema::Refuse)
        .await?
        .applied)
}

/// Applies every pending migration, treating migrations this build does not know as `newer`
/// says.
pub async fn run_pending_with(database_url: &str, newer: NewerSchema) -> anyhow::Result<Migrated> {
    with_migration_lock(database_url, move |connection| {
        let unknown = unknown_applied(connection)?;
        if !unknown.is_empty() && newer == NewerSchema::Refuse {
            let newest_known = embedded_versions()?
                .last()
                .map_or_else(|| "0".to_owned(), |version| written_version(version));
            return Err(UnknownMigrations {
                versions: unknown,
                newest_known,
            }
            .into());
        }
        let applied = connection
            .run_pending_migrations(MIGRATIONS)
            .map_err(anyhow::Error::from_boxed)
            .context("applying migrations")?;
        let names = embedded_names()?;
        Ok(Migrated {
            applied: applied
                .iter()
                .map(|version| name_of(&names, version))
                .collect(),
            unknown,
        })
    })
    .await
}

/// Reverts the most recently applied migration; returns its name, or `None` when none is applied.
///
/// Unlike [`revert`], this does not look for tables holding rows: it is the plain step for
/// tests and development.
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

/// How far [`revert`] goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertTarget {
    /// The most recently applied migration only.
    Last,
    /// Every applied migration newer than this version, which must be one of this build's
    /// (`2026-11-25-000001`, as `migrate status` writes it; `20261125000001` and the full name
    /// are accepted too).
    To(String),
    /// Every applied migration: every table and every row goes.
    Everything,
}

impl RevertTarget {
    /// The target `--to` names: `0` is [`RevertTarget::Everything`].
    pub fn to(version: &str) -> Self {
        if version.trim() == "0" {
            Self::Everything
        } else {
            Self::To(version.trim().to_owned())
        }
    }
}

/// What [`revert`] may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RevertPermissions {
    /// Only work out and return the plan; change nothing.
    pub dry_run: bool,
    /// Drop tables that hold rows (`--yes`).
    pub drop_tables_with_rows: bool,
    /// Revert every migration (`--yes-drop-all-data`); implies `drop_tables_with_rows`.
    pub drop_all_data: bool,
}

/// One migration a revert undoes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertStep {
    /// The migration's full name.
    pub name: String,
    /// The SQL that undoes it (its `down.sql`).
    pub down_sql: &'static str,
    /// The tables that SQL drops.
    pub drops: Vec<String>,
}

/// A table a revert drops and the rows it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    /// The table's name.
    pub table: String,
    /// How many rows it holds.
    pub rows: i64,
}

impl fmt::Display for TableRows {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.rows == 1 { "row" } else { "rows" };
        write!(formatter, "{} ({} {noun})", self.table, self.rows)
    }
}

/// What a revert undoes, newest migration first, and the data it drops.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RevertPlan {
    /// The migrations, in the order they are reverted.
    pub steps: Vec<RevertStep>,
    /// The tables the steps drop that exist now, with their rows (empty ones included).
    pub dropped: Vec<TableRows>,
}

impl RevertPlan {
    /// The dropped tables that hold rows.
    pub fn tables_with_rows(&self) -> Vec<&TableRows> {
        self.dropped.iter().filter(|table| table.rows > 0).collect()
    }
}

/// A revert refused before it changed anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevertRefused {
    /// `--to` named a version this build does not have.
    #[error(
        "unknown migration version {0:?}: name one of this build's migrations as `festapi \
         migrate status` lists them (e.g. 2026-11-25-000001), or 0 for all of them"
    )]
    UnknownVersion(String),
    /// Reverting everything needs its own confirmation.
    #[error(
        "reverting every migration drops every table and all data; back up first (`festapi \
         backup FILE`), then run again with --yes-drop-all-data"
    )]
    EverythingNotConfirmed,
    /// The revert would drop tables that hold rows.
    #[error(
        "reverting would drop tables holding rows: {}; back up first (`festapi backup \
         FILE`), check with --dry-run, then run again with --yes",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    TablesHoldRows(Vec<TableRows>),
    /// The database has migrations this build does not know: only the build that has them can
    /// revert them, and reverting older ones beneath them would leave a schema nobody knows.
    #[error(
        "the database has migrations this build does not know: {}; revert them first with the \
         release that has them",
        .0.join(", ")
    )]
    UnknownApplied(Vec<String>),
}

/// Reverts the migrations `target` names, newest first, under the migration lock and in one
/// transaction: when one step fails, the steps before it are undone too and the database is as
/// it was. Returns the plan (with the rows of the tables it dropped, or would drop on a dry
/// run); an empty plan when nothing is applied.
pub async fn revert(
    database_url: &str,
    target: RevertTarget,
    permissions: RevertPermissions,
) -> anyhow::Result<RevertPlan> {
    if target == RevertTarget::Everything && !permissions.drop_all_data && !permissions.dry_run {
        return Err(RevertRefused::EverythingNotConfirmed.into());
    }
    // Checked before anything is touched; `Some` holds the version as the database stores it.
    let newer_than = match &target {
        RevertTarget::To(version) => Some(known_version(version, &embedded_versions()?)?),
        RevertTarget::Last | RevertTarget::Everything => None,
    };
    with_migration_lock(database_url, move |connection| {
        let unknown = unknown_applied(connection)?;
        if !unknown.is_empty() {
            return Err(RevertRefused::UnknownApplied(unknown).into());
        }
        let applied = connection
            .applied_migrations()
            .map_err(anyhow::Error::from_boxed)
            .context("reading applied migrations")?;
        // Newest first, as diesel lists them.
        let reverting: Vec<MigrationVersion<'static>> = match (&target, newer_than) {
            (RevertTarget::Last, _) => applied.into_iter().take(1).collect(),
            (_, Some(newer_than)) => applied
                .into_iter()
                .filter(|version| version.to_string() > newer_than)
                .collect(),
            (RevertTarget::To(_) | RevertTarget::Everything, None) => applied,
        };
        let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS)
            .map_err(anyhow::Error::from_boxed)
            .context("reading embedded migrations")?;
        let mut steps = Vec::new();
        let mut chosen: Vec<&dyn Migration<Pg>> = Vec::new();
        for version in &reverting {
            let migration = migrations
                .iter()
                .find(|migration| migration.name().version() == *version)
                .with_context(|| format!("migration {version} is not in this build"))?;
            let name = migration.name().to_string();
            let down_sql = down_sql_of(&name)?;
            steps.push(RevertStep {
                drops: dropped_tables(down_sql),
                down_sql,
                name,
            });
            chosen.push(migration.as_ref());
        }

        connection.transaction(|connection| {
            let plan = RevertPlan {
                dropped: rows_of_dropped_tables(connection, &steps, !permissions.dry_run)?,
                steps,
            };
            if permissions.dry_run || plan.steps.is_empty() {
                return Ok(plan);
            }
            let with_rows = plan.tables_with_rows();
            if !with_rows.is_empty()
                && !permissions.drop_tables_with_rows
                && !permissions.drop_all_data
            {
                return Err(RevertRefused::TablesHoldRows(
                    with_rows.into_iter().cloned().collect(),
                )
                .into());
            }
            for (migration, step) in chosen.iter().zip(&plan.steps) {
                // Inside this transaction diesel runs each migration in a savepoint.
                connection
                    .revert_migration(*migration)
                    .map_err(anyhow::Error::from_boxed)
                    .with_context(|| format!("reverting {}", step.name))?;
            }
            Ok(plan)
        })
    })
    .await
}

/// The database form (`20261125000001`) of `written`, a version as `migrate status` writes it
/// (`2026-11-25-000001`), bare, or a full name, when it is one of `known`.
fn known_version(written: &str, known: &[String]) -> Result<String, RevertRefused> {
    let version: String = written
        .split('_')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if known.contains(&version) {
        Ok(version)
    } else {
        Err(RevertRefused::UnknownVersion(written.to_owned()))
    }
}

/// The `down.sql` of the migration named `name`.
fn down_sql_of(name: &str) -> anyhow::Result<&'static str> {
    DOWN_MIGRATIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, sql)| *sql)
        .with_context(|| format!("migration {name} has no down.sql in this build"))
}

/// The tables `steps` drop that exist now, each once, with the rows they hold.
///
/// With `lock`, each table is locked first as its drop would lock it, until the transaction
/// ends: no row can arrive between counting and dropping.
fn rows_of_dropped_tables(
    connection: &mut MigrationConnection,
    steps: &[RevertStep],
    lock: bool,
) -> anyhow::Result<Vec<TableRows>> {
    use diesel::RunQueryDsl as _;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        rows: i64,
    }
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }

    let mut counted: Vec<TableRows> = Vec::new();
    for table in steps.iter().flat_map(|step| &step.drops) {
        if counted.iter().any(|known| known.table == *table) {
            continue;
        }
        let quoted = quoted_name(table);
        // A table a newer step creates again (a down that undoes a drop) does not exist yet,
        // and will be empty when an older step drops it.
        let exists = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS exists")
            .bind::<Text, _>(&quoted)
            .get_result::<Exists>(connection)
            .with_context(|| format!("looking for table {table}"))?
            .exists;
        if exists {
            if lock {
                diesel::sql_query(format!("LOCK TABLE {quoted} IN ACCESS EXCLUSIVE MODE"))
                    .execute(connection)
                    .with_context(|| format!("locking table {table}"))?;
            }
            let rows = diesel::sql_query(format!("SELECT count(*) AS rows FROM {quoted}"))
                .get_result::<Count>(connection)
                .with_context(|| format!("counting the rows of {table}"))?
                .rows;
            counted.push(TableRows {
                table: table.clone(),
                rows,
            });
        }
    }
    Ok(counted)
}

/// `table` (`users`, `audit.events`) quoted for SQL, each part as an identifier.
fn quoted_name(table: &str) -> String {
    table
        .split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// Every embedded migration with whether and when it was applied, oldest first, then the
/// applied migrations this build does not know. A database that does not exist has every
/// migration pending, and is not created.
pub async fn status(database_url: &str) -> anyhow::Result<Vec<MigrationState>> {
    if !super::database_exists(database_url).await? {
        return Ok(embedded_names()?
            .into_iter()
            .map(|(_, name)| MigrationState {
                name,
                applied: false,
                applied_at: None,
                known: true,
            })
            .collect());
    }
    with_migration_lock(database_url, |connection| {
        let applied = applied_with_times(connection)?;
        let embedded = embedded_names()?;
        let mut states: Vec<MigrationState> = embedded
            .iter()
            .map(|(version, name)| {
                let version = version.to_string();
                let applied_at = applied
                    .iter()
                    .find(|(applied, _)| *applied == version)
                    .map(|(_, at)| *at);
                MigrationState {
                    name: name.clone(),
                    applied: applied_at.is_some(),
                    applied_at,
                    known: true,
                }
            })
            .collect();
        states.extend(
            applied
                .iter()
                .filter(|(version, _)| {
                    !embedded
                        .iter()
                        .any(|(known, _)| known.to_string() == *version)
                })
                .map(|(version, at)| MigrationState {
                    name: written_version(version),
                    applied: true,
                    applied_at: Some(*at),
                    known: false,
                }),
        );
        Ok(states)
    })
    .await
}

/// Every applied version with the time diesel recorded, oldest first.
fn applied_with_times(
    connection: &mut MigrationConnection,
) -> anyhow::Result<Vec<(String, DateTime<Utc>)>> {
    use diesel::RunQueryDsl as _;

    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = Text)]
        version: String,
        #[diesel(sql_type = Timestamp)]
        run_on: chrono::NaiveDateTime,
    }

    // Creates diesel's table when missing, as every harness call does.
    connection
        .applied_migrations()
        .map_err(anyhow::Error::from_boxed)
        .context("reading applied migrations")?;
    let rows: Vec<Applied> = diesel::sql_query(
        "SELECT version, run_on FROM __diesel_schema_migrations ORDER BY version",
    )
    .load(connection)
    .context("reading applied migrations")?;
    // diesel's connections work in UTC, so `run_on` (a timestamp without time zone) is UTC.
    Ok(rows
        .into_iter()
        .map(|row| (row.version, row.run_on.and_utc()))
        .collect())
}

/// The applied versions this build does not know, as `migrate status` writes them, oldest first.
fn unknown_applied(connection: &mut MigrationConnection) -> anyhow::Result<Vec<String>> {
    let embedded = embedded_versions()?;
    Ok(applied_with_times(connection)?
        .into_iter()
        .filter(|(version, _)| !embedded.contains(version))
        .map(|(version, _)| written_version(&version))
        .collect())
}

/// A version as the database records it (`20261125000001`) written as migration folders and
/// `migrate status` write it (`2026-11-25-000001`); other shapes unchanged.
pub fn written_version(version: &str) -> String {
    if version.len() == 14 && version.bytes().all(|b| b.is_ascii_digit()) {
        format!(
            "{}-{}-{}-{}",
            &version[..4],
            &version[4..6],
            &version[6..8],
            &version[8..]
        )
    } else {
        version.to_owned()
    }
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
    let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_has_its_down_sql_embedded() {
        let names: Vec<String> = embedded_names()
            .unwrap()
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        let with_down: Vec<&str> = DOWN_MIGRATIONS.iter().map(|(name, _)| *name).collect();

        assert_eq!(names, with_down);
        assert!(
            DOWN_MIGRATIONS
                .iter()
                .all(|(_, sql)| !sql.trim().is_empty())
        );
    }

    #[test]
    fn every_migration_runs_in_a_transaction() {
        // A multi-step revert runs in one transaction; a migration that cannot (such as
        // CREATE INDEX CONCURRENTLY) would need `revert` to change.
        let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS).unwrap();

        assert!(
            migrations
                .iter()
                .all(|migration| migration.metadata().run_in_transaction())
        );
    }

    #[test]
    fn the_tables_each_down_migration_drops() {
        let drops: Vec<(&str, Vec<String>)> = DOWN_MIGRATIONS
            .iter()
            .map(|(name, sql)| (*name, dropped_tables(sql)))
            .collect();

        assert_eq!(
            drops,
            [
                ("2026-11-25-000001_create_users", vec!["users".to_owned()]),
                ("2026-11-25-000002_create_posts", vec!["posts".to_owned()]),
                (
                    "2026-11-25-000003_create_token_blacklist",
                    vec!["token_blacklist".to_owned()]
                ),
                (
                    "2026-11-25-120000_create_sessions",
                    vec!["refresh_tokens".to_owned(), "sessions".to_owned()]
                ),
                ("2026-11-25-120001_drop_token_blacklist", vec![]),
                (
                    "2026-11-25-130000_create_identities_and_auth_flows",
                    vec!["auth_flows".to_owned(), "identities".to_owned()]
                ),
                ("2026-11-25-140000_allow_users_without_email", vec![]),
            ]
        );
    }

    #[test]
    fn versions_are_accepted_as_status_writes_them_and_as_stored() {
        let known = embedded_versions().unwrap();
        for written in [
            "2026-11-25-000001",
            "20261125000001",
            "2026-11-25-000001_create_users",
        ] {
            assert_eq!(
                known_version(written, &known).unwrap(),
                "20261125000001",
                "{written}"
            );
        }
        for unknown in ["2026-11-25-000004", "2099-01-01-000000", "latest", "", "-"] {
            assert_eq!(
                known_version(unknown, &known),
                Err(RevertRefused::UnknownVersion(unknown.to_owned()))
            );
        }
        assert_eq!(RevertTarget::to("0"), RevertTarget::Everything);
        assert_eq!(written_version("20261201000000"), "2026-12-01-000000");
        assert_eq!(written_version("abc"), "abc");
    }
}
