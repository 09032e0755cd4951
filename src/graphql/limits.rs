//! Limits that keep any document cheap to parse, validate and run, whoever sends it.
//!
//! They run in the order the work would:
//!
//! 1. before the parser, a lexical pass over the text refuses documents with too many tokens or
//!    brackets nested too deep (the parser is recursive), and the variables are checked for
//!    nesting too;
//! 2. after parsing, before validation, fragments are expanded by counting (each fragment once,
//!    so the check is linear) and documents that would select too many fields, nest selections
//!    too deep, put too many directives on a field, or whose fragments spread each other in a
//!    cycle, are refused, as are documents with too many aliases;
//! 3. validation computes the cost of the operation, where a list field costs its selection
//!    times the number of items it asks for ([`list_cost`]), and refuses costs over the limit.
//!
//! Except for the variables' nesting, the first two are properties of the text, checked once per
//! distinct document by [`document`](crate::graphql::document), which keeps the documents that
//! pass. The variables' nesting is checked on every request, and the cost whenever validation
//! runs: on every request for a document that declares variables, whose values can change it.
//! Every refusal is a `GRAPHQL_VALIDATION_FAILED` error that names the limit.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, ValidationResult, Value, Variables};

use crate::config::GraphqlLimits;
use crate::domain::pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// The longest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 15_000;
/// The most aliased fields a document may hold; `__typename` aliases are free.
pub const MAX_ALIASES: usize = 15;

/// The cost of a list field asking for `first` items, each costing `item_cost`.
///
/// An omitted `first` counts as the default page size, one above the largest page as the largest
/// page, and a negative one as none (the resolver refuses both, so neither can fan out). The
/// field itself costs one more.
pub(crate) fn list_cost(first: Option<i32>, item_cost: usize) -> usize {
    let items = first
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(0, MAX_PAGE_SIZE)
        .unsigned_abs();
    usize::try_from(items)
        .unwrap_or(usize::MAX)
        .saturating_mul(item_cost)
        .saturating_add(1)
}

/// Refuses a parsed document over the limits that do not depend on the request: its fragments
/// expanded ([`check_fragments`]) and its aliases ([`MAX_ALIASES`]).
pub(crate) fn check_document(
    document: &ExecutableDocument,
    limits: &GraphqlLimits,
) -> Result<(), String> {
    check_fragments(document, limits.max_cost)?;
    let aliases = count_aliases(document);
    if aliases > MAX_ALIASES {
        return Err(format!(
            "the document uses {aliases} aliases; the limit is {MAX_ALIASES}"
        ));
    }
    Ok(())
}

/// Refuses an operation whose cost, as validation computed it, is over the limit.
pub(crate) fn check_cost(result: &ValidationResult, limits: &GraphqlLimits) -> Result<(), String> {
    let limit = limits.max_cost;
    if result.complexity > limit {
        return Err(format!(
            "the query costs {}; the limit is {limit} (a list costs its selection times \
             `first`, 20 when omitted)",
            result.complexity
        ));
    }
    Ok(())
}

/// The lexical pass: refuses a document that is too long, has too many tokens, or nests
/// brackets, braces and parentheses too deep, without building anything.
///
/// Tokens are counted as the GraphQL lexer would see them, closely enough to bound the parser's
/// work: punctuators, names and numbers, and whole strings (whose brackets do not nest).
/// Whitespace, commas and comments are ignored.
pub(crate) fn check_text(document: &str, limits: &GraphqlLimits) -> Result<(), String> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the document is {} bytes long; the limit is {MAX_DOCUMENT_BYTES}",
            document.len()
        ));
    }
    let bytes = document.as_bytes();
    let mut position = 0;
    let mut tokens = 0_usize;
    let mut depth = 0_usize;
    while let Some(&byte) = bytes.get(position) {
        position = match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => position + 1,
            b'#' => skip_comment(bytes, position),
            b'"' => {
                tokens += 1;
                skip_string(bytes, position)
            }
            b'{' | b'[' | b'(' => {
                tokens += 1;
                depth += 1;
                if depth > limits.max_nesting {
                    return Err(format!(
                        "the document nests brackets, braces or parentheses more than {} deep",
                        limits.max_nesting
                    ));
                }
                position + 1
            }
            b'}' | b']' | b')' => {
                tokens += 1;
                depth = depth.saturating_sub(1);
                position + 1
            }
            b'!' | b'$' | b'&' | b':' | b'=' | b'@' | b'|' => {
                tokens += 1;
                position + 1
            }
            b'.' if bytes[position..].starts_with(b"...") => {
                tokens += 1;
                position + 3
            }
            _ => {
                tokens += 1;
                skip_word(bytes, position)
            }
        };
        if tokens > limits.max_tokens {
            return Err(format!(
                "the document has more than {} tokens",
                limits.max_tokens
            ));
        }
    }
    Ok(())
}

