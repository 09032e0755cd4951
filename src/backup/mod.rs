//! `festapi backup` and `festapi restore`: the database to a `pg_dump` archive and back.
//!
//! Both run the PostgreSQL client tools found on `PATH` (`pg_dump --format=custom`,
//! `pg_restore`) against the configured `DATABASE_URL`, whose password reaches them only through
//! `PGPASSWORD` and is replaced by `[redacted]` in everything they print.
//!
//! A backup dumps one consistent snapshot, shared with the connection that counts each table's
//! rows, so the summary counts exactly what the archive holds. It is written beside the target
//! file, readable by its owner only, and renamed into place once complete: a failed or
//! interrupted backup never leaves a file that looks like one.
//!
//! A restore reads the archive before touching anything: it refuses a file that is no FestAPI
//! backup, or one whose schema is newer than this build knows. It creates a missing database,
//! refuses one that already holds FestAPI tables unless asked to replace them, restores in one
//! transaction (all or nothing), then applies this build's pending migrations.

mod archive;
mod connection;
mod progress;
mod tools;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::HumanBytes;

use crate::config::DatabaseConfig;
use crate::db::catalog::{CatalogConnection, CatalogError, TableRows};
use crate::db::{self, migrations};
use archive::{ArchiveContents, MIGRATIONS_TABLE};
use connection::ToolConnection;
use progress::Progress;
use tools::{MajorVersion, Tool, ToolOutput, table_of_step};

/// The `--verbose` step with which `pg_dump` starts on a table's rows.
const DUMP_TABLE_STEP: &str = "dumping contents of table ";
/// The `--verbose` step with which `pg_restore` starts on a table's rows.
const RESTORE_TABLE_STEP: &str = "processing data for table ";

/// What a finished backup wrote.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// The archive written.
    pub file: PathBuf,
    /// How many tables it holds.
    pub tables: usize,
    /// How many rows those tables held, all together.
    pub rows: u64,
    /// The archive's size.
    pub bytes: u64,
    /// How long the backup took.
    pub elapsed: Duration,
}

impl fmt::Display for BackupSummary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "backed up into {}", self.file.display())?;
        write_counts(formatter, self.tables, self.rows, self.bytes, self.elapsed)
    }
}

/// What a finished restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// The archive restored.
    pub file: PathBuf,
    /// The database restored into, as `database "festapi" on host:port`.
    pub database: String,
    /// Whether the restore created that database.
    pub created_database: bool,
    /// How many tables were restored.
    pub tables: usize,
    /// How many rows they hold now, all together.
    pub rows: u64,
    /// The archive's size.
    pub bytes: u64,
    /// How long the restore took, migrations included.
    pub elapsed: Duration,
    /// The migrations applied after the restore, because the backup predates them.
    pub applied_migrations: Vec<String>,
}

impl fmt::Display for RestoreSummary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let created = if self.created_database {
            " (created)"
        } else {
            ""
        };
        writeln!(
            formatter,
            "restored {} into {}{created}",
            self.file.display(),
            self.database
        )?;
        write_counts(formatter, self.tables, self.rows, self.bytes, self.elapsed)?;
        if self.applied_migrations.is_empty() {
            write!(formatter, "\n  migrations  none to apply")
        } else {
            write!(
                formatter,
                "\n  migrations  applied {}",
                self.applied_migrations.join(", ")
            )
        }
    }
}

fn write_counts(
    formatter: &mut fmt::Formatter<'_>,
    tables: usize,
    rows: u64,
    bytes: u64,
    elapsed: Duration,
) -> fmt::Result {
    write!(
        formatter,
        "  tables      {tables}\n  rows        {rows}\n  bytes       {bytes} ({})\n  \
         seconds     {:.2}",
        HumanBytes(bytes),
        elapsed.as_secs_f64()
    )
}

