//! Limits async-graphql does not have built in: the size of a document and how many aliases it
//! uses. Both are checked before validation, so an oversized document costs almost nothing.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

use crate::graphql::VALIDATION_FAILED;

/// The longest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 15_000;
/// The most aliased fields a document may hold; `__typename` aliases are free.
pub const MAX_ALIASES: usize = 15;

/// The schema extension that enforces [`MAX_DOCUMENT_BYTES`] and [`MAX_ALIASES`].
pub struct QueryLimits;

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimits)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for QueryLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if query.len() > MAX_DOCUMENT_BYTES {
            return Err(limit_error(format!(
                "the document is {} bytes long; the limit is {MAX_DOCUMENT_BYTES}",
                query.len()
            )));
        }
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > MAX_ALIASES {
            return Err(limit_error(format!(
                "the document uses {aliases} aliases; the limit is {MAX_ALIASES}"
            )));
        }
        Ok(document)
    }
}

fn limit_error(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", VALIDATION_FAILED);
    error
}

/// Aliased fields other than `__typename`, in every operation and fragment of `document`.
fn count_aliases(document: &ExecutableDocument) -> usize {
    let operations = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node);
    let fragments = document
        .fragments
        .values()
        .map(|fragment| &fragment.node.selection_set.node);
    operations.chain(fragments).map(aliases_in).sum()
}

fn aliases_in(selection_set: &SelectionSet) -> usize {
    selection_set
        .items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                let counted = field.alias.is_some() && field.name.node != "__typename";
                usize::from(counted) + aliases_in(&field.selection_set.node)
            }
            Selection::InlineFragment(fragment) => aliases_in(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(query: &str) -> usize {
        count_aliases(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn aliases_are_counted_everywhere_but_typename() {
        assert_eq!(aliases("{ a: posts { edges { b: cursor } } }"), 2);
        assert_eq!(aliases("{ ... on Query { a: me { id } } }"), 1);
        assert_eq!(
            aliases("{ ...F } fragment F on Query { a: me { id } b: me { id } }"),
            2
        );
        assert_eq!(aliases("{ a: __typename b: __typename }"), 0);
    }
}
