//! Null propagation, as the GraphQL specification's "Handling Field Errors" requires.
//!
//! When a field fails, async-graphql leaves its key out of the response and, when every field
//! of an object failed, answers `null` for the object, whatever the schema says may be null.
//! Clients that trust the schema's non-null types would then crash. [`propagate_nulls`] mends
//! each response that carries field errors, in one place, once the request has run: the failed field becomes `null`, and where
//! its type is non-null, the `null` moves up to the nearest parent that may be null, through
//! lists, up to `data: null`.
//!
//! The types come from the schema's own SDL; the response keys of the failed paths are mapped to
//! fields through the request's document, as [`prepare`](crate::graphql::prepare) parsed it.

use anyhow::Context as _;
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, OperationType, Selection, SelectionSet, ServiceDocument,
    Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Name, PathSegment, Response, Value};
use std::collections::HashMap;

use crate::graphql::document::PreparedDocument;
use crate::graphql::selected_operation;

/// The declared type of every field of every object type of a schema.
#[derive(Debug, Default)]
pub struct OutputTypes {
    fields: HashMap<Name, HashMap<Name, Type>>,
    query: Option<Name>,
    mutation: Option<Name>,
}

impl OutputTypes {
    /// Reads the types of a schema from its SDL.
    pub fn from_sdl(sdl: &str) -> anyhow::Result<Self> {
        let document: ServiceDocument =
            async_graphql::parser::parse_schema(sdl).context("parsing the schema's SDL")?;
        let mut types = Self {
            query: Some(Name::new("Query")),
            mutation: Some(Name::new("Mutation")),
            ..Self::default()
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    types.query = schema.query.map(|name| name.node);
                    types.mutation = schema.mutation.map(|name| name.node);
                }
                TypeSystemDefinition::Type(definition) => {
                    let definition = definition.node;
                    let fields = match definition.kind {
                        TypeKind::Object(object) => object.fields,
                        TypeKind::Interface(interface) => interface.fields,
                        _ => continue,
                    };
                    let fields = fields
                        .into_iter()
                        .map(|field| (field.node.name.node, field.node.ty.node))
                        .collect();
                    types.fields.insert(definition.name.node, fields);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        Ok(types)
    }

    fn root(&self, operation: OperationType) -> Option<&Name> {
        match operation {
            OperationType::Query => self.query.as_ref(),
            OperationType::Mutation => self.mutation.as_ref(),
            OperationType::Subscription => None,
        }
    }

    fn field(&self, object: &str, field: &str) -> Option<&Type> {
        self.fields.get(object)?.get(field)
    }
}

/// Mends `response`, run on `document`, when fields of it failed: each failed field is `null`,
/// and a `null` where the schema says non-null moves up to the nearest parent that may be null.
pub(crate) fn propagate_nulls(
    types: &OutputTypes,
    response: &mut Response,
    document: &PreparedDocument,
) {
    if response.errors.iter().all(|error| error.path.is_empty()) {
        return;
    }
    // The request's document as it was parsed, before async-graphql pruned it for the
    // variables: the paths of failed fields are mapped to their types through it.
    let Some(parsed) = document.document() else {
        return;
    };
    let paths: Vec<&[PathSegment]> = response
        .errors
        .iter()
        .map(|error| error.path.as_slice())
        .filter(|path| !path.is_empty())
        .collect();
    let typed = TypedDocument {
        types,
        document: parsed,
    };
    typed.propagate(&mut response.data, document.operation_name(), &paths);
}

/// A document and the schema it runs against.
struct TypedDocument<'a> {
    types: &'a OutputTypes,
    document: &'a ExecutableDocument,
}

