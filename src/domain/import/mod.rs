//! Moving the Python service's data in (`festapi import`): its users, their identities and
//! their posts, with every record accounted for.
//!
//! The whole dump is checked before anything is written ([`dump`]); the writes then happen in
//! one transaction, in multi-row statements, so an import lands whole or not at all. Records
//! already stored as the dump has them are left alone, which makes a second run a no-op; records
//! stored differently are conflicts, left as they are unless the operator asks to overwrite them.
//! Tokens of the old service are not carried over: everyone signs in again.

pub mod dump;
mod plan;

use std::fmt;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use crate::db::{identities, posts, users};
use crate::progress::Progress;

pub use dump::{
    CheckedDump, DumpError, DumpPost, DumpUser, Problem, RecordKey, check, parse_timestamp,
};

/// The most rows one INSERT carries: far below PostgreSQL's 65,535 bind parameters for every
/// table written, and few statements even for a large dump.
const ROWS_PER_STATEMENT: usize = 1_000;

/// What the operator asked an import to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Import the valid records of a dump with problems, skipping the others.
    pub skip_invalid: bool,
    /// Check the dump and compare it with the database, writing nothing.
    pub dry_run: bool,
    /// Overwrite records stored with other content instead of reporting them as conflicts.
    pub update_existing: bool,
}

/// What became of the records of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records in the dump.
    pub read: usize,
    /// Records written that were not stored before.
    pub imported: usize,
    /// Records stored with other content, overwritten (`--update-existing`).
    pub updated: usize,
    /// Records stored already as the dump has them.
    pub unchanged: usize,
    /// Records stored with other content, or colliding with other stored records: left alone.
    pub conflicting: usize,
    /// Records not considered: invalid, or posts of a user that was skipped.
    pub skipped: usize,
}

impl fmt::Display for Tally {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} read, {} imported, {} updated, {} unchanged, {} conflicting, {} skipped",
            self.read, self.imported, self.updated, self.unchanged, self.conflicting, self.skipped
        )
    }
}

/// A valid record that the database holds otherwise, or that collides with another stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The record.
    pub record: RecordKey,
    /// How it conflicts.
    pub reason: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.record, self.reason)
    }
}

/// What an import found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// What the operator asked for.
    pub options: ImportOptions,
    /// The users.
    pub users: Tally,
    /// The posts.
    pub posts: Tally,
    /// Every problem of the dump; without `skip_invalid` any of them means nothing was written.
    pub problems: Vec<Problem>,
    /// With `skip_invalid`: the records left out and why, the posts of skipped users included.
    pub skipped: Vec<Problem>,
    /// The records left as the database has them.
    pub conflicts: Vec<Conflict>,
    /// How many tokens of the old service the dump held, none of them carried over.
    pub old_tokens: usize,
    /// When the import started: the timestamp of users whose dates the dump does not know.
    pub started_at: DateTime<Utc>,
}

impl ImportReport {
    /// Whether the import changed any row (or, in a dry run, would have).
    pub fn changed_anything(&self) -> bool {
        self.users.imported + self.users.updated + self.posts.imported + self.posts.updated > 0
    }

