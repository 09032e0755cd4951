//! Property-based tests: whatever arrives, the server answers with valid GraphQL JSON, never a
//! panic, a 500 or an internal error, and `data` always obeys the schema's nullability.
//!
//! Documents are generated from the schema itself: random selections of its fields, with
//! aliases, inline and named fragments, and arguments of random values, strings full of NUL,
//! control characters, quotes and emoji. Generation draws from a list of numbers proptest
//! chooses, so a failing document shrinks by shrinking that list.

use std::collections::HashMap;
use std::fmt::Write as _;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, TestApp};

/// How many documents each property tries.
const CASES: u32 = 256;

/// A runtime of its own: proptest's runner is synchronous.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A server with two users and a few posts, a signed-in client, and the ids of the users and
/// posts, for documents to name things that exist.
async fn seeded_app() -> (TestApp, Client, Vec<String>) {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    let ids = vec![
        alice.create_post("First", "Hello").await,
        bob.create_post("Second", "World").await,
        alice.user_id().to_owned(),
        bob.user_id().to_owned(),
    ];
    (app, alice, ids)
}

/// Asserts `status` and `body` form a well-behaved GraphQL response: JSON, no server error, and
/// every error with a message and a code other than INTERNAL_SERVER_ERROR.
/// `request` describes what was sent, for the report of a failure.
fn assert_well_behaved(status: StatusCode, body: &str, request: &str) -> Value {
    assert!(!status.is_server_error(), "{status}: {body}\n{request}");
    let value: Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}\n{request}"));
    assert!(
        value.get("data").is_some() || value.get("errors").is_some(),
        "{value}\n{request}"
    );
    for error in value["errors"].as_array().into_iter().flatten() {
        assert!(error["message"].is_string(), "{value}\n{request}");
        let code = error["extensions"]["code"].as_str();
        assert!(
            code.is_some(),
            "an error without a code: {value}\n{request}"
        );
        assert_ne!(code, Some("INTERNAL_SERVER_ERROR"), "{value}\n{request}");
    }
    value
}

async fn post(app: &TestApp, body: Vec<u8>) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[test]
fn arbitrary_bytes_get_a_graphql_answer() {
    let runtime = runtime();
    let (app, _, _) = runtime.block_on(seeded_app());
    let config = ProptestConfig::with_cases(CASES);
    proptest!(config, |(body in prop::collection::vec(any::<u8>(), 0..512))| {
        let (status, text) = runtime.block_on(post(&app, body.clone()));
        assert_well_behaved(status, &text, &String::from_utf8_lossy(&body));
    });
}