/// The position after the comment starting at `start`.
fn skip_comment(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&byte| byte == b'\n' || byte == b'\r')
        .map_or(bytes.len(), |offset| start + offset)
}

/// The position after the string or block string starting at `start`. An unterminated string
/// runs to the end of its line (or of the document), where the parser will report it.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut position = start + 3;
        while position < bytes.len() {
            if bytes[position..].starts_with(b"\\\"\"\"") {
                position += 4;
            } else if bytes[position..].starts_with(b"\"\"\"") {
                return position + 3;
            } else {
                position += 1;
            }
        }
        return bytes.len();
    }
    let mut position = start + 1;
    while let Some(&byte) = bytes.get(position) {
        match byte {
            b'\\' => position += 2,
            b'"' => return position + 1,
            b'\n' | b'\r' => return position,
            _ => position += 1,
        }
    }
    bytes.len()
}

/// The position after the name, number or stray character starting at `start`.
fn skip_word(bytes: &[u8], start: usize) -> usize {
    let is_word = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'+');
    if !is_word(bytes[start]) {
        // A character outside the language (or a multi-byte one): one token, the parser refuses it.
        return start + 1;
    }
    let mut position = start + 1;
    while let Some(&byte) = bytes.get(position) {
        let decimal_point = byte == b'.' && !bytes[position..].starts_with(b"...");
        if !is_word(byte) && !decimal_point {
            break;
        }
        position += 1;
    }
    position
}

