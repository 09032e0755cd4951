//! The GraphQL schema: per-domain query and mutation objects merged into one root, the limits
//! that keep hostile queries cheap, and the entry points that prepare one request (its document
//! parsed once, or found in the document cache) and run it.

mod context;
mod document;
mod errors;
mod limits;
mod loaders;
mod nullability;
mod operation;
mod pagination;
mod persisted;
mod posts;
mod sessions;
mod sign_in;
mod users;

use std::sync::OnceLock;

use async_graphql::dataloader::DataLoader;
use async_graphql::parser::types::OperationType;
use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

pub use context::RequestContext;
pub use document::{DocumentCache, DocumentChecks, PreparedRequest, RequestError, prepare};
pub use errors::{PARSE_FAILED, VALIDATION_FAILED, was_refused};
pub use limits::{MAX_ALIASES, MAX_DOCUMENT_BYTES};
use loaders::{AuthorPostsLoader, UserLoader};
pub use nullability::OutputTypes;
use operation::selected_operation;
pub use persisted::PersistedQueryError;

use crate::state::AppState;

/// The deepest selection accepted. GraphiQL's introspection query needs about 13 levels.
const MAX_DEPTH_WITH_INTROSPECTION: usize = 15;
/// The deepest selection accepted where introspection is off.
const MAX_DEPTH: usize = 10;

/// Every query.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    users::UserQuery,
    posts::PostQuery,
    sessions::SessionQuery,
    sign_in::SignInQuery,
);

/// Every mutation.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    posts::PostMutation,
    users::UserMutation,
    sessions::SessionMutation,
    sign_in::SignInMutation,
);

/// The FestAPI schema type.
pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
}

/// The schema served to clients, with its limits; introspection is off in production.
///
/// It has one extension, [`DocumentChecks`]: async-graphql sends every field of every request
/// through each extension installed, so the work that can wait until a request has run (error
/// codes, null propagation) is done on its response by [`execute`] instead.
pub fn build_schema(state: AppState) -> AppSchema {
    let production = state.env.is_production();
    let mut builder = builder()
        .extension(DocumentChecks::new(state.graphql_limits))
        .data(state);
    builder = if production {
        builder
            .limit_depth(MAX_DEPTH)
            .disable_introspection()
            .disable_suggestions()
    } else {
        builder.limit_depth(MAX_DEPTH_WITH_INTROSPECTION)
    };
    builder.finish()
}

/// The schema in GraphQL SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The declared types of the schema's fields, read from its SDL once.
fn output_types() -> &'static OutputTypes {
    static TYPES: OnceLock<OutputTypes> = OnceLock::new();
    TYPES.get_or_init(|| {
        OutputTypes::from_sdl(&sdl()).unwrap_or_else(|error| {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot read the schema's own types: null propagation is off"
            );
            OutputTypes::default()
        })
    })
}

/// The operation a request runs, as far as it can be told before running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationInfo {
    /// The operation's name in the document; `None` for an anonymous one.
    pub name: Option<String>,
    /// Its type; `None` when the document is over the limits on its text, does not parse, or no
    /// operation of it can be chosen: executing it reports the problem.
    operation_type: Option<OperationType>,
}

impl OperationInfo {
    /// An operation nothing can be told of.
    fn unknown() -> Self {
        Self {
            name: None,
            operation_type: None,
        }
    }

    /// Whether the request asks for a mutation (or a subscription): GET must not run one, and
    /// mutations have rate limits of their own.
    pub fn is_mutation(&self) -> bool {
        self.operation_type
            .is_some_and(|operation_type| operation_type != OperationType::Query)
    }

    /// The type as a metric label and log field: `query`, `mutation`, `subscription`, or
    /// `unknown` when none could be told.
    pub fn type_label(&self) -> &'static str {
        match self.operation_type {
            Some(OperationType::Query) => "query",
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            None => "unknown",
        }
    }
}

/// The outcome of a response, as a metric label: `ok`, or the code of its first error.
pub fn outcome(response: &async_graphql::Response) -> &'static str {
    let Some(error) = response.errors.first() else {
        return "ok";
    };
    let code = error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"));
    match code {
        Some(async_graphql::Value::String(code)) => errors::known_code(code),
        _ => errors::OTHER_ERROR,
    }
}

/// Runs one GraphQL request, prepared by [`prepare`], on behalf of `context`.
///
/// Each request gets its own [`DataLoader`], so batching and caching never cross requests.
pub async fn execute(
    schema: &AppSchema,
    state: &AppState,
    request: PreparedRequest,
    context: RequestContext,
) -> async_graphql::Response {
    let (request, document) = request.into_request();
    let request_id = context.request_id.clone();
    let users = DataLoader::new(UserLoader::new(state.database.clone()), tokio::spawn);
    let author_posts =
        DataLoader::new(AuthorPostsLoader::new(state.database.clone()), tokio::spawn);
    let mut response = schema
        .execute(request.data(context).data(users).data(author_posts))
        .await;
    errors::assign_codes(&mut response, &request_id);
    nullability::propagate_nulls(output_types(), &mut response, &document);
    response
}