/// Any JSON value, with strings drawn from troublesome characters.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| json!(number)),
        "[\\u{0}-\\u{7f}😀한\\u{200b}]{0,12}".prop_map(Value::from),
        Just(Value::from("{ posts { edges { node { id } } } }")),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("query".to_owned()),
                    Just("variables".to_owned()),
                    Just("operationName".to_owned()),
                    Just("extensions".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

#[test]
fn arbitrary_json_gets_a_graphql_answer() {
    let runtime = runtime();
    let (app, _, _) = runtime.block_on(seeded_app());
    let config = ProptestConfig::with_cases(CASES);
    proptest!(config, |(body in arbitrary_json())| {
        let body = body.to_string();
        let (status, text) = runtime.block_on(post(&app, body.clone().into_bytes()));
        assert_well_behaved(status, &text, &body);
    });
}

#[test]
fn generated_documents_answer_within_the_schema() {
    let runtime = runtime();
    let (app, alice, ids) = runtime.block_on(seeded_app());
    let schema = SchemaModel::read();
    let config = ProptestConfig::with_cases(CASES);
    proptest!(config, |(choices in prop::collection::vec(any::<u32>(), 0..160), signed_in in any::<bool>())| {
        let generated = DocumentGenerator::new(&schema, &ids, &choices).generate();
        // A session of its own per document: a generated `logout` or `logoutAll` ends it.
        let client = if signed_in {
            let user = alice.user.clone().unwrap();
            app.client_of(runtime.block_on(app.start_session(user)))
        } else {
            app.anonymous()
        };
        let reply = runtime.block_on(client.graphql(&generated.text, json!({})));
        let body = assert_well_behaved(reply.status, &reply.body.to_string(), &generated.text);
        assert_eq!(reply.status, StatusCode::OK, "{}\n{body:#}", generated.text);
        if let Some(data) = body.get("data").filter(|data| !data.is_null()) {
            schema.check_selections(data, &generated.root, &generated.selections)
                .unwrap_or_else(|problem| panic!("{problem}\n{}\n{body:#}", generated.text));
        }
    });
}

/// The object and input types of the schema, read from its SDL.
struct SchemaModel {
    objects: HashMap<String, Vec<FieldModel>>,
    inputs: HashMap<String, Vec<(String, Type)>>,
}

struct FieldModel {
    name: String,
    ty: Type,
    arguments: Vec<(String, Type)>,
}

impl SchemaModel {
    fn read() -> Self {
        let document = async_graphql::parser::parse_schema(festapi::graphql::sdl()).unwrap();
        let mut model = Self {
            objects: HashMap::new(),
            inputs: HashMap::new(),
        };
        for definition in document.definitions {
            let TypeSystemDefinition::Type(definition) = definition else {
                continue;
            };
            let name = definition.node.name.node.to_string();
            match definition.node.kind {
                TypeKind::Object(object) => {
                    let fields = object
                        .fields
                        .into_iter()
                        .map(|field| FieldModel {
                            name: field.node.name.node.to_string(),
                            ty: field.node.ty.node,
                            arguments: field
                                .node
                                .arguments
                                .into_iter()
                                .map(|argument| {
                                    (argument.node.name.node.to_string(), argument.node.ty.node)
                                })
                                .collect(),
                        })
                        .collect();
                    model.objects.insert(name, fields);
                }
                TypeKind::InputObject(input) => {
                    let fields = input
                        .fields
                        .into_iter()
                        .map(|field| (field.node.name.node.to_string(), field.node.ty.node))
                        .collect();
                    model.inputs.insert(name, fields);
                }
                _ => {}
            }
        }
        model
    }

    /// Checks that `value`, answered for `selections` on object type `object`, has every
    /// selected key, and `null` only where the schema allows it.
    fn check_selections(
        &self,
        value: &Value,
        object: &str,
        selections: &[Selected],
    ) -> Result<(), String> {
        for selected in selections {
            let Some(field_value) = value.get(&selected.key) else {
                return Err(format!("{object}.{} is missing", selected.key));
            };
            self.check_value(field_value, &selected.ty, &selected.children)
                .map_err(|problem| format!("{object}.{}: {problem}", selected.key))?;
        }
        Ok(())
    }

    fn check_value(&self, value: &Value, ty: &Type, children: &[Selected]) -> Result<(), String> {
        match (value, &ty.base) {
            (Value::Null, _) if ty.nullable => Ok(()),
            (Value::Null, _) => Err(format!("null in a {ty} position")),
            (Value::Array(items), BaseType::List(item_type)) => items
                .iter()
                .try_for_each(|item| self.check_value(item, item_type, children)),
            (_, BaseType::List(_)) => Err(format!("not a list: {value}")),
            (Value::Object(_), BaseType::Named(name))
                if self.objects.contains_key(name.as_str()) =>
            {
                self.check_selections(value, name, children)
            }
            (_, BaseType::Named(name)) if self.objects.contains_key(name.as_str()) => {
                Err(format!("not an object: {value}"))
            }
            _ => Ok(()),
        }
    }
}

/// A field a generated document selects, with what it selects in turn (fragments flattened).
#[derive(Debug)]
struct Selected {
    key: String,
    ty: Type,
    children: Vec<Selected>,
}

struct GeneratedDocument {
    text: String,
    root: String,
    selections: Vec<Selected>,
}

/// Builds a document by drawing each decision from a list of numbers.
struct DocumentGenerator<'a> {
    schema: &'a SchemaModel,
    /// Ids of things that exist, which string arguments sometimes are.
    known_ids: &'a [String],
    choices: &'a [u32],
    next_choice: usize,
    fragments: String,
    fragment_count: usize,
    alias_count: usize,
}

/// Characters that have broken servers before.
const TROUBLESOME: &[char] = &[
    '\0', '\u{1}', '\u{7f}', '\u{85}', '\u{200b}', '\u{feff}', '\u{2800}', '\u{3164}', '\u{180e}',
    '\u{202e}', '"', '\\', '\n', ' ', '😀', '한', 'a', 'Z', '0', ':', '%', '\'',
];

impl<'a> DocumentGenerator<'a> {
    fn new(schema: &'a SchemaModel, known_ids: &'a [String], choices: &'a [u32]) -> Self {
        Self {
            schema,
            known_ids,
            choices,
            next_choice: 0,
            fragments: String::new(),
            fragment_count: 0,
            alias_count: 0,
        }
    }

    /// A number below `bound`; 0 once the choices run out, so generation always ends.
    fn choose(&mut self, bound: usize) -> usize {
        let choice = self.choices.get(self.next_choice).copied().unwrap_or(0);
        self.next_choice += 1;
        usize::try_from(choice).unwrap() % bound.max(1)
    }