impl TypedDocument<'_> {
    /// Makes `data` obey the schema's nullability after fields at `failed_paths` failed.
    fn propagate(
        &self,
        data: &mut Value,
        operation_name: Option<&str>,
        failed_paths: &[&[PathSegment]],
    ) {
        let Ok((_, operation)) = selected_operation(&self.document.operations, operation_name)
        else {
            return;
        };
        let Some(root) = self.types.root(operation.ty) else {
            return;
        };
        let root_set = &operation.selection_set.node;
        let typed_paths: Vec<(&[PathSegment], Vec<bool>)> = failed_paths
            .iter()
            .filter_map(|path| Some((*path, self.nullability_along(root, root_set, path)?)))
            .collect();

        // First the failed fields get their `null`, and objects async-graphql answered as `null`
        // because all their fields failed become objects again; then the nulls move up. Doing
        // the second step apart keeps a null moved up by one error from being undone by another.
        for (path, _) in &typed_paths {
            restore_failed_field(data, path);
        }
        for (path, nullable) in &typed_paths {
            move_null_up(data, path, nullable);
        }
    }

    /// Whether each position along `path` may be null, or `None` when the path leaves the typed
    /// part of the schema (introspection, say).
    fn nullability_along(
        &self,
        root: &Name,
        root_set: &SelectionSet,
        path: &[PathSegment],
    ) -> Option<Vec<bool>> {
        let mut nullable = Vec::with_capacity(path.len());
        let mut object: &str = root.as_str();
        let mut selection_sets = vec![root_set];
        let mut current: Option<&Type> = None;
        for segment in path {
            let declared = match segment {
                PathSegment::Field(key) => {
                    if let Some(ty) = current {
                        object = named_type(ty)?;
                    }
                    let mut fields = Vec::new();
                    for set in &selection_sets {
                        self.fields_with_key(set, key, &mut fields);
                    }
                    let field = fields.first()?;
                    let declared = self.types.field(object, field.name.node.as_str())?;
                    selection_sets = fields
                        .iter()
                        .map(|field| &field.selection_set.node)
                        .collect();
                    declared
                }
                PathSegment::Index(_) => match &current?.base {
                    BaseType::List(item) => item,
                    BaseType::Named(_) => return None,
                },
            };
            nullable.push(declared.nullable);
            current = Some(declared);
        }
        Some(nullable)
    }

    /// The fields of `set` answered under `key`, looking into fragments.
    fn fields_with_key<'d>(&'d self, set: &'d SelectionSet, key: &str, found: &mut Vec<&'d Field>) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) if field.node.response_key().node.as_str() == key => {
                    found.push(&field.node);
                }
                Selection::Field(_) => {}
                Selection::InlineFragment(fragment) => {
                    self.fields_with_key(&fragment.node.selection_set.node, key, found);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.fields_with_key(&fragment.node.selection_set.node, key, found);
                    }
                }
            }
        }
    }
}

/// The object type a field of type `ty` holds, through any lists.
fn named_type(ty: &Type) -> Option<&str> {
    match &ty.base {
        BaseType::Named(name) => Some(name.as_str()),
        BaseType::List(_) => None,
    }
}

/// Puts `null` where the failed field at `path` was left out, recreating as empty objects the
/// parents that async-graphql answered as `null` because all their fields failed.
fn restore_failed_field(data: &mut Value, path: &[PathSegment]) {
    let mut value = data;
    for segment in path {
        value = match segment {
            PathSegment::Field(key) => {
                if *value == Value::Null {
                    *value = Value::Object(Default::default());
                }
                let Value::Object(fields) = value else {
                    return;
                };
                fields.entry(Name::new(key)).or_insert(Value::Null)
            }
            PathSegment::Index(index) => match value {
                Value::List(items) => match items.get_mut(*index) {
                    Some(item) => item,
                    None => return,
                },
                _ => return,
            },
        };
    }
}

/// Moves the `null` at `path` up while the position holding it must not be null.
fn move_null_up(data: &mut Value, path: &[PathSegment], nullable: &[bool]) {
    // The shallowest null along the path: a null above the failed field was put there by an
    // earlier error, and is where this one's null would end up too.
    let mut null_at = path.len();
    for depth in 0..=path.len() {
        if value_at(data, &path[..depth]).is_none_or(|value| *value == Value::Null) {
            null_at = depth;
            break;
        }
    }
    while null_at > 0 && !nullable[null_at - 1] {
        null_at -= 1;
        if let Some(value) = value_at_mut(data, &path[..null_at]) {
            *value = Value::Null;
        }
    }
}

