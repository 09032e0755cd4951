//! Relay connections built from keyset pages.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};

use crate::db::models::{PostRow, UserRow};
use crate::domain::pagination::{Cursor, Page};

/// A row that lists are sorted by `(created_at, id)`.
pub(crate) trait Keyed {
    /// The cursor pointing just past this row.
    fn cursor(&self) -> Cursor;
}

impl Keyed for PostRow {
    fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id.as_str())
    }
}

impl Keyed for UserRow {
    fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id.as_str())
    }
}

/// The connection for `page`; `after_given` tells whether the client asked for a later page.
pub(crate) fn connection<Row, Node>(page: Page<Row>, after_given: bool) -> Connection<String, Node>
where
    Row: Keyed,
    Node: OutputType + From<Row>,
{
    let mut connection = Connection::new(after_given, page.has_next_page);
    connection.edges = page
        .items
        .into_iter()
        .map(|row| Edge::new(row.cursor().encode(), Node::from(row)))
        .collect();
    connection
}