    fn generate(mut self) -> GeneratedDocument {
        let (keyword, root) = if self.choose(4) == 0 {
            ("mutation", "Mutation")
        } else {
            ("query", "Query")
        };
        let mut text = format!("{keyword} ");
        let selections = self.selection_set(root, 0, &mut text);
        text.push_str(&self.fragments);
        GeneratedDocument {
            text,
            root: root.to_owned(),
            selections,
        }
    }

    fn selection_set(&mut self, object: &str, depth: usize, text: &mut String) -> Vec<Selected> {
        let mut selections = Vec::new();
        text.push('{');
        let count = 1 + self.choose(3);
        for _ in 0..count {
            match self.choose(12) {
                0 if depth < 4 => {
                    text.push_str(&format!(" ... on {object} "));
                    selections.extend(self.selection_set(object, depth + 1, text));
                }
                1 if depth < 4 => {
                    let name = format!("F{}", self.fragment_count);
                    self.fragment_count += 1;
                    let mut body = format!(" fragment {name} on {object} ");
                    selections.extend(self.selection_set(object, depth + 1, &mut body));
                    self.fragments.push_str(&body);
                    text.push_str(&format!(" ...{name}"));
                }
                2 => {
                    text.push_str(" __typename");
                }
                _ => selections.push(self.field(object, depth, text)),
            }
        }
        text.push_str(" }");
        selections
    }

    fn field(&mut self, object: &str, depth: usize, text: &mut String) -> Selected {
        let fields = &self.schema.objects[object];
        let field = &fields[self.choose(fields.len())];
        // Two fields under one response key must agree on their arguments; async-graphql does not
        // check that across fragments, so only fields without arguments go unaliased.
        let key = if field.arguments.is_empty() && self.choose(3) == 0 {
            field.name.clone()
        } else {
            self.alias_count += 1;
            let alias = format!("a{}", self.alias_count);
            text.push_str(&format!(" {alias}:"));
            alias
        };
        text.push(' ');
        text.push_str(&field.name);
        let mut arguments = Vec::new();
        for (name, ty) in &field.arguments {
            if !ty.nullable || self.choose(2) == 0 {
                arguments.push(format!("{name}: {}", self.value(ty, 0)));
            }
        }
        if !arguments.is_empty() {
            write!(text, "({})", arguments.join(", ")).unwrap();
        }
        let object_type = named(&field.ty)
            .filter(|name| self.schema.objects.contains_key(*name))
            .map(str::to_owned);
        let children = match object_type {
            Some(inner) if depth < 5 => self.selection_set(&inner, depth + 1, text),
            Some(_) => {
                text.push_str(" { __typename }");
                Vec::new()
            }
            None => Vec::new(),
        };
        Selected {
            key,
            ty: field.ty.clone(),
            children,
        }
    }

    /// A literal of type `ty`, usually valid, sometimes not.
    fn value(&mut self, ty: &Type, depth: usize) -> String {
        if ty.nullable && self.choose(8) == 0 {
            return "null".to_owned();
        }
        let name = match &ty.base {
            BaseType::List(item) => return format!("[{}]", self.value(item, depth + 1)),
            BaseType::Named(name) => name.as_str(),
        };
        if let Some(fields) = self.schema.inputs.get(name).filter(|_| depth < 3) {
            let mut values = Vec::new();
            for (field, ty) in fields {
                if !ty.nullable || self.choose(2) == 0 {
                    values.push(format!("{field}: {}", self.value(ty, depth + 1)));
                }
            }
            return format!("{{{}}}", values.join(", "));
        }
        match name {
            "Int" => {
                const INTERESTING: [i64; 9] =
                    [0, 1, -1, 5, 20, 100, 101, 2_147_483_647, -2_147_483_648];
                INTERESTING[self.choose(INTERESTING.len())].to_string()
            }
            "Boolean" => ["true", "false"][self.choose(2)].to_owned(),
            _ => self.string(),
        }
    }

    /// A GraphQL string literal: an id that exists, or troublesome characters.
    fn string(&mut self) -> String {
        if self.choose(3) == 0 {
            return format!("\"{}\"", self.known_ids[self.choose(self.known_ids.len())]);
        }
        let length = self.choose(12);
        let mut literal = String::from('"');
        for _ in 0..length {
            match TROUBLESOME[self.choose(TROUBLESOME.len())] {
                '"' => literal.push_str("\\\""),
                '\\' => literal.push_str("\\\\"),
                character if character.is_control() => {
                    write!(literal, "\\u{:04x}", u32::from(character)).unwrap();
                }
                character => literal.push(character),
            }
        }
        literal.push('"');
        literal
    }
}

/// The named type at the bottom of `ty`'s lists.
fn named(ty: &Type) -> Option<&str> {
    match &ty.base {
        BaseType::Named(name) => Some(name.as_str()),
        BaseType::List(item) => named(item),
    }
}