fn value_at<'v>(data: &'v Value, path: &[PathSegment]) -> Option<&'v Value> {
    path.iter()
        .try_fold(data, |value, segment| match (value, segment) {
            (Value::Object(fields), PathSegment::Field(key)) => fields.get(key.as_str()),
            (Value::List(items), PathSegment::Index(index)) => items.get(*index),
            _ => None,
        })
}

fn value_at_mut<'v>(data: &'v mut Value, path: &[PathSegment]) -> Option<&'v mut Value> {
    path.iter()
        .try_fold(data, |value, segment| match (value, segment) {
            (Value::Object(fields), PathSegment::Field(key)) => fields.get_mut(key.as_str()),
            (Value::List(items), PathSegment::Index(index)) => items.get_mut(*index),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use async_graphql::value;

    use super::*;

    const SDL: &str = "
        type Query { me: User! maybe: User posts: PostConnection! }
        type PostConnection { edges: [PostEdge!]! }
        type PostEdge { node: Post! }
        type Post { id: ID! author: User! }
        type User { id: ID! email: String name: String! }
    ";

    fn propagate(query: &str, mut data: Value, failed: &[&[PathSegment]]) -> Value {
        let types = OutputTypes::from_sdl(SDL).unwrap();
        let document = async_graphql::parser::parse_query(query).unwrap();
        TypedDocument {
            types: &types,
            document: &document,
        }
        .propagate(&mut data, None, failed);
        data
    }

    fn field(name: &str) -> PathSegment {
        PathSegment::Field(name.to_owned())
    }

    #[test]
    fn a_failed_non_null_root_field_nulls_data() {
        let data = propagate(
            "{ me { id } maybe { id } }",
            value!({ "maybe": null }),
            &[&[field("me")]],
        );
        assert_eq!(data, Value::Null);
    }

    #[test]
    fn a_failed_nullable_field_is_null_not_missing() {
        let data = propagate(
            "{ maybe { id email } }",
            value!({ "maybe": { "id": "1" } }),
            &[&[field("maybe"), field("email")]],
        );
        assert_eq!(data, value!({ "maybe": { "id": "1", "email": null } }));
    }

    #[test]
    fn nulls_move_up_through_lists_to_the_nearest_nullable_parent() {
        let path = [
            field("posts"),
            field("edges"),
            PathSegment::Index(1),
            field("node"),
            field("writer"),
        ];
        let data = propagate(
            "{ maybe { id } posts { edges { node { id writer: author { id } } } } }",
            value!({
                "maybe": { "id": "u" },
                "posts": { "edges": [ { "node": { "id": "a", "writer": { "id": "u" } } }, { "node": { "id": "b" } } ] }
            }),
            &[&path],
        );
        // author: User! → node: Post! → [PostEdge!]! → edges! → posts: PostConnection! → data.
        assert_eq!(data, Value::Null);
    }

    #[test]
    fn objects_whose_fields_all_failed_become_objects_again() {
        let data = propagate(
            "{ maybe { email } }",
            value!({ "maybe": null }),
            &[&[field("maybe"), field("email")]],
        );
        assert_eq!(data, value!({ "maybe": { "email": null } }));
        let data = propagate(
            "{ maybe { name } }",
            Value::Null,
            &[&[field("maybe"), field("name")]],
        );
        assert_eq!(data, value!({ "maybe": null }));
    }

    #[test]
    fn fragments_and_aliases_are_followed() {
        let data = propagate(
            "{ ...F } fragment F on Query { who: maybe { ... on User { handle: name } } }",
            value!({ "who": { } }),
            &[&[field("who"), field("handle")]],
        );
        assert_eq!(data, value!({ "who": null }));
    }

    #[test]
    fn several_errors_agree() {
        let data = propagate(
            "{ maybe { name email } }",
            Value::Null,
            &[
                &[field("maybe"), field("name")],
                &[field("maybe"), field("email")],
            ],
        );
        assert_eq!(data, value!({ "maybe": null }));
    }
}