/// Backs the database up into `file`, a `pg_dump` archive in custom format. An existing file is
/// replaced only when `overwrite` is set.
pub async fn backup(
    database: &DatabaseConfig,
    file: &Path,
    overwrite: bool,
) -> anyhow::Result<BackupSummary> {
    let connection = ToolConnection::new(database.url())?;
    run_backup(database.url(), &connection, file, overwrite)
        .await
        .map_err(|error| connection.redactor().redact_error(&error))
}

async fn run_backup(
    database_url: &str,
    connection: &ToolConnection,
    file: &Path,
    overwrite: bool,
) -> anyhow::Result<BackupSummary> {
    let started = Instant::now();
    let pg_dump = Tool::locate("pg_dump").await?;
    if !overwrite && file.exists() {
        anyhow::bail!(
            "{} exists: pass --force to replace it, or name another file",
            file.display()
        );
    }
    let partial = PartialFile::create(file)?;

    let catalog = open_catalog(database_url, connection).await?;
    pg_dump.ensure_supports(MajorVersion::from_version_num(
        catalog.server_version_num().await?,
    ))?;
    let snapshot = catalog.export_snapshot().await?;
    let tables = catalog.tables().await?;

    let mut command = pg_dump.command();
    command
        .args(["--format=custom", "--verbose"])
        .arg(format!("--snapshot={snapshot}"))
        .arg("--file")
        .arg(&partial.path);
    connection.apply(&mut command, "festapi backup");
    let mut progress = Progress::start("dumping", tables.len());
    let mut on_step = |step: &str| follow(&mut progress, step, DUMP_TABLE_STEP);
    let dumped = tokio::select! {
        dumped = pg_dump.run(command, connection.redactor(), &mut on_step) => dumped,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    progress.finish();
    catalog.close().await;
    let dumped = dumped.with_context(|| {
        format!(
            "backing up {} into {}; nothing was written",
            connection.describe(),
            file.display()
        )
    })?;
    show_warnings(&dumped);

    let bytes = partial.keep_as(file)?;
    Ok(BackupSummary {
        file: file.to_owned(),
        tables: tables.len(),
        rows: tables.iter().map(|table| table.rows).sum(),
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Restores the archive `file`, made by [`backup`], into the configured database, creating it
/// when missing. A database that already holds FestAPI tables is refused, or with `replace`,
/// has them dropped and replaced by the archive's.
pub async fn restore(
    database: &DatabaseConfig,
    file: &Path,
    replace: bool,
) -> anyhow::Result<RestoreSummary> {
    let connection = ToolConnection::new(database.url())?;
    run_restore(database.url(), &connection, file, replace)
        .await
        .map_err(|error| connection.redactor().redact_error(&error))
}

async fn run_restore(
    database_url: &str,
    connection: &ToolConnection,
    file: &Path,
    replace: bool,
) -> anyhow::Result<RestoreSummary> {
    let started = Instant::now();
    let pg_restore = Tool::locate("pg_restore").await?;
    let bytes = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let archive = ArchiveContents::read(&pg_restore, file).await?;
    let pending = migrations_to_apply(&archive.migrations, &migrations::embedded_versions()?)
        .with_context(|| format!("refusing to restore {}", file.display()))?;

    let target = Target::inspect(database_url, connection).await?;
    pg_restore.ensure_supports(target.server)?;
    let festapi_tables: Vec<&TableRows> = target
        .tables
        .iter()
        .flatten()
        .filter(|table| {
            table.name == MIGRATIONS_TABLE || archive.tables.contains(&table.qualified_name())
        })
        .collect();
    if !festapi_tables.is_empty() && !replace {
        anyhow::bail!(
            "{} already holds FestAPI tables ({}): restoring into it would mix two databases. \
             Pass --force to drop those tables and replace them with the backup's, or point \
             DATABASE_URL at a new database",
            connection.describe(),
            describe_tables(&festapi_tables)
        );
    }
    let created_database = target.tables.is_none();
    if created_database {
        db::create_database_if_missing(database_url).await?;
    }

    let mut command = pg_restore.command();
    command.args([
        "--verbose",
        "--single-transaction",
        "--exit-on-error",
        // Objects belong to the role that restores, the one the API connects as; the backed-up
        // database's roles may not exist here.
        "--no-owner",
        "--no-privileges",
    ]);
    if replace {
        command.args(["--clean", "--if-exists"]);
    }
    command.arg(file);
    connection.apply(&mut command, "festapi restore");
    let mut progress = Progress::start("restoring", archive.tables.len());
    let restored = pg_restore
        .run(command, connection.redactor(), &mut |step| {
            follow(&mut progress, step, RESTORE_TABLE_STEP);
        })
        .await;
    progress.finish();
    let restored = restored.with_context(|| {
        format!(
            "restoring {} into {}; the restore runs in one transaction, so nothing of it stayed",
            file.display(),
            connection.describe()
        )
    })?;
    show_warnings(&restored);

    let applied_migrations = if pending.is_empty() {
        Vec::new()
    } else {
        migrations::run_pending(database_url)
            .await
            .context("migrating the restored database to this build's schema")?
    };
    let catalog = open_catalog(database_url, connection).await?;
    let restored_tables = catalog.tables().await?;
    catalog.close().await;
    let rows = restored_tables
        .iter()
        .filter(|table| archive.tables.contains(&table.qualified_name()))
        .map(|table| table.rows)
        .sum();
    Ok(RestoreSummary {
        file: file.to_owned(),
        database: connection.describe(),
        created_database,
        tables: archive.tables.len(),
        rows,
        bytes,
        elapsed: started.elapsed(),
        applied_migrations,
    })
}

/// The database a restore writes into, as it is before the restore.
struct Target {
    /// The server's major version.
    server: MajorVersion,
    /// Its tables, or `None` when the database does not exist.
    tables: Option<Vec<TableRows>>,
}

impl Target {
    async fn inspect(database_url: &str, connection: &ToolConnection) -> anyhow::Result<Self> {
        let (catalog, exists) = match CatalogConnection::open(database_url).await {
            Ok(catalog) => (catalog, true),
            Err(CatalogError::NoSuchDatabase) => (
                CatalogConnection::open_maintenance(database_url)
                    .await
                    .map_err(CatalogError::into_anyhow)
                    .with_context(|| {
                        format!(
                            "{} does not exist; connecting to the server's postgres database \
                             to create it",
                            connection.describe()
                        )
                    })?,
                false,
            ),
            Err(CatalogError::Other(error)) => {
                return Err(error.context(format!("connecting to {}", connection.describe())));
            }
        };
        let server = MajorVersion::from_version_num(catalog.server_version_num().await?);
        let tables = if exists {
            Some(catalog.tables().await?)
        } else {
            None
        };
        catalog.close().await;
        Ok(Self { server, tables })
    }
}

/// A catalog connection to the database, or an error naming the database.
async fn open_catalog(
    database_url: &str,
    connection: &ToolConnection,
) -> anyhow::Result<CatalogConnection> {
    CatalogConnection::open(database_url)
        .await
        .map_err(CatalogError::into_anyhow)
        .with_context(|| format!("connecting to {}", connection.describe()))
}

/// The migrations of this build that a database which recorded `recorded` lacks; refuses a
/// database that recorded migrations this build does not know: its schema is newer.
fn migrations_to_apply(recorded: &[String], embedded: &[String]) -> anyhow::Result<Vec<String>> {
    let unknown: Vec<&str> = recorded
        .iter()
        .filter(|version| !embedded.contains(version))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "the backup's schema is newer than this festapi's: it records migrations {} that \
             this build does not have (its newest is {}). Restore it with the release that made \
             it, or a newer one",
            unknown.join(", "),
            embedded.last().map_or("none", String::as_str)
        );
    }
    Ok(embedded
        .iter()
        .filter(|version| !recorded.contains(version))
        .cloned()
        .collect())
}

/// `public.users (1 row), public.posts (0 rows)`.
fn describe_tables(tables: &[&TableRows]) -> String {
    tables
        .iter()
        .map(|table| {
            let rows = if table.rows == 1 { "row" } else { "rows" };
            format!("{} ({} {rows})", table.qualified_name(), table.rows)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Moves `progress` along with a step a tool reports: a table started with `table_step`, or
/// another step.
fn follow(progress: &mut Progress, step: &str, table_step: &str) {
    match table_of_step(step, table_step) {
        Some(table) => progress.table(table),
        None => progress.step(step),
    }
}

/// Shows the warnings of a tool that succeeded, once its progress is off the screen.
fn show_warnings(output: &ToolOutput) {
    for line in &output.diagnostics {
        eprintln!("{line}");
    }
}

/// The file a backup is written to before it is complete: beside the target, so the final
/// rename stays on one file system, and removed unless kept.
struct PartialFile {
    path: PathBuf,
    kept: bool,
}

impl PartialFile {
    /// Creates `.NAME.partial` beside `file`, readable and writable by its owner only: a backup
    /// holds every user's data.
    fn create(file: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt as _;

        let name = file
            .file_name()
            .with_context(|| format!("{} names no file", file.display()))?;
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(name);
        partial_name.push(".partial");
        let path = file.with_file_name(partial_name);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { path, kept: false })
    }

    /// Flushes the complete archive to disk and renames it to `file`; returns its size.
    fn keep_as(mut self, file: &Path) -> anyhow::Result<u64> {
        let written = std::fs::File::open(&self.path)
            .and_then(|archive| {
                archive.sync_all()?;
                archive.metadata()
            })
            .with_context(|| format!("flushing {}", self.path.display()))?;
        std::fs::rename(&self.path, file)
            .with_context(|| format!("renaming {} to {}", self.path.display(), file.display()))?;
        self.kept = true;
        Ok(written.len())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(list: &[&str]) -> Vec<String> {
        list.iter().map(|version| (*version).to_owned()).collect()
    }

    #[test]
    fn an_older_backup_is_migrated_and_a_newer_one_refused() {
        let embedded = versions(&["20261125000001", "20261125000002", "20261125120000"]);

        assert_eq!(
            migrations_to_apply(&versions(&["20261125000001"]), &embedded).unwrap(),
            versions(&["20261125000002", "20261125120000"])
        );
        assert!(
            migrations_to_apply(&embedded, &embedded)
                .unwrap()
                .is_empty()
        );
        let newer = versions(&[
            "20261125000001",
            "20261125000002",
            "20261125120000",
            "29990101000000",
        ]);
        let error = migrations_to_apply(&newer, &embedded)
            .unwrap_err()
            .to_string();
        assert!(error.contains("newer than this festapi's"), "{error}");
        assert!(error.contains("29990101000000"), "{error}");
    }

    #[test]
    fn embedded_versions_are_written_as_the_database_records_them() {
        let embedded = migrations::embedded_versions().unwrap();
        assert_eq!(embedded.first().map(String::as_str), Some("20261125000001"));
        assert!(embedded.iter().all(|version| version.len() == 14
            && version.chars().all(|character| character.is_ascii_digit())));
    }

    #[test]
    fn a_partial_backup_is_private_and_removed_unless_kept() {
        use std::os::unix::fs::PermissionsExt as _;

        let directory =
            std::env::temp_dir().join(format!("festapi-backup-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&directory).unwrap();
        let file = directory.join("festapi.dump");

        let partial = PartialFile::create(&file).unwrap();
        let mode = std::fs::metadata(&partial.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let abandoned = partial.path.clone();
        drop(partial);
        assert!(!abandoned.exists());

        let partial = PartialFile::create(&file).unwrap();
        std::fs::write(&partial.path, b"PGDMP").unwrap();
        assert_eq!(partial.keep_as(&file).unwrap(), 5);
        assert_eq!(std::fs::read(&file).unwrap(), b"PGDMP");
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
