//! Relay connections built from keyset pages.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};

use crate::db::pagination::Keyed;
use crate::domain::pagination::{Page, encode_cursor};

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
        .map(|row| Edge::new(encode_cursor(&row.keyset()), Node::from(row)))
        .collect();
    connection
}