    /// Why the command fails, if it does: problems that stopped it, or conflicts left behind.
    pub fn failure(&self) -> Option<String> {
        if !self.problems.is_empty() && !self.options.skip_invalid {
            return Some(format!(
                "{} problem{} in the dump: nothing was written (fix them, or pass --skip-invalid \
                 to import the valid records)",
                self.problems.len(),
                plural(self.problems.len())
            ));
        }
        if !self.conflicts.is_empty() {
            let left = if self.options.dry_run {
                "would be left"
            } else {
                "were left"
            };
            return Some(format!(
                "{} record{} conflict{} with the database and {left} as stored (pass \
                 --update-existing to overwrite them)",
                self.conflicts.len(),
                plural(self.conflicts.len()),
                if self.conflicts.len() == 1 { "s" } else { "" },
            ));
        }
        None
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

impl ImportReport {
    /// The report of a dump checked and not imported (yet): the records read and the problems.
    pub fn of_checked(checked: &CheckedDump, options: ImportOptions) -> Self {
        Self {
            options,
            users: Tally {
                read: checked.users_read,
                ..Tally::default()
            },
            posts: Tally {
                read: checked.posts_read,
                ..Tally::default()
            },
            problems: checked.problems.clone(),
            skipped: Vec::new(),
            conflicts: Vec::new(),
            old_tokens: checked.old_tokens,
            started_at: Utc::now(),
        }
    }
}

/// Imports the `checked` dump on `connection` as `options` say, showing how far it got on
/// `progress`.
///
/// With problems in the dump and without `skip_invalid`, nothing is written (the database is not
/// even read). Otherwise either the whole import is committed or, on any error, nothing is;
/// conflicts are reported in the [`ImportReport`].
pub async fn import(
    connection: &mut AsyncPgConnection,
    checked: &CheckedDump,
    options: ImportOptions,
    progress: &Progress,
) -> anyhow::Result<ImportReport> {
    // PostgreSQL keeps microseconds: the same instant must come back from it.
    let started_at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros())
        .ok_or_else(|| anyhow::anyhow!("the clock is out of range"))?;
    let mut report = ImportReport {
        started_at,
        ..ImportReport::of_checked(checked, options)
    };
    if !report.problems.is_empty() && !options.skip_invalid {
        return Ok(report);
    }

    let (posts, skipped) = posts_with_authors(checked);
    report.skipped = skipped;
    let users_skipped = checked.users_read - checked.users.len();
    let posts_skipped = checked.posts_read - posts.len();

    let (users, posts_tally, conflicts) = connection
        .transaction(async |connection| -> anyhow::Result<_> {
            let plan = plan::plan(
                connection,
                &checked.users,
                &posts,
                options.update_existing,
                started_at,
            )
            .await?;
            if !options.dry_run {
                write(connection, &plan, progress).await?;
            }
            Ok((plan.users, plan.posts, plan.conflicts))
        })
        .await?;
    report.users = Tally {
        read: checked.users_read,
        skipped: users_skipped,
        ..users
    };
    report.posts = Tally {
        read: checked.posts_read,
        skipped: posts_skipped,
        ..posts_tally
    };
    report.conflicts = conflicts;
    Ok(report)
}

/// The valid posts whose author is valid too, and every record left out with the reason: the
/// problems, then the posts of authors left out.
fn posts_with_authors(checked: &CheckedDump) -> (Vec<DumpPost>, Vec<Problem>) {
    let mut skipped = checked.problems.clone();
    let mut posts = Vec::with_capacity(checked.posts.len());
    for post in &checked.posts {
        if checked.users.contains_key(&post.author_key) {
            posts.push(post.clone());
        } else {
            skipped.push(Problem {
                record: RecordKey::Post(post.id.to_string()),
                field: Some("author_email"),
                reason: format!("its author, user {:?}, is skipped", post.author_key),
            });
        }
    }
    (posts, skipped)
}

/// Makes the writes of `plan`, users (with their identities) before the posts that need them.
async fn write(
    connection: &mut AsyncPgConnection,
    plan: &plan::Plan<'_>,
    progress: &Progress,
) -> anyhow::Result<()> {
    progress.stage("users", plan.new_users.len() + plan.overwritten_users.len());
    for rows in plan.new_users.chunks(ROWS_PER_STATEMENT) {
        users::insert_many(connection, rows)
            .await
            .context("inserting users")?;
        progress.advance(rows.len());
    }
    for rows in plan.overwritten_users.chunks(ROWS_PER_STATEMENT) {
        users::overwrite_many(connection, rows)
            .await
            .context("overwriting users")?;
        progress.advance(rows.len());
    }
    for rows in plan.identities.chunks(ROWS_PER_STATEMENT) {
        identities::insert_many_if_absent(connection, rows)
            .await
            .context("inserting identities")?;
    }
    progress.stage("posts", plan.new_posts.len() + plan.overwritten_posts.len());
    for rows in plan.new_posts.chunks(ROWS_PER_STATEMENT) {
        posts::insert_many(connection, rows)
            .await
            .context("inserting posts")?;
        progress.advance(rows.len());
    }
    for rows in plan.overwritten_posts.chunks(ROWS_PER_STATEMENT) {
        posts::overwrite_many(connection, rows)
            .await
            .context("overwriting posts")?;
        progress.advance(rows.len());
    }
    progress.finish();
    Ok(())
}
