//! Keyset pagination over `(created_at, id)`, newest first: a position in a list, which rows to
//! read after it, and the condition selecting them, written once for every list.
//!
//! Reading the rows strictly older than the last one seen costs the same at any depth, and rows
//! inserted meanwhile can neither repeat a row nor make one be skipped.

use chrono::{DateTime, Utc};
use diesel::dsl::{And, Lt, LtEq, Or};
use diesel::sql_types::{Text, Timestamptz};
use diesel::{BoolExpressionMethods as _, Expression, ExpressionMethods};

/// A position in a newest-first list: the sort key of the last row seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keyset {
    /// The row's creation time.
    pub created_at: DateTime<Utc>,
    /// The row's id, which breaks ties between rows created at the same instant.
    pub id: String,
}

/// Which rows of a newest-first list to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeysetSlice {
    /// Only rows past this position; `None` starts at the newest.
    pub after: Option<Keyset>,
    /// At most this many rows.
    pub limit: i64,
}

/// A row of a list sorted by `(created_at, id)`.
pub trait Keyed {
    /// The row's position in its list.
    fn keyset(&self) -> Keyset;
}

/// The SQL expression type [`before_keyset`] builds.
pub(crate) type BeforeKeyset<CreatedAt, Id> =
    And<LtEq<CreatedAt, DateTime<Utc>>, Or<Lt<CreatedAt, DateTime<Utc>>, Lt<Id, String>>>;

/// Rows past `position` in a newest-first list: `(created_at, id) < (position)`.
///
/// Written as `created_at <= c AND (created_at < c OR id < i)`: the first test bounds a scan of
/// the `(created_at DESC, id DESC)` index, the second settles ties on `id`.
pub(crate) fn before_keyset<CreatedAt, Id>(
    created_at: CreatedAt,
    id: Id,
    position: &Keyset,
) -> BeforeKeyset<CreatedAt, Id>
where
    CreatedAt: ExpressionMethods + Expression<SqlType = Timestamptz> + Copy,
    Id: ExpressionMethods + Expression<SqlType = Text>,
{
    created_at.le(position.created_at).and(
        created_at
            .lt(position.created_at)
            .or(id.lt(position.id.clone())),
    )
}
