//! What a `pg_dump` archive holds, read with `pg_restore` before anything is restored: which
//! tables have data, and which migrations the backed-up database had applied.

use std::path::Path;

use anyhow::Context as _;

use super::connection::Redactor;
use super::tools::Tool;

/// The table in which Diesel records the applied migrations.
pub(super) const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

/// The parts of an archive a restore decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArchiveContents {
    /// The tables whose data the archive holds, as `schema.name`.
    pub(super) tables: Vec<String>,
    /// The versions of the migrations the backed-up database had applied, e.g.
    /// `20261125000001`.
    pub(super) migrations: Vec<String>,
}

impl ArchiveContents {
    /// Reads the archive `file` with `pg_restore`, refusing a file that is not a FestAPI backup.
    pub(super) async fn read(pg_restore: &Tool, file: &Path) -> anyhow::Result<Self> {
        let redactor = Redactor::default();
        let mut list = pg_restore.command();
        list.arg("--list").arg(file);
        let listing = pg_restore
            .run(list, &redactor, &mut |_| {})
            .await
            .with_context(|| format!("{} is not a readable pg_dump archive", file.display()))?
            .stdout;
        let tables = tables_with_data(&String::from_utf8_lossy(&listing));
        if !tables
            .iter()
            .any(|table| table.rsplit('.').next() == Some(MIGRATIONS_TABLE))
        {
            anyhow::bail!(
                "{} is not a FestAPI backup: it has no {MIGRATIONS_TABLE} table, which every \
                 database migrated by festapi has",
                file.display()
            );
        }

        let mut data = pg_restore.command();
        data.args(["--data-only", "--file=-"])
            .arg(format!("--table={MIGRATIONS_TABLE}"))
            .arg(file);
        let script = pg_restore
            .run(data, &redactor, &mut |_| {})
            .await
            .with_context(|| format!("reading the migrations recorded in {}", file.display()))?
            .stdout;
        Ok(Self {
            tables,
            migrations: first_column_of_copy(&String::from_utf8_lossy(&script)),
        })
    }
}

/// The tables with a `TABLE DATA` entry in a `pg_restore --list` listing, as `schema.name`.
///
/// Entries read `3436; 0 43105 TABLE DATA public users postgres`; comment lines start with `;`.
fn tables_with_data(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|line| !line.starts_with(';'))
        .filter_map(|line| {
            let (_, entry) = line.split_once(" TABLE DATA ")?;
            let mut words = entry.split_whitespace();
            Some(format!("{}.{}", words.next()?, words.next()?))
        })
        .collect()
}

/// The first column of every row of the `COPY ... FROM stdin;` blocks of a SQL script.
fn first_column_of_copy(script: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut in_copy = false;
    for line in script.lines() {
        if in_copy {
            if line == "\\." {
                in_copy = false;
            } else {
                values.push(line.split('\t').next().unwrap_or_default().to_owned());
            }
        } else if line.starts_with("COPY ") && line.ends_with("FROM stdin;") {
            in_copy = true;
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_with_data_come_from_the_listing() {
        let listing = "\
;
; Archive created at 2026-11-25 14:17:27 UTC
;     dbname: festapi
;
214; 1259 43098 TABLE public __diesel_schema_migrations postgres
215; 1259 43105 TABLE public users postgres
3435; 0 43098 TABLE DATA public __diesel_schema_migrations postgres
3436; 0 43105 TABLE DATA public users festapi
3264; 2606 43120 CONSTRAINT public users users_pkey postgres
";
        assert_eq!(
            tables_with_data(listing),
            ["public.__diesel_schema_migrations", "public.users"]
        );
    }

    #[test]
    fn migration_versions_come_from_the_copy_block() {
        let script = "\
SET statement_timeout = 0;

COPY public.__diesel_schema_migrations (version, run_on) FROM stdin;
20261125000001\t2026-11-25 14:07:06.099593
20261125000002\t2026-11-25 14:07:06.109614
\\.

-- PostgreSQL database dump complete
";
        assert_eq!(
            first_column_of_copy(script),
            ["20261125000001", "20261125000002"]
        );
    }
}