/// Refuses variables whose arrays and objects nest deeper than `max_nesting`.
pub(crate) fn check_variables(variables: &Variables, max_nesting: usize) -> Result<(), String> {
    let mut pending: Vec<(&Value, usize)> = variables.values().map(|value| (value, 1)).collect();
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::List(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        if depth > max_nesting {
            return Err(format!(
                "the variables nest arrays and objects more than {max_nesting} deep"
            ));
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

/// The deepest selection sets may nest, counting each fragment spread and inline fragment as a
/// level, as async-graphql does.
pub(super) const MAX_SELECTION_NESTING: usize = 32;
/// The most directives on one field.
pub(super) const MAX_DIRECTIVES_PER_FIELD: usize = 5;

/// What a selection set amounts to once its fragments are expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expanded {
    /// How many fields it selects, at any depth.
    fields: usize,
    /// How many levels of selection sets it holds below itself.
    depth: usize,
}

/// Refuses a document whose operations would select more than `max_fields` fields once every
/// fragment spread is replaced by the fragment, that nests selections more than
/// [`MAX_SELECTION_NESTING`] deep, puts more than [`MAX_DIRECTIVES_PER_FIELD`] directives on a
/// field, or whose fragments spread each other in a cycle.
///
/// Each fragment is expanded once and the result remembered, so a chain of fragments that each
/// spread the previous one twice costs a few steps per fragment, not an exponential number.
fn check_fragments(document: &ExecutableDocument, max_fields: usize) -> Result<(), String> {
    let mut expander = FragmentExpander {
        document,
        expanded: HashMap::new(),
    };
    for (_, operation) in document.operations.iter() {
        let expanded = expander.selection_set(&operation.node.selection_set.node, 0)?;
        if expanded.fields > max_fields {
            return Err(format!(
                "the operation selects {} fields once its fragments are expanded; \
                 the limit is {max_fields}",
                expanded.fields
            ));
        }
    }
    // Fragments no operation spreads are expanded too, so a cycle among them is still refused.
    for name in document.fragments.keys() {
        expander.fragment(name, 0)?;
    }
    Ok(())
}

/// A fragment being expanded, or done.
#[derive(Clone, Copy)]
enum FragmentState {
    Expanding,
    Done(Expanded),
}

struct FragmentExpander<'a> {
    document: &'a ExecutableDocument,
    expanded: HashMap<&'a Name, FragmentState>,
}

impl<'a> FragmentExpander<'a> {
    /// Expands `selection_set`, found `depth` levels below its operation.
    fn selection_set(
        &mut self,
        selection_set: &'a SelectionSet,
        depth: usize,
    ) -> Result<Expanded, String> {
        if depth > MAX_SELECTION_NESTING {
            return Err(format!(
                "the document nests selections more than {MAX_SELECTION_NESTING} deep, \
                 counting fragments"
            ));
        }
        let mut total = Expanded {
            fields: 0,
            depth: 0,
        };
        for selection in &selection_set.items {
            let (fields, below) = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.directives.len() > MAX_DIRECTIVES_PER_FIELD {
                        return Err(format!(
                            "field {} has {} directives; the limit is {MAX_DIRECTIVES_PER_FIELD}",
                            field.name.node,
                            field.directives.len()
                        ));
                    }
                    if field.selection_set.node.items.is_empty() {
                        (1, None)
                    } else {
                        let inner = self.selection_set(&field.selection_set.node, depth + 1)?;
                        (inner.fields.saturating_add(1), Some(inner.depth))
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let inner = self.selection_set(&fragment.node.selection_set.node, depth + 1)?;
                    (inner.fields, Some(inner.depth))
                }
                Selection::FragmentSpread(spread) => {
                    let inner = self.fragment(&spread.node.fragment_name.node, depth + 1)?;
                    (inner.fields, Some(inner.depth))
                }
            };
            total.fields = total.fields.saturating_add(fields);
            if let Some(below) = below {
                total.depth = total.depth.max(below + 1);
            }
        }
        Ok(total)
    }

    /// Expands fragment `name`, spread `depth` levels below its operation.
    fn fragment(&mut self, name: &'a Name, depth: usize) -> Result<Expanded, String> {
        match self.expanded.get(name) {
            Some(FragmentState::Done(expanded)) => {
                if depth + expanded.depth > MAX_SELECTION_NESTING {
                    return Err(format!(
                        "the document nests selections more than {MAX_SELECTION_NESTING} deep, \
                         counting fragments"
                    ));
                }
                return Ok(*expanded);
            }
            Some(FragmentState::Expanding) => {
                return Err(format!("fragment {name} spreads itself, directly or not"));
            }
            None => {}
        }
        // An unknown fragment is reported by validation; it adds nothing here.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Expanded {
                fields: 0,
                depth: 0,
            });
        };
        self.expanded.insert(name, FragmentState::Expanding);
        let expanded = self.selection_set(&fragment.node.selection_set.node, depth)?;
        self.expanded.insert(name, FragmentState::Done(expanded));
        Ok(expanded)
    }
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

    fn text(document: &str) -> Result<(), String> {
        check_text(document, &GraphqlLimits::default())
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

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let nested = |depth: usize| {
            format!(
                "{{ posts(after: {}1{}) {{ __typename }} }}",
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        // The braces of the selection and the parentheses of the arguments count too.
        assert!(text(&nested(62)).is_ok());
        assert!(text(&nested(63)).unwrap_err().contains("64 deep"));
        let in_string = format!(r#"{{ post(id: "{}") {{ id }} }}"#, "[".repeat(5_000));
        assert!(text(&in_string).is_ok());
        let in_block = format!(r#"{{ post(id: """{}\"""{}""") {{ id }} }}"#, "{", "(");
        assert!(text(&in_block).is_ok());
        let in_comment = format!("{{ __typename }} # {}", "{".repeat(100));
        assert!(text(&in_comment).is_ok());
    }

    #[test]
    fn tokens_are_counted_like_the_lexer_does() {
        // `{`, 1,998 names and `}` are exactly 2,000 tokens.
        let at_limit = format!("{{{}}}", " a".repeat(1_998));
        assert!(text(&at_limit).is_ok());
        let over = format!("{{{}}}", " a".repeat(1_999));
        assert!(text(&over).unwrap_err().contains("2000 tokens"));
        // Numbers, spreads and punctuators are one token each.
        let limits = GraphqlLimits {
            max_tokens: 13,
            ..GraphqlLimits::default()
        };
        assert!(check_text("query($a: Int = -1.5e+3) { ...F }", &limits).is_ok());
        assert!(check_text("query($a: Int = -1.5e+3) { ...F G }", &limits).is_err());
    }

    #[test]
    fn variables_are_checked_for_nesting() {
        let mut value = Value::from(1);
        for _ in 0..64 {
            value = Value::List(vec![value]);
        }
        let variables = |value: Value| Variables::from_json(serde_json::json!({ "a": value }));
        assert!(check_variables(&variables(value.clone()), 64).is_ok());
        let deeper = Value::List(vec![value]);
        assert!(check_variables(&variables(deeper), 64).is_err());
    }

    #[test]
    fn selections_nest_at_most_32_deep_counting_fragments() {
        let nested = |levels: usize| {
            let mut document = format!("{{ ...F{levels} }} fragment F0 on Query {{ __typename }}");
            for level in 1..=levels {
                let previous = level - 1;
                document.push_str(&format!(" fragment F{level} on Query {{ ...F{previous} }}"));
            }
            async_graphql::parser::parse_query(&document).unwrap()
        };
        assert!(check_fragments(&nested(31), 5_000).is_ok());
        let error = check_fragments(&nested(32), 5_000).unwrap_err();
        assert!(error.contains("more than 32 deep"), "{error}");
        let directives = "{ __typename @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) }";
        let parsed = async_graphql::parser::parse_query(directives).unwrap();
        assert!(
            check_fragments(&parsed, 5_000)
                .unwrap_err()
                .contains("6 directives")
        );
    }

    #[test]
    fn fragments_are_expanded_by_counting() {
        let mut document = String::from("{ ...F25 } fragment F0 on Query { __typename }");
        for level in 1..=25 {
            let previous = level - 1;
            document.push_str(&format!(
                " fragment F{level} on Query {{ ...F{previous} ...F{previous} }}"
            ));
        }
        let parsed = async_graphql::parser::parse_query(&document).unwrap();
        let error = check_fragments(&parsed, 5_000).unwrap_err();
        assert!(error.contains("33554432 fields"), "{error}");

        let small = async_graphql::parser::parse_query(
            "{ ...A ...A } fragment A on Query { __typename ...B } fragment B on Query { me { id } }",
        )
        .unwrap();
        assert!(check_fragments(&small, 6).is_ok());
        assert!(check_fragments(&small, 5).is_err());
    }

    #[test]
    fn fragment_cycles_are_refused() {
        for document in [
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            "{ __typename } fragment A on Query { me { ...A } }",
        ] {
            let parsed = async_graphql::parser::parse_query(document).unwrap();
            let error = check_fragments(&parsed, 5_000).unwrap_err();
            assert!(error.contains("spreads itself"), "{error}");
        }
    }

    #[test]
    fn lists_cost_their_items() {
        assert_eq!(list_cost(None, 3), 61);
        assert_eq!(list_cost(Some(100), 3), 301);
        assert_eq!(list_cost(Some(-1), 3), 1);
        assert_eq!(list_cost(Some(100_000), 3), 301);
        assert_eq!(list_cost(Some(0), 3), 1);
    }
}
